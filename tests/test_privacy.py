"""The privacy detectors: planted leaks are found and masked, ordinary letters stay silent."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import iban
from stdnum.fr import nir

from recouvrement.core.privacy import (
    Finding, build_lexicon, describe_cell, fold, load_lexicon, redact, safe_file_name, scan_text,
)
from recouvrement.core.references import format_rf, rf_reference
from recouvrement.errors import RecouvrementError
from recouvrement.money import format_eur

CLEAN_LETTER = Path(__file__).parent / "data" / "privacy" / "clean_letter.txt"


def with_key(body: str) -> str:
    """A NIR: 13 characters and their 2 check digits."""
    return body + nir.calc_check_digits(body)


NIR = with_key("1850578006084")
NIR_CORSICA = with_key("253072B073004")


def found(text: str) -> list[tuple[int, str]]:
    return [(f.line, f.kind) for f in scan_text(text)]


def only_finding(text: str) -> Finding:
    findings = scan_text(text)
    assert len(findings) == 1, findings
    return findings[0]


# ---------------------------------------------------------------- planted leaks

@pytest.mark.parametrize("kind, token", [
    ("ccam", "DEQP003"),
    ("ccam", "HBLD038"),
    ("ccam", "YYYY010"),
    ("ccam", "HBLD038-1-0"),
    ("ngap", "AMI 3"),
    ("ngap", "K 50"),
    ("ngap", "C 1"),
    ("ngap", "KC 30"),
    ("ngap", "AMK 7,5"),
    ("ngap", "SFI4"),
    ("cim10", "J45.0"),
    ("cim10", "F32.1"),
    ("nir", NIR),
    ("nir", nir.format(NIR)),
    ("nir", NIR_CORSICA),
    ("nir", nir.format(NIR_CORSICA)),
    ("lexicon", "psychiatrie"),
    ("lexicon", "Chimiothérapie"),
    ("lexicon", "CHIMIOTHERAPIE"),
    ("lexicon", "séropositif"),
    ("lexicon", "IVG"),
    ("lexicon", "sage femme"),
    ("lexicon", "soins dentaires"),
])
def test_a_planted_leak_is_found_on_its_line_with_its_kind(kind, token):
    text = f"Madame, Monsieur,\nFacture F2025-000123 : {token} le 03/01/2025.\nCordialement"
    assert found(text) == [(2, kind)]


@pytest.mark.parametrize("token", ["DEQP003", "AMI 3", "J45.0", NIR, nir.format(NIR), "Psychiatrie"])
def test_the_excerpt_shows_context_but_not_the_token(token):
    finding = only_finding(f"Facture F2025-000123 : {token} le 03/01/2025")
    assert token not in finding.excerpt
    assert f"[{finding.kind}:****]" in finding.excerpt
    assert "F2025-000123" in finding.excerpt


def test_the_excerpt_masks_the_other_findings_of_its_line_too():
    findings = scan_text("Acte DEQP003 en psychiatrie")
    assert [f.kind for f in findings] == ["ccam", "lexicon"]
    assert all("DEQP003" not in f.excerpt and "psychiatrie" not in f.excerpt for f in findings)


def test_a_long_line_is_cut_between_words_around_the_token():
    finding = only_finding("Un texte assez long avant le mot qui compte " * 3 + "dialyse"
                           + " et un texte assez long qui vient après lui" * 3)
    assert len(finding.excerpt) < 80
    assert finding.excerpt.startswith(("avant", "le", "mot", "qui", "compte", "assez", "long"))


def test_findings_come_in_reading_order():
    text = "dialyse\nAMI 3 puis DEQP003\n" + NIR
    assert found(text) == [(1, "lexicon"), (2, "ngap"), (2, "ccam"), (3, "nir")]


# ---------------------------------------------------------------- NGAP in context

def test_an_ngap_key_after_a_cotation_keyword_is_found():
    assert found("Cotation : CS") == [(1, "ngap")]


def test_a_cotation_after_an_invoice_number_is_found():
    """Not taken for a group of an IBAN: those never hold a space."""
    assert found("Virement facture F2025-000201 AMI 3") == [(1, "ngap")]


def test_a_cotation_at_the_end_of_a_csv_cell_is_found():
    assert found("mutuelle,Harmonie Mutuelle AMI 3,0.00,30.00") == [(1, "ngap")]


def test_an_ngap_key_alone_in_a_csv_cell_is_found():
    assert found("facture;acte;montant\nF2025-000123;AMI;12,50") == [(2, "ngap")]


@pytest.mark.parametrize("text", [
    "CS 70001 75014 Paris Cedex",
    "Bâtiment C 1er étage, escalier B 2",
    "Résidence Les Pins, bât. K 12",
    "la lettre C et la lettre V",
    "Madame K. Martin",
    "vitamine B 12",
    "IBAN FR76 1234 5678 9012 TC12 3456 789",
])
def test_an_ngap_key_without_its_context_is_not_flagged(text):
    assert scan_text(text) == []


# ---------------------------------------------------------------- CIM-10 in context

@pytest.mark.parametrize("text", ["P2,Martin,Claire J45.0,5 rue Haute,75011", "Claire J45.0;5 rue Haute"])
def test_a_dotted_cim10_code_ending_a_csv_cell_is_found(text):
    """A comma after "J45.0" ends the cell (CI found it in agency.csv before the next cell's digits)."""
    assert found(text) == [(1, "cim10")]


@pytest.mark.parametrize("text", [
    "Diagnostic : E11",
    "diagnostic principal E119",
    "CIM-10 : F32",
    '{"diagnostic": "E11"}',
    "F2025-000123;E11;12,50",
])
def test_a_cim10_code_in_a_diagnosis_context_is_found(text):
    assert found(text) == [(1, "cim10")]


@pytest.mark.parametrize("text", [
    "format A4, sortie A13 puis N12",
    "Bâtiment E11, porte B12",
    "Diagnostic : D49",  # not a category of any chapter
    "Version V1.2.3 du logiciel",
    "Référence RF39 F202 5000 123",
])
def test_a_letter_and_digits_outside_a_diagnosis_context_is_not_flagged(text):
    assert scan_text(text) == []


# ---------------------------------------------------------------- NIR

def test_a_nir_with_a_wrong_key_is_not_flagged():
    wrong = NIR[:13] + f"{(int(NIR[13:]) + 1) % 97:02d}"
    assert scan_text(f"Numéro {wrong}") == []


@pytest.mark.parametrize("typed", [
    "9{nir}",  # glued after a digit
    "{nir}12",  # glued before digits
    "F2025-000201{nir}",  # a reference typed without its space (CI found this one)
    "F2025-000201{dashed}",  # and the NIR cut by dashes
    "{dashed}12",
])
def test_a_nir_glued_to_other_digits_on_one_side_is_flagged(typed):
    """A NIR typed against a reference is still a NIR: its first or last 15 digits are checked."""
    dashed = "-".join([NIR[:1], NIR[1:3], NIR[3:5], NIR[5:7], NIR[7:10], NIR[10:13], NIR[13:]])
    assert found(f"Référence {typed.format(nir=NIR, dashed=dashed)}") == [(1, "nir")]


def test_a_nir_glued_on_both_sides_is_a_longer_number():
    assert scan_text(f"Référence 9{NIR}9") == []


def test_a_glued_iban_is_not_a_nir_whatever_its_digits():
    """An IBAN whose last 15 digits are a NIR with its right key is still an IBAN."""
    bban = "12345678" + NIR
    assert scan_text(f"IBAN FR{iban.calc_check_digits('FR00' + bban)}{bban}") == []


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[0-9]{16,30}", fullmatch=True))
def test_long_numbers_alarm_only_on_a_real_nir_at_one_end(number):
    """The false alarms on long references are bounded: only a valid NIR at either end."""
    expected = any(number[at][0] in "123478" and nir.is_valid(number[at]) for at in (slice(0, 15), slice(-15, None)))
    assert bool(scan_text(f"Référence {number}")) == expected


# ---------------------------------------------------------------- what people really type

ISSUE_NIR = "184127645108946"


@pytest.mark.parametrize("typed", [
    "1-84-12-76-451-089-46",
    "1.84.12.76.451.089.46",
    "1_84_12_76_451_089_46",
    "1/84/12/76/451/089/46",
    "1 84 12 76 451 089 46",
    "1841276451089 46",
    "1841276451089-46",
    "NIR184127645108946",
    "184127645108946NIR",
    "n°184127645108946.",
    "１８４１２７６４５１０８９４６",  # full-width digits
    "18412\u200b7645108946",  # a zero-width space inside
])
def test_a_nir_is_found_however_it_is_typed(typed):
    assert found(f"Virement {typed} merci") == [(1, "nir")]


@pytest.mark.parametrize("typed", ["2-53-07-2B-073-004-{key}", "253072b073004{key}", "PATIENT253072B073004{key}"])
def test_a_corsican_nir_is_found_however_it_is_typed(typed):
    assert found(typed.format(key=NIR_CORSICA[13:])) == [(1, "nir")]


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[1-478][0-9]{14}", fullmatch=True),
       st.sampled_from(["", " ", "-", ".", " - ", "\u2013", " \u2022 "]))
def test_fifteen_digits_with_a_wrong_key_never_alarm(number, separator):
    if nir.is_valid(number):
        number = number[:13] + f"{(int(number[13:]) + 1) % 97:02d}"
    typed = separator.join([number[:1], number[1:3], number[3:5], number[5:7], number[7:10], number[10:13],
                            number[13:]])
    assert scan_text(f"Référence {typed}") == []


@pytest.mark.parametrize("text", [
    "IBAN FR76 1841 2764 5108 9460 0000 000",  # a NIR's digits cut in fours are an IBAN's groups
    "SIRET 184 127 645 10894",
    "le 18/04/1276 à 45 10 89 46",
    "Tél. 01 84 12 76 45 / 10 89 46",
    "Du 01 - 12 - 2025 au 31 - 12 - 2025 : 184 - 127 - 645 - 108 - 946",
    "0430004000101925EUR2 0001234567805250926  250926VIR SEPA",  # a CFONB 120 record: two spaces are no cut
])
def test_digits_cut_where_a_nir_is_never_cut_are_not_a_nir(text):
    assert scan_text(text) == []


@pytest.mark.parametrize("typed", [
    "1  84  12  76  451  089  46",          # two spaces between the fields: a run of exactly a NIR's seven widths
    "1\t84\t12\t76\t451\t089\t46",
    "1   84 12  76 451   089 46",
    "1 8 4 1 2 7 6 4 5 1 0 8 9 4 6",        # one character per box of a form
    "1-8-4-1-2-7-6-4-5-1-0-8-9-4-6",
])
def test_a_nir_typed_with_extra_spaces_or_one_digit_per_box_is_found(typed):
    assert found(f"Virement {typed} merci") == [(1, "nir")]


@pytest.mark.parametrize("typed", [
    "NIR : 1,84,12,76,451,089,46",          # commas
    "n° SS 1  8412  76451  089 46",          # spaces anywhere
    "N.I.R. l84l27645l08946",               # "l" typed for 1
    "NIR 1 84 12 76 451 O89 46",             # "O" typed for 0
    "numéro de sécurité sociale : 1 84 12 76 451 089 46",
    "sécu 1841276451089",                   # the 13 characters without the key
    "Numéro INSEE : 1.84.12.76.451.089",
])
def test_after_a_word_naming_a_nir_any_typing_of_one_is_found(typed):
    assert found(f"Patient {typed} merci") == [(1, "nir")]


@pytest.mark.parametrize("text", [
    "Sécurité sociale : réglé 12,50 € le 03/11/2026, réf. 2026-000123",
    "Immatriculation RCS Paris 184 127 645 10894, SIRET 18412764510894",
    "n° INSEE de l'établissement 18412764510894",   # 14 digits: no NIR without its key, no NIR with it
    "NIR 1234 5678",
    "0430004000101925EUR2 0001234567805250926  250926VIR SEPA",
    "quantités 1 8 4 1 2 7 6 4 5 1 0 8 9 4 6 7",   # sixteen boxes: a longer number
])
def test_text_that_only_looks_like_a_loosely_typed_nir_is_not_one(text):
    assert scan_text(text) == []


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[1-478][0-9]{14}", fullmatch=True),
       st.sampled_from(["boxes", "two spaces", "after NIR", "after sécu with commas"]))
def test_fifteen_digits_with_a_wrong_key_never_alarm_however_loosely_typed(number, typing):
    if nir.is_valid(number):
        number = number[:13] + f"{(int(number[13:]) + 1) % 97:02d}"
    fields = [number[:1], number[1:3], number[3:5], number[5:7], number[7:10], number[10:13], number[13:]]
    typed = {"boxes": " ".join(number), "two spaces": "  ".join(fields), "after NIR": "NIR " + " ".join(fields),
             "after sécu with commas": "sécu " + ",".join(fields)}[typing]
    assert scan_text(f"Référence {typed}") == []


@pytest.mark.parametrize("typed", ["yyyy010", "hbld038", "Hbld038", "deqp003-1-0", "acte yyyy010 le 3 mars"])
def test_a_ccam_code_in_lower_or_title_case_is_found(typed):
    assert found(typed) == [(1, "ccam")]


@pytest.mark.parametrize("text", ["jdupr123@example.org", "https://example.org/page123", "camt053_v04.xml",
                                  "relevé pacs008 du jour", "mars2025"])
def test_lower_case_letters_and_digits_that_are_not_ccam_are_not_flagged(text):
    assert scan_text(text) == []


@pytest.mark.parametrize("text", ["HIV", "test HIV négatif", "AIDS", "Chemotherapy", "dental bill", "MRI scan"])
def test_english_care_terms_are_found(text):
    assert [f.kind for f in scan_text(text)] == ["lexicon"]


@pytest.mark.parametrize("text", ["seance kine", "SEANCE KINE", "seance_kine_mars.csv", "Seance de kine",
                                  "chimio\u00adthérapie", "ﬁbroscopie"])
def test_care_words_typed_without_accents_or_with_hidden_characters_are_found(text):
    assert [f.kind for f in scan_text(text)] == ["lexicon"]


@pytest.mark.parametrize("text", [
    "Suivi en \u0440\u0455\u0443chiatrie",           # Cyrillic р, ѕ, у
    "chimioth\u00e9r\u0430pie",                        # Cyrillic а
    "cardi\u03bflogie",                                # Greek ο
    "\u0420\u0405\u0423\u0421\u041d\u0406\u0410TR\u0406\u0415",  # PSYCHIATRIE in Cyrillic capitals
    "psych\u0131atrie",                                # dotless ı
    "ps\u028fchiatrie",                                # Latin small capital ʏ
    "psych\u0457atrie",                                # Cyrillic ї: a look-alike under an accent
    "\u0441\u0301ardiologie",                          # Cyrillic с under a combining acute
    "cardio\u0323logie", "cardio\u0305logie", "cardio\u20ddlogie",  # a combining mark NFKC leaves alone
    "cardio\u034flogie", "cardio\u3164logie", "cardio\ufe0flogie",  # grapheme joiner, Hangul filler, selector
    "cardio\u202elogie", "cardio\U000e0041logie", "cardio\u2066logie",  # bidi override, tag, isolate
    "\uff43\uff41\uff52\uff44\uff49\uff4f\uff4c\uff4f\uff47\uff49\uff45",  # full-width
])
def test_care_words_typed_with_look_alike_letters_marks_or_invisible_characters_are_found(text):
    assert [f.kind for f in scan_text(text)] == ["lexicon"]


@pytest.mark.parametrize("typed", ["\u041d\u0412LD038", "H\u0392LD038", "\u13bbBLD038"])  # Cyrillic, Greek, Cherokee
def test_a_ccam_code_typed_with_look_alike_capitals_is_found(typed):
    assert found(f"Acte {typed} le 3 mars") == [(1, "ccam")]


@pytest.mark.parametrize("typed", [
    "\u0661\u0668\u0664\u0661\u0662\u0667\u0666\u0664\u0665\u0661\u0660\u0668\u0669\u0664\u0666",  # Arabic-Indic
    "\u0967\u096e\u096a\u0967\u0968\u096d\u096c\u096a\u096b\u0967\u0966\u096e\u096f\u096a\u096c",  # Devanagari
    "1\u201384\u201312\u201376\u2013451\u2013089\u201346",  # en dashes
    "1\u221284\u221212\u221276\u2212451\u2212089\u221246",  # minus signs
    "1\u00b784\u00b712\u00b776\u00b7451\u00b7089\u00b746",  # middle dots
    "1\u202284\u202212\u202276\u2022451\u2022089\u202246",  # bullets
    "1\u300084\u300012\u300076\u3000451\u3000089\u300046",  # ideographic spaces
    "1 84 12 76 45\u202a1 089 46",                     # a bidi embedding inside a field
    "1 - 84 - 12 - 76 - 451 - 089 - 46",                # spaced dashes
    "1 \u2013 84 \u2013 12 \u2013 76 \u2013 451 \u2013 089 \u2013 46", "1 /84 /12 /76 /451 /089 /46",
    "18412\u20627645\u2063108946",                     # invisible operators
])
def test_a_nir_typed_with_other_digits_or_separators_is_found(typed):
    assert found(f"Virement {typed} merci") == [(1, "nir")]


@pytest.mark.parametrize("text", [
    "\u0418\u0432\u0430\u043d\u043e\u0432 \u0421\u0435\u0440\u0433\u0435\u0439, 12 rue Pasteur",  # Иванов Сергей
    "\u03a0\u03b1\u03c0\u03b1\u03b4\u03cc\u03c0\u03bf\u03c5\u03bb\u03bf\u03c2 \u039d\u03af\u03ba\u03bf\u03c2",
    "Mme \u0130layda \u00d6zt\u00fcrk, Be\u015fikta\u015f",  # Turkish dotted İ, ş
    "Dvo\u0159\u00e1k, \u0141\u00f3d\u017a, S\u00f8rensen, \u00c5lesund",
    "Montant d\u00fb : 1\u202f234,56\u00a0\u20ac \u2013 r\u00e9f. n\u00b0 F2025-000123\u2026",
    "Factures 2024\u20132025, d\u00e9lai 30\u201345 jours \u2022 t\u00e9l. 01\u00b745\u00b767\u00b789\u00b710",
])
def test_names_addresses_and_typography_of_other_scripts_are_not_flagged(text):
    assert scan_text(text) == []


@pytest.mark.parametrize("text", ["12 Rue de l'Hôpital, 75013 Paris", "Rue de l'Hôpital", "rue de la Santé",
                                  "boulevard de l'Hôpital"])
def test_hospital_and_health_street_names_are_addresses(text):
    assert scan_text(text) == []


def test_a_patient_named_like_a_disease_is_flagged_and_the_letter_goes_by_hand():
    """Decided: the scanner cannot tell a surname from a word; a refusal (sent by hand) beats a leak."""
    assert found("Madame Jeanne Cancer\n3 rue des Lilas") == [(1, "lexicon")]


# ---------------------------------------------------------------- the creditor's own identity

@pytest.mark.parametrize("name", ["Cabinet dentaire du Parc", "Laboratoire d'analyses médicales",
                                  "Centre de radiologie", "CENTRE DE RADIOLOGIE"])
def test_the_creditors_configured_name_is_known_text(name):
    letter = f"{name}\n3 rue Haute\nMadame,\nvotre facture F2025-000123 reste due.\n{name}"
    assert scan_text(letter, known=(name.title(),)) == []
    assert scan_text(letter) != []


def test_a_known_name_hides_only_itself():
    known = ("Cabinet dentaire du Parc", "accueil@cabinet-dentaire-parc.example")
    text = "Cabinet dentaire du Parc, accueil@cabinet-dentaire-parc.example\nVirement soins dentaires"
    assert found_known(text, known) == [(2, "lexicon")]
    assert found_known("Cabinet dentaire du Parcours", known) == [(1, "lexicon")]


def found_known(text: str, known: tuple[str, ...]) -> list[tuple[int, str]]:
    return [(f.line, f.kind) for f in scan_text(text, known=known)]


# ---------------------------------------------------------------- describing without echoing

def test_a_harmless_cell_is_described_as_itself():
    assert describe_cell("12,50 €") == "12,50 €" and describe_cell("") == "" and describe_cell(None) == ""


@pytest.mark.parametrize("cell, looks_like", [("1-84-12-76-451-089-46", "NIR"), ("séance kiné", "terme de soin"),
                                              ("yyyy010", "CCAM")])
def test_a_flagged_cell_is_described_never_copied(cell, looks_like):
    described = describe_cell(cell)
    assert described.startswith("valeur masquée (ressemble à") and looks_like in described
    assert cell not in described and "kiné" not in described and "84" not in described


def test_a_message_keeps_its_words_and_loses_only_the_flagged_ones():
    assert redact("line 3: not a date: 1-84-12-76-451-089-46") == \
        "line 3: not a date: [valeur masquée (ressemble à un NIR (numéro de sécurité sociale))]"
    assert redact("line 3: not a date: 31/02/2025") == "line 3: not a date: 31/02/2025"


def test_a_file_name_keeps_its_shape_and_loses_only_the_flagged_part():
    assert safe_file_name("releve_1-84-12-76-451-089-46.csv") == "releve_masque-nir.csv"
    assert safe_file_name("camt053_v04.xml") == "camt053_v04.xml"


# ---------------------------------------------------------------- lexicon

def test_a_phrase_is_found_across_a_line_break():
    assert found("une interruption volontaire\nde grossesse") == [(1, "lexicon")]


def test_a_term_typed_without_accents_in_the_lexicon_matches_accented_text():
    lexicon = build_lexicon(["echographie"])
    assert [f.kind for f in scan_text("Échographie", lexicon)] == ["lexicon"]


def test_a_term_inside_a_longer_word_is_not_flagged():
    assert scan_text("La société Dialysea et le mot kinéscope") == []


def test_a_care_word_in_a_street_name_is_an_address():
    assert scan_text("3 rue de la Maternité, 75014 Paris\nPlace de la Maternité") == []


@pytest.mark.parametrize("text", ["5 rue Haute Psychiatre", "12 avenue Victor Hugo Chimiothérapie",
                                  "Place de la Dialyse"])
def test_a_care_word_no_street_is_named_after_is_flagged_in_an_address(text):
    """Only the care words real street names carry (marked "~" in the lexicon) pass in a street name:
    a care word typed into an address field (CI found "5 rue Haute Psychiatre") is flagged."""
    assert found(text) == [(1, "lexicon")]


def test_a_care_word_after_a_street_name_is_still_flagged():
    assert found("12 rue Pasteur\nsuivi de grossesse") == [(2, "lexicon")]


def test_a_lowercase_cours_de_is_not_a_street():
    assert found("en cours de chimiothérapie") == [(1, "lexicon")]


@pytest.mark.parametrize("text", [
    "Centre de santé des Lilas",
    "le tiers payant de l'Assurance Maladie et de votre mutuelle",
    "la Caisse primaire d'assurance maladie",
    "Vous pouvez scanner le QR code de ce courrier.",
    "Nous avons examiné votre dossier avec soin. Prenez soin de vous.",
])
def test_institutions_payers_and_ordinary_words_are_not_flagged(text):
    assert scan_text(text) == []


def test_the_scanner_as_an_examination_is_flagged():
    assert found("Vous avez passé un scanner le 3 mars") == [(1, "lexicon")]


def test_the_default_lexicon_holds_a_few_hundred_terms():
    lexicon = load_lexicon()
    assert 300 <= len(lexicon.terms) and "psychiatrie" in lexicon.terms
    assert "assurance maladie" in lexicon.allowed


def test_every_term_of_the_default_lexicon_is_flagged_in_a_sentence():
    lexicon = load_lexicon()
    missed = [t for t in lexicon.terms if [f.kind for f in scan_text(f"Note : {t}.", lexicon)] != ["lexicon"]]
    assert missed == []


def test_a_lexicon_file_holds_terms_allowed_phrases_and_comments(tmp_path):
    path = tmp_path / "terms.txt"
    path.write_text("# mine\nhomeopathie\n!centre d'homéopathie des Lilas\n\n", encoding="utf-8")
    lexicon = load_lexicon(path)
    assert lexicon.terms == ("homeopathie",)
    assert found_with(lexicon, "Homéopathie") == ["lexicon"]
    assert found_with(lexicon, "Centre d'Homéopathie des Lilas") == []


def found_with(lexicon, text: str) -> list[str]:
    return [f.kind for f in scan_text(text, lexicon)]


def test_a_missing_lexicon_file_is_a_clear_error(tmp_path):
    with pytest.raises(RecouvrementError, match="terms.txt"):
        load_lexicon(tmp_path / "terms.txt")


def test_folding_keeps_the_length_of_the_text():
    text = "Écho ŒUVRE İstanbul l’hôpital ß"
    assert len(fold(text)) == len(text)
    assert fold("Échographie À l’ÉTÉ") == "echographie a l'ete"


# ---------------------------------------------------------------- ordinary letters stay silent

def test_the_reminder_letter_fixture_is_clean():
    assert scan_text(CLEAN_LETTER.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("text", [
    "Facture F2025-000123 du 03/01/2025",
    "Référence RF39 F202 5000 123 (RF39F2025000123)",
    "IBAN FR76 3000 6000 0112 3456 7890 189 - FR7630006000011234567890189",
    "BIC BNPAFRPPXXX, AGRIFRPP882",
    "SIRET 123 456 789 00012 ou 12345678900012, SIREN 123456789",
    "Montant : 1 234,56 € ; 45,00 EUR ; 12.50",
    "Le 14 mars 2025, le 2025-03-14",
    "Tél. 01 45 67 89 10 ou +33 6 12 34 56 78",
    "75014 Paris, 2A004, 20000 Ajaccio, 97400 Saint-Denis",
    "Papier A4, colis 3 kg",
])
def test_look_alikes_of_ordinary_letters_are_not_flagged(text):
    assert scan_text(text) == []


NAMES = ["Éloïse Lefèvre", "Jérôme Bénard", "Françoise Dupré", "Anaïs Côté", "Gaëlle Le Guen",
         "Noël Müller", "Cécile Hervé", "Zoé Martin", "Hélène Dubois", "Maël Kerjean",
         "Jean-Baptiste N'Diaye", "Ségolène d'Arc", "Loïc Châtelain", "Agnès Sørensen", "Bruno Caillé"]
STREETS = ["rue de la Santé", "avenue Pasteur", "place de l'Hôpital", "boulevard de l'Hôpital",
           "rue de la Maternité", "allée des Lilas", "chemin du Moulin", "impasse Victor Hugo",
           "quai de la Loire", "cours Lafayette", "rue du Docteur Roux"]
CITIES = ["75014 Paris", "13005 Marseille", "69003 Lyon", "20000 Ajaccio", "97400 Saint-Denis"]
SENTENCES = [
    "Madame, Monsieur,",
    "Sauf erreur de notre part, la facture {invoice} du {date} reste impayée.",
    "Le montant restant dû est de {amount}.",
    "Vous pouvez régler par virement : IBAN {iban}, BIC {bic}, référence {rf}.",
    "Pour toute question, appelez-nous au {phone}.",
    "Nous pouvons vous proposer un paiement en plusieurs fois.",
    "Le service social de votre CPAM ou le CCAS de votre commune peut vous aider.",
    "Centre de santé des Lilas, SIRET {siret}.",
    "{name}\n{number} {street}\n{city}",
    "Votre part après le tiers payant de l'Assurance Maladie : {amount}.",
    "Nous vous prions d'agréer nos salutations distinguées.",
]


@st.composite
def french_ibans(draw) -> str:
    bban = draw(st.from_regex(r"[0-9]{10}[0-9A-Z]{11}[0-9]{2}", fullmatch=True))
    return iban.format("FR" + iban.calc_check_digits("FR00" + bban) + bban)


@st.composite
def clean_letters(draw) -> str:
    fields = {
        "invoice": f"F{draw(st.integers(2015, 2035))}-{draw(st.integers(1, 999_999)):06d}",
        "date": f"{draw(st.integers(1, 28)):02d}/{draw(st.integers(1, 12)):02d}/{draw(st.integers(2015, 2035))}",
        "amount": format_eur(draw(st.integers(1, 10_000_000))),
        "iban": draw(french_ibans()),
        "bic": draw(st.from_regex(r"[A-Z]{4}FR[A-Z0-9]{2}([A-Z0-9]{3})?", fullmatch=True)),
        "phone": "0" + " ".join(f"{draw(st.integers(1, 99)):02d}" for _ in range(5))[1:],
        "siret": " ".join(str(draw(st.integers(10**13, 10**14 - 1)))[i:i + 3] for i in (0, 3, 6, 9)),
        "name": draw(st.sampled_from(NAMES)),
        "number": draw(st.sampled_from(["3", "12", "8 bis", "145", "2 ter"])),
        "street": draw(st.sampled_from(STREETS)),
        "city": draw(st.sampled_from(CITIES)),
    }
    fields["rf"] = format_rf(rf_reference(fields["invoice"]))
    sentences = draw(st.lists(st.sampled_from(SENTENCES), min_size=3, max_size=20))
    return "\n".join(s.format(**fields) for s in sentences)


@settings(max_examples=300, deadline=None)
@given(clean_letters())
def test_letters_assembled_from_safe_parts_are_never_flagged(letter):
    assert scan_text(letter) == []


# Speed is measured in benchmarks/scanner.py, never in a timed test.


LEAKS = ["DEQP003", "AMI 3", "J45.0", NIR, nir.format(NIR_CORSICA), "chimiothérapie", "Psychiatre"]


@settings(max_examples=200, deadline=None)
@given(clean_letters(), st.sampled_from(LEAKS), st.integers(0, 40))
def test_a_leak_planted_in_a_clean_letter_is_always_found_and_masked(letter, leak, at):
    lines = letter.splitlines()
    at = min(at, len(lines))
    lines.insert(at, f"Pour mémoire : {leak}.")
    findings = scan_text("\n".join(lines))
    assert [f.line for f in findings] == [at + 1]
    assert leak not in findings[0].excerpt


# ---------------------------------------------------------------- identifiers the document carries as keys

def test_a_code_shape_that_is_exactly_an_identifier_of_the_document_is_not_reported():
    document = "patient_id;invoice_number;nom\nP10;FACT001;Martin\n"
    assert {f.kind for f in scan_text(document)} == {"cim10", "ccam"}
    assert scan_text(document, ids={"P10", "FACT001"}) == []


def test_an_identifier_hides_only_itself_as_a_whole_token_not_another_code_nor_a_longer_one():
    assert [f.kind for f in scan_text("P10;J45;Martin", ids={"P10"})] == ["cim10"]
    assert [f.kind for f in scan_text("P10;P10.1;Martin", ids={"P10"})] == ["cim10"]
    assert [f.kind for f in scan_text("P10;p10;Martin", ids={"p10"})] == ["cim10"]   # exact case


def test_an_identifier_holding_a_nir_or_a_care_word_is_still_reported():
    assert [f.kind for f in scan_text("184127645108946;Martin", ids={"184127645108946"})] == ["nir"]
    assert [f.kind for f in scan_text("psychiatrie;Martin", ids={"psychiatrie"})] == ["lexicon"]


def test_a_code_equal_to_an_identifier_after_a_diagnosis_keyword_is_still_reported():
    assert [f.kind for f in scan_text("P10;Martin;diagnostic P10", ids={"P10"})] == ["cim10"]


# ---------------------------------------------------------------- our own digests

def _digest_holding(nir_text: str, at: int, length: int = 64) -> str:
    """A lower-case hex digest of `length` characters with `nir_text` at `at`, letters around it."""
    filler = "cafe5d3e" * 16                # no two digits in a row: the NIR is the only run of digits
    return (filler[:at] + nir_text + filler[at + len(nir_text):])[:length]


@pytest.mark.parametrize("length", [32, 40, 64])
@pytest.mark.parametrize("at", [0, 8, "end"])
def test_a_nir_shape_inside_one_of_our_digests_is_no_nir(length, at):
    """About one SHA-256 in 7,000 holds 15 digits that pass for a NIR: a report, a manifest, the audit page or an
    export printing one of our digests was refused as a leak."""
    start = length - 15 if at == "end" else at
    digest = _digest_holding(NIR, start, length)
    assert not digest.isdigit() and NIR in digest
    for text in (digest, f"Chaîne d'audit : {digest}", f"sha256;{digest};fichier.pdf", f'"sha256": "{digest}"'):
        assert scan_text(text) == [], text


def test_the_audit_head_once_refused_scans_clean():
    head = "c5deea3329a4fab914a515eedc771425d4b78db620e113d7225502050684275e"
    assert found("tête : 113d7225502050684275e") == [(1, "nir")]  # the part alone still looks like one
    assert scan_text(f"Tête de la chaîne d'audit : {head}.") == []


@pytest.mark.parametrize("seed", ["12671", "21090", "22626", "25972", "43622"])
def test_sha256_digests_that_hold_a_nir_shape_scan_clean(seed):
    """Five of the 19 in 200,000 SHA-256 digests (of "0" … "199999") the scanner refused before; none now."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    assert scan_text(f"sha256 {digest}") == []


def test_a_corsican_nir_shape_inside_one_of_our_digests_is_no_nir():
    digest = _digest_holding(NIR_CORSICA.lower(), 20)
    assert scan_text(f"tête {digest}") == []


@pytest.mark.parametrize("payment_id", [f"camt-{NIR}7", f"cfonb-8{NIR}"])
def test_a_nir_shape_inside_a_payment_id_made_from_a_digest_is_no_nir(payment_id):
    assert scan_text(f"paiement;{payment_id};12,00") == []


@pytest.mark.parametrize("text", [
    "{digest}X",                         # glued to a letter that is no hex digit: no digest token
    "NIR{digest}",
    "{nir}",                             # alone
    "{nir} {digest}",                    # beside a digest, not inside it
    "{short}",                           # hex letters and a NIR, but not a digest's length
    "{upper}",                           # upper-case hex is not how we print digests
    "camt-{nir}71",                      # 17 hex digits: not one of our payment ids
    "xcamt-{nir}7",
    "Réf. {nir}7 camt",
])
def test_a_nir_is_still_found_where_no_digest_of_ours_holds_it(text):
    digest = _digest_holding(NIR, 10)
    typed = text.format(digest=digest, nir=NIR, short=_digest_holding(NIR, 3, 30),
                        upper=_digest_holding(NIR, 10).upper())
    assert [kind for _, kind in found(typed)] == ["nir"], typed
