"""Fiscal data checks, one field at a time: every negative with its code, its text in both languages, and the
chat's offer lists; the SAT catalogs in comanda/sat/ against satcfdi's."""

import re
from pathlib import Path

import pytest
import yaml

from comanda.i18n import catalogue
from comanda.services.cfdi import catalogs
from comanda.services.cfdi.catalogs import postal_code_exists, regime_options, use_options
from comanda.services.cfdi.fiscal import (
    FiscalData,
    check_email,
    check_fiscal_data,
    check_name,
    check_postal_code,
    check_regime,
    check_rfc,
    check_use,
    name_without_capital_regime,
    rfc_check_digit,
)
from integrations.cfdi.sat_catalogs import description_mismatches, postal_codes_text
from tests.helpers.cfdi import COMPANY, PERSON

STORE_CP = "06000"


def codes(problems):
    return [p.code for p in problems]


@pytest.mark.parametrize(
    "rfc",
    [
        "EKU9003173C9",
        "JES900109Q90",
        "CACX7605101P8",
        "FUNK671228PH6",
        "URE180429TM6",
        "XAXX010101000",
        "XEXX010101000",
    ],
)
def test_valid_rfcs(rfc):
    assert check_rfc(rfc) == []


@pytest.mark.parametrize(
    "rfc",
    [
        "",
        "EKU900317",
        "EKU9003173C99X",
        "EK19003173C9",
        "EKU9013173C9",
        "EKU9002303C9",
        "CACX7605101P",
        "cacx7605101p8",
        "EKU-900317-3C9",
    ],
)
def test_malformed_rfcs(rfc):
    assert codes(check_rfc(rfc)) == ["rfc_format"]


@pytest.mark.parametrize("rfc", ["EKU9003173C8", "CACX7605101P9", "XAXX010101001"])
def test_wrong_check_digit(rfc):
    assert codes(check_rfc(rfc)) == ["rfc_check_digit"]


def test_check_digit_algorithm():
    assert rfc_check_digit("EKU9003173C9") == "9"
    assert rfc_check_digit("ICV060329BY0") == "0"


def test_normalization_makes_typed_data_satisfy_sat():
    typed = FiscalData(" eku-900317-3c9 ", "  escuela   kemper urgate ", " 42501 ", "601 ", "g03", " a@b.mx ")
    assert typed.normalized() == FiscalData("EKU9003173C9", "ESCUELA KEMPER URGATE", "42501", "601", "G03", "a@b.mx")
    assert check_fiscal_data(typed, STORE_CP) == []


@pytest.mark.parametrize(
    "name, suggestion",
    [
        ("ACME SA DE CV", "ACME"),
        ("ACME S.A. DE C.V.", "ACME"),
        ("ACME, S. DE R.L. DE C.V.", "ACME"),
        ("TACOS DEL NORTE SAPI DE CV", "TACOS DEL NORTE"),
        ("AMIGOS DEL CAFE A.C.", "AMIGOS DEL CAFE"),
        ("COMERCIAL SAS", "COMERCIAL"),
        ("GRUPO SAB DE CV", "GRUPO"),
    ],
)
def test_company_names_without_capital_regime(name, suggestion):
    assert name_without_capital_regime(name) == suggestion
    problems = check_name(name, "EKU9003173C9")
    assert codes(problems) == ["name_capital_regime"] and problems[0].params == {"suggestion": suggestion}


def test_a_persons_name_is_not_a_company():
    assert check_name("MARIA SA", "CACX7605101P8") == []
    assert check_name("SAN JUAN DE LOS LAGOS", "EKU9003173C9") == []


def test_name_negatives():
    assert codes(check_name("", "EKU9003173C9")) == ["name_missing"]
    assert codes(check_name("A|B", "EKU9003173C9")) == ["name_format"]
    assert codes(check_name("X" * 301, "EKU9003173C9")) == ["name_format"]
    assert codes(check_name("PUBLICO EN GENERAL", "XAXX010101000")) == ["name_public_general"]
    assert check_name("JOHN SMITH", "XEXX010101000") == []


def test_postal_codes():
    assert postal_code_exists("06000") and postal_code_exists("99999") and postal_code_exists("54539")
    assert not postal_code_exists("00500") and not postal_code_exists("17000") and not postal_code_exists("5453")
    assert codes(check_postal_code("0600", "EKU9003173C9", STORE_CP)) == ["postal_code_format"]
    assert codes(check_postal_code("06OOO", "EKU9003173C9", STORE_CP)) == ["postal_code_format"]
    assert codes(check_postal_code("17500", "EKU9003173C9", STORE_CP)) == ["postal_code_unknown"]
    assert codes(check_postal_code("42501", "XAXX010101000", STORE_CP)) == ["postal_code_generic"]
    assert check_postal_code(STORE_CP, "XAXX010101000", STORE_CP) == []


def test_regimes_by_person_type():
    assert check_regime("601", "EKU9003173C9") == [] and check_regime("626", "EKU9003173C9") == []
    assert codes(check_regime("612", "EKU9003173C9")) == ["regime_person_type"]
    assert codes(check_regime("601", "CACX7605101P8")) == ["regime_person_type"]
    assert codes(check_regime("612", "XAXX010101000")) == ["regime_person_type"]
    assert check_regime("616", "XEXX010101000") == []
    assert codes(check_regime("609", "EKU9003173C9")) == ["regime_unknown"]  # SAT ended it in 2019
    assert codes(check_regime("999", "EKU9003173C9")) == ["regime_unknown"]


def test_uses_by_regime():
    assert check_use("G03", "601", "EKU9003173C9") == []
    assert codes(check_use("D01", "601", "EKU9003173C9")) == ["use_not_allowed"]  # deductions: persons only
    assert codes(check_use("G03", "605", "CACX7605101P8")) == ["use_not_allowed"]  # salaried: D01-D10, S01
    assert check_use("D01", "605", "CACX7605101P8") == []
    assert codes(check_use("G03", "616", "XAXX010101000")) == ["use_not_allowed"]
    assert check_use("S01", "616", "XAXX010101000") == []
    assert codes(check_use("CP01", "601", "EKU9003173C9")) == ["use_unknown"]  # payment receipts only
    assert codes(check_use("P01", "601", "EKU9003173C9")) == ["use_unknown"]


def test_email():
    assert check_email(None) == [] and check_email("ana@cafe.mx") == []
    for bad in ("ana", "ana@", "ana@cafe", "ana cafe@x.mx", "a@b.c."):
        assert codes(check_email(bad)) == ["email_format"], bad


def test_whole_data_reports_every_field_and_rfc_first():
    assert check_fiscal_data(COMPANY, STORE_CP) == [] and check_fiscal_data(PERSON, STORE_CP) == []
    bad = FiscalData("ACM010101AB1", "ACME SA DE CV", "17500", "612", "D01", "nope")
    assert codes(check_fiscal_data(bad, STORE_CP)) == ["rfc_check_digit", "email_format"]
    bad = FiscalData("EKU9003173C9", "ACME SA DE CV", "17500", "612", "D01", "nope")
    assert [(p.field, p.code) for p in check_fiscal_data(bad, STORE_CP)] == [
        ("name", "name_capital_regime"),
        ("postal_code", "postal_code_unknown"),
        ("regime", "regime_person_type"),
        ("email", "email_format"),
    ]
    bad = FiscalData("EKU9003173C9", "ESCUELA KEMPER URGATE", "42501", "601", "D01")
    assert [(p.field, p.code) for p in check_fiscal_data(bad, STORE_CP)] == [("use", "use_not_allowed")]


def test_every_problem_code_explains_itself_in_both_languages():
    sources = [
        Path(f"comanda/services/cfdi/{name}.py")
        for name in ("fiscal", "invoicing", "lifecycle", "global_invoices", "credit_notes")
    ]
    sources += [Path("integrations/cfdi/rejections.py"), Path("integrations/cfdi/finkok.py")]
    text = "\n".join(path.read_text() for path in sources)
    used = set(re.findall(r'(?:refuse|Problem)\(\s*"[a-z_]+",\s*"([a-z_]+)"', text))
    used |= set(re.findall(r'\), "[a-z_]+", "([a-z_]+)"\)', text))  # rejections.FIELD_WORDS
    assert {
        "rfc_format",
        "rfc_check_digit",
        "postal_code_unknown",
        "regime_person_type",
        "use_not_allowed",
        "name_capital_regime",
        "deadline_passed",
        "order_not_paid",
        "order_already_invoiced",
        "name_mismatch",
        "postal_code_mismatch",
        "regime_mismatch",
    } <= used
    # The customer reads the domain's utter_cfdi_<code>; staff on the command line the catalogue's cfdi.<code>.
    responses = {}
    for path in Path("domain").glob("*.yml"):
        responses.update((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("responses") or {})
    texts = catalogue()
    for code in used | {"pac_unavailable", "stamp_unconfirmed", "invoice_failed", "email_failed"}:
        if f"utter_cfdi_{code}" in responses:
            languages = {c["value"] for v in responses[f"utter_cfdi_{code}"] for c in v["condition"]}
            assert languages == {"es", "en"}, code
        else:
            assert texts[f"cfdi.{code}"]["es"] and texts[f"cfdi.{code}"]["en"], code
    customer_fields = {"rfc", "name", "postal_code", "regime", "use", "email", "order"}
    chat = set(re.findall(r'(?:refuse|Problem)\(\s*"(?:' + "|".join(customer_fields) + r')",\s*"([a-z_]+)"', text))
    assert chat and all(f"utter_cfdi_{code}" in responses for code in chat)  # what the chat can say
    assert all(set(v) == {"es", "en"} for k, v in texts.items() if k.startswith("cfdi."))


def test_offer_lists_fit_whatsapp_rows():
    for rfc in ("EKU9003173C9", "CACX7605101P8", "XAXX010101000"):
        for language in ("es", "en"):
            for option in regime_options(rfc, language):
                assert len(option.title) <= 24 and len(option.description) <= 72, option
                for use in use_options(rfc, option.id, language):
                    assert len(use.title) <= 24 and len(use.description) <= 72, use


def test_offer_lists_only_hold_valid_values():
    company = [o.id for o in regime_options("EKU9003173C9", "es")]
    assert company == ["601", "626", "603", "610", "620", "622", "623", "624"]  # 628 has no use for a sale
    person = [o.id for o in regime_options("CACX7605101P8", "en")]
    assert person[:3] == ["612", "626", "605"] and "601" not in person and "629" not in person
    assert [o.id for o in regime_options("XAXX010101000", "es")] == ["616"]
    assert [o.id for o in use_options("XEXX010101000", "616", "es")] == ["S01"]
    salaried = [o.id for o in use_options("CACX7605101P8", "605", "es")]
    assert salaried == ["S01", "D01", "D02", "D03", "D04", "D05", "D06", "D07", "D08", "D09", "D10"]
    assert [o.id for o in use_options("EKU9003173C9", "601", "en")][:3] == ["G03", "G01", "S01"]
    assert regime_options("EKU9003173C9", "en")[1].title == "626 RESICO"
    assert catalogs.regime_label("612", "en") == "612 Business activity" and catalogs.use_label("X", "es") == "X"


def test_sat_data_files_match_satcfdis_catalog():
    assert description_mismatches() == []
    assert (catalogs.SAT_DIR / "codigos_postales.txt").read_text() == postal_codes_text()
