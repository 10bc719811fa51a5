"""Development tool: the SAT catalogs in comanda/sat/ against satcfdi's shipped catalog (SAT's catCFDI).

``python -m integrations.cfdi.sat_catalogs`` (in .venv-actions) rewrites comanda/sat/codigos_postales.txt
from satcfdi's c_CodigoPostal and reports the codes and SAT descriptions of regimenes.yml / usos_cfdi.yml
that no longer match it. The tests run the same comparison; nothing here runs in production.
"""

from __future__ import annotations

import sys
from typing import Dict, List, Tuple

from satcfdi.catalogs import select_all

from comanda.services.cfdi.catalogs import SAT_DIR, regimes, uses

POSTAL_CODES = SAT_DIR / "codigos_postales.txt"


def postal_code_ranges() -> List[Tuple[int, int]]:
    """SAT's c_CodigoPostal as inclusive ranges of consecutive codes."""
    ranges: List[List[int]] = []
    for code in sorted(int(c) for c in select_all("C756_c_CodigoPostal")):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return [(low, high) for low, high in ranges]


def postal_codes_text() -> str:
    lines = [f"{low:05d}" if low == high else f"{low:05d}-{high:05d}" for low, high in postal_code_ranges()]
    return "\n".join(lines) + "\n"


def description_mismatches() -> List[str]:
    """Entries of Comanda's files whose code or SAT description is not satcfdi's."""
    problems = []
    for name, ours, table in (("regime", regimes(), "C756_c_RegimenFiscal"), ("use", uses(), "C756_c_UsoCFDI")):
        theirs: Dict[str, str] = select_all(table)
        problems += [
            f"{name} {code}: {entry.sat!r} != SAT {theirs.get(code)!r}"
            for code, entry in ours.items()
            if theirs.get(code) != entry.sat
        ]
    return problems


def main() -> int:
    POSTAL_CODES.write_text(postal_codes_text())
    print(f"wrote {POSTAL_CODES} ({len(postal_code_ranges())} ranges)")
    problems = description_mismatches()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
