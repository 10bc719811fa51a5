"""`python -m cli.rasa_server run|shell ARGS…`: Rasa's own command line as `comanda run` starts it (in
COMANDA_RASA_VENV), with what must not be on a command line taken from Comanda's settings.

- The HTTP API token (COMANDA_RASA_TOKEN) reaches `rasa run` inside this process, never through the
  arguments of one: `ps` shows every argument to every user of the machine.
- Request bodies are capped (COMANDA_RASA_MAX_BODY_BYTES, through SANIC_REQUEST_MAX_SIZE, which Sanic
  reads when Rasa builds its app): a larger one gets 413 before it is read, signed or not.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

from comanda.settings import setting, setting_int


def rasa_arguments(args: List[str]) -> List[str]:
    """Rasa's arguments: `run` gets the API token."""
    if args[:1] == ["run"]:
        return [*args, "--auth-token", setting("COMANDA_RASA_TOKEN")]
    return list(args)


def main(argv: Optional[List[str]] = None) -> None:
    args = rasa_arguments(sys.argv[1:] if argv is None else argv)
    os.environ["SANIC_REQUEST_MAX_SIZE"] = str(setting_int("COMANDA_RASA_MAX_BODY_BYTES"))
    sys.argv = ["rasa", *args]  # Python's copy only: the process's command line (/proc/…/cmdline) is unchanged

    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
