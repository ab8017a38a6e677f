"""Deterministic sample and scale data for the fictional "Centre de santé des Lilas".

    python -m tools.samples --out recouvrement/sample_clinic                      # the committed set
    python -m tools.samples --out /tmp/scale --invoices 1000000     # scale mode

Sample mode writes invoices.csv, remittance_amo.csv, remittance_amc.csv, bank_camt053.xml,
bank_cfonb120.txt, retour_noemie.rsp (a CPAM's NOEMIE return: AMO shares still awaited paid,
rejected or deferred, and a clawback on a share paid in remittance_amo.csv), recouvrement.toml
and expected.csv. Scale mode (automatic above
SCALE_THRESHOLD invoices) writes payments_patient.csv instead of the two bank statements, and
is vectorised end to end. The same seed gives the same bytes.

expected.csv is the ground truth, one row per payment line of every file:
source_file, source_line, payment_id, invoice_numbers (space-separated), case, amount_cents.
source_line is the physical line of a CSV (header = line 1) or CFONB file, and the 1-based
entry position in a camt.053 statement. payment_id is the CSV's own id, the entry's
AcctSvcrRef (a batch transaction's TxDtls/Refs/AcctSvcrRef) in camt.053, and the 7-character
reference of the 04 record in CFONB. Cases to allocate: explicit, rf, text, grouped,
name_amount, partial, overpayment, guarantor, batch, resubmitted (paid after its own
rejection). Cases not to allocate: rejected (a refusal, no money), pending, foreign_currency
(refused), and noise, debit, cheque_deposit (no invoice). A clawback (negative amount_cents)
reverses that much of the insurer's allocation on its invoice. In the NOEMIE return, source_line
is the 128-byte block where the share starts and payment_id the id the reader gives the line.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import click
import numpy as np
from stdnum import luhn
from stdnum.iso7064 import mod_97_10

from recouvrement.core.references import rf_reference

AS_OF = date(2026, 11, 23)
SCALE_THRESHOLD = 5_000
CAMT_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"

INVOICE_COLUMNS = [
    "invoice_number", "issue_date", "due_date", "patient_id", "last_name", "first_name",
    "birth_date", "address", "postal_code", "city", "email", "phone", "nir", "total_amount",
    "amo_amount", "amc_amount", "patient_amount", "amc_payer", "coverage", "care_description",
    "act_codes", "guarantor_last_name", "guarantor_first_name", "guarantor_address",
    "guarantor_postal_code", "guarantor_city", "guarantor_email", "sms_consent", "email_consent",
]
PAYMENT_CSV_COLUMNS = [
    "payment_id", "payment_date", "payer_type", "payer_name", "amount", "reference",
    "invoice_number", "status", "reject_reason",
]
EXPECTED_COLUMNS = ["source_file", "source_line", "payment_id", "invoice_numbers", "case",
                    "amount_cents"]
COVERAGES = np.array(["none", "css", "ame", "at_mp"], dtype=object)

# ---------------------------------------------------------------- reference lists

_LAST = (
    "Lefèvre|Dupré|N'Diaye|De La Fontaine|Martin|Bernard|Dubois|Thomas|Robert|Richard|Petit|"
    "Durand|Leroy|Moreau|Simon|Laurent|Michel|Garcia|David|Bertrand|Roux|Vincent|Fournier|"
    "Morel|Girard|André|Mercier|Blanc|Guérin|Boyer|Garnier|Chevalier|François|Legrand|"
    "Gauthier|Perrin|Robin|Clément|Morin|Nicolas|Henry|Roussel|Mathieu|Masson|Marchand|"
    "Duval|Denis|Dumont|Lemaire|Noël|Meyer|Dufour|Meunier|Brun|Blanchard|Giraud|Joly|"
    "Rivière|Lucas|Brunet|Gaillard|Barbier|Arnaud|Martinez|Gérard|Roche|Renard|Schmitt|"
    "Leroux|Colin|Vidal|Caron|Picard|Fabre|Aubert|Lemoine|Renaud|Dumas|Lacroix|Olivier|"
    "Bourgeois|Benoît|Leclerc|Payet|Rolland|Lecomte|Lopez|Dupuy|Guillot|Hubert|Berger|"
    "Carpentier|Sanchez|Moulin|Deschamps|Huet|Vasseur|Perez|Fleury|Klein|Jacquet|Poirier|"
    "Carré|Ménard|Maillard|Hervé|Le Gall|Léger|Prévost|Le Roux|Lévêque|Barré|Étienne|"
    "Lemaître|Bénard|Maréchal|Barthélémy|Da Silva|Dos Santos|Saint-Martin|Diallo|Traoré|"
    "Koné|Ben Saïd|Haddad|Nguyen|Le Bihan|Lœuillet|Dupont|Fontaine-Duval|Abdelkader|Çelik"
)
_MALE = (
    "Jean|Jean-François|Pierre|Michel|André|Philippe|Louis|Alain|Jacques|Bernard|Daniel|"
    "Paul|Claude|Christian|Henri|Nicolas|François|Patrick|Gérard|Christophe|Julien|"
    "Stéphane|David|Frédéric|Sébastien|Thierry|Laurent|Éric|Olivier|Hervé|Benoît|Jérôme|"
    "Raphaël|Noé|Léo|Gabriel|Jules|Lucas|Hugo|Arthur|Maël|Adam|Théo|Mathéo|Mohamed|"
    "Karim|Youssef|Mamadou|Loïc|Gaël|Aurélien|Clément|Rémi|Jean-Baptiste|Pierre-Yves|Joël"
)
_FEMALE = (
    "Marie|Éloïse|Maëlle|Anne-Sophie|Marie-Christine|Nathalie|Isabelle|Sylvie|Catherine|"
    "Françoise|Monique|Christine|Valérie|Sandrine|Céline|Sophie|Aurélie|Hélène|Émilie|Chloé|"
    "Léa|Manon|Camille|Inès|Jade|Louise|Zoé|Anaïs|Clémence|Noémie|Agnès|Bénédicte|"
    "Geneviève|Thérèse|Fatoumata|Aïcha|Fatima|Nadia|Yasmine|Océane|Mélanie|Gaëlle|Héloïse|"
    "Marie-Hélène|Ève|Adèle|Cécile|Élodie|Séverine|Joséphine"
)
_STREETS = (
    "rue de Belleville|avenue Jean-Jaurès|rue de Crimée|boulevard de la Villette|"
    "rue Pelleport|rue de Ménilmontant|allée des Frênes|place des Fêtes|"
    "rue du Général-Leclerc|avenue Gambetta|rue de Paris|rue Édouard-Vaillant|"
    "impasse des Mûriers|chemin des Vignes|rue Victor-Hugo|rue de la République|"
    "avenue Pasteur|quai de l'Oise|rue Saint-Éloi|rue de l'Église|boulevard Sérurier|"
    "rue Haxo|rue Compans|rue d'Hautpoul|rue Émile-Zola|avenue du Président-Wilson|"
    "rue des Pyrénées|rue de Romainville|sentier des Près|cité Jandelle"
)
# (postal code, city, the CPAM that pays the AMO share, weight): mostly local patients.
_CITIES = [
    ("75019", "Paris", "CPAM DE PARIS", 20), ("75020", "Paris", "CPAM DE PARIS", 14),
    ("75010", "Paris", "CPAM DE PARIS", 3), ("75011", "Paris", "CPAM DE PARIS", 3),
    ("75018", "Paris", "CPAM DE PARIS", 3),
    ("93260", "Les Lilas", "CPAM DE LA SEINE-SAINT-DENIS", 12),
    ("93310", "Le Pré-Saint-Gervais", "CPAM DE LA SEINE-SAINT-DENIS", 6),
    ("93500", "Pantin", "CPAM DE LA SEINE-SAINT-DENIS", 6),
    ("93170", "Bagnolet", "CPAM DE LA SEINE-SAINT-DENIS", 5),
    ("93100", "Montreuil", "CPAM DE LA SEINE-SAINT-DENIS", 5),
    ("93230", "Romainville", "CPAM DE LA SEINE-SAINT-DENIS", 4),
    ("94300", "Vincennes", "CPAM DU VAL-DE-MARNE", 2),
    ("94000", "Créteil", "CPAM DU VAL-DE-MARNE", 1),
    ("91000", "Évry-Courcouronnes", "CPAM DE L'ESSONNE", 1),
    ("69003", "Lyon", "CPAM DU RHÔNE", 1), ("13005", "Marseille", "CPAM DES BOUCHES-DU-RHÔNE", 1),
    ("59000", "Lille", "CPAM DE LILLE-DOUAI", 1), ("35000", "Rennes", "CPAM D'ILLE-ET-VILAINE", 1),
    ("33000", "Bordeaux", "CPAM DE LA GIRONDE", 1),
    ("06000", "Nice", "CPAM DES ALPES-MARITIMES", 1),
    ("97400", "Saint-Denis", "CGSS DE LA RÉUNION", 1),
]
# Departments of birth written in a NIR; 99 is "born abroad".
_BIRTH_DEPARTMENTS = np.array([75, 75, 75, 93, 93, 94, 92, 91, 69, 13, 59, 33, 35, 62, 99, 99])
_MUTUELLES = [("Harmonie Mutuelle", 5), ("MGEN", 4), ("Malakoff Humanis", 3), ("Alan", 2),
              ("AG2R La Mondiale", 2), ("Almerys", 2)]
# (description, act codes, AMO base in cents, overrun range in euros, kind, weight)
_CARE = [
    ("Consultation médecine générale", "G", 3000, (0, 0), "consult", 30),
    ("Consultation médecine générale enfant", "G MEG", 3500, (0, 0), "consult", 6),
    ("Consultation cardiologie", "CS", 5000, (0, 40), "consult", 6),
    ("Consultation cardiologie et électrocardiogramme", "CS DEQP003", 6432, (0, 30), "consult", 4),
    ("Consultation dermatologie", "CS", 5000, (0, 30), "consult", 5),
    ("Consultation gynécologie", "CS", 5000, (0, 35), "consult", 5),
    ("Consultation pédiatrie", "CS", 3200, (0, 20), "consult", 4),
    ("Consultation ophtalmologie avec fond d'œil", "CS BGQP002", 7830, (0, 50), "consult", 4),
    ("Consultation psychiatrie", "CNPSY", 5500, (0, 30), "consult", 3),
    ("Détartrage", "HBJD001", 2892, (0, 0), "act", 8),
    ("Obturation d'une carie sur deux faces", "HBMD043", 4820, (0, 0), "act", 5),
    ("Extraction d'une dent permanente", "HBGD036", 3344, (0, 0), "act", 3),
    ("Couronne dentaire céramo-métallique", "HBLD038", 12000, (380, 780), "prosthesis", 3),
    ("Inlay-core et couronne céramique", "HBLD090 HBLD038", 21000, (400, 700), "prosthesis", 1),
    ("Échographie abdominale", "ZCQM001", 5670, (0, 25), "act", 3),
    ("Radiographie du thorax", "ZBQK002", 2128, (0, 0), "act", 3),
    ("Séance de kinésithérapie", "AMK 8", 1720, (0, 0), "act", 4),
    ("Injection intramusculaire", "AMI 1", 315, (0, 0), "act", 2),
    ("Pansement complexe", "AMI 4", 1260, (0, 0), "act", 2),
]
_AMO_REJECTS = np.array(["Droits non ouverts", "Doublon", "Prescription absente",
                         "Acte non remboursable", "Bénéficiaire inconnu"], dtype=object)
_AMC_REJECTS = np.array(["Adhérent inconnu", "Contrat résilié", "Garantie épuisée", "Doublon",
                         "Droits non ouverts à la date des soins"], dtype=object)
# Payers that are nobody's patient, for noise lines.
_STRANGERS = np.array(["KOWALSKI ADAM", "OLIVEIRA MARTA", "SCHULZ HANNAH", "M. WEISS TOBIAS",
                       "ROSSI GIULIA", "VAN DAMME PIETER", "MME NOWAK EWA"], dtype=object)


def _unaccent(text: str) -> str:
    text = text.replace("œ", "oe").replace("Œ", "OE")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


@dataclass(frozen=True)
class _Names:
    """One list of names in the three spellings the files need."""

    text: np.ndarray   # as written on an invoice: "Jean-François"
    bank: np.ndarray   # as a bank prints it: "JEAN FRANCOIS"
    mail: np.ndarray   # an e-mail local part: "jeanfrancois"

    @classmethod
    def of(cls, words: list[str]) -> _Names:
        bank = [_unaccent(w).upper().replace("'", " ").replace("-", " ") for w in words]
        mail = [b.lower().replace(" ", "") for b in bank]
        return cls(*(np.array(v, dtype=object) for v in (words, bank, mail)))


LAST = _Names.of(_LAST.split("|"))
FIRST = _Names.of(_MALE.split("|") + _FEMALE.split("|"))
N_MALE = len(_MALE.split("|"))
STREETS = np.array(_STREETS.split("|"), dtype=object)
CARE_TEXT = np.array([c[0] for c in _CARE], dtype=object)
CARE_CODES = np.array([c[1] for c in _CARE], dtype=object)
CARE_BASE = np.array([c[2] for c in _CARE], dtype=np.int64)
CARE_OVER = np.array([c[3] for c in _CARE], dtype=np.int64)
CARE_KIND = np.array([c[4] for c in _CARE], dtype=object)
MUTUELLES = np.array([m[0] for m in _MUTUELLES], dtype=object)


def _weights(items) -> np.ndarray:
    w = np.array([item[-1] for item in items], dtype=float)
    return w / w.sum()


# ---------------------------------------------------------------- vectorised formatting

def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal strings as an object array: (7, 3) -> '007'."""
    return np.char.zfill(np.asarray(values).astype(str), width).astype(object)


def _amounts(cents: np.ndarray, decimal: str) -> np.ndarray:
    """Non-negative cents as '1234,56' (or with a dot), without float."""
    cents = np.asarray(cents, dtype=np.int64)
    return (cents // 100).astype(str).astype(object) + decimal + _digits(cents % 100, 2)


def _dates(days: np.ndarray, fmt: str) -> np.ndarray:
    """Dates (datetime64[D]) formatted once per distinct day, then spread by index."""
    unique, inverse = np.unique(days, return_inverse=True)
    table = np.array([d.astype(object).strftime(fmt) for d in unique], dtype=object)
    return table[inverse]


def _day(value: date) -> np.datetime64:
    return np.datetime64(value, "D")


def rf_references(compact: np.ndarray) -> np.ndarray:
    """Vectorised rf_reference for compact invoice numbers of one length (ISO 11649, mod 97-10).

    Letters count as two digits (A=10 … Z=35), "RF00" is appended, and the remainder is
    carried column by column, so no number ever exceeds 97 * 100.
    """
    compact = np.asarray(compact, dtype=object)
    chars = np.asarray(compact.astype("S"))
    width = chars.dtype.itemsize
    codes = np.frombuffer(chars.tobytes(), dtype=np.uint8).reshape(len(compact), width)
    if (codes == 0).any():
        raise ValueError("rf_references needs compact numbers of one length")
    suffix = np.frombuffer(b"RF00", dtype=np.uint8)
    rest = np.zeros(len(compact), dtype=np.int64)
    for column in np.hstack([codes, np.broadcast_to(suffix, (len(compact), 4))]).T:
        letter = column >= 65
        value = np.where(letter, column.astype(np.int64) - 55, column.astype(np.int64) - 48)
        rest = np.where(letter, rest * 100 + value, rest * 10 + value) % 97
    return "RF" + _digits(98 - rest, 2) + compact


# ---------------------------------------------------------------- patients and invoices

@dataclass
class _Patients:
    """Column arrays, one row per patient; text arrays are object arrays of str."""

    sex: np.ndarray
    last: np.ndarray
    first: np.ndarray
    minor: np.ndarray
    age_days: np.ndarray
    guarantor: np.ndarray        # guarantor's first name index, -1 when none
    guarantor_last: np.ndarray
    guarantor_sex: np.ndarray
    status: np.ndarray           # 0 none, 1 css, 2 ame
    mutuelle: np.ndarray         # index into MUTUELLES, -1 when none
    columns: dict[str, np.ndarray]
    cpam: np.ndarray


@dataclass
class _Invoices:
    """Column arrays, one row per invoice, sorted by issue date then patient."""

    number: np.ndarray
    compact: np.ndarray
    issue: np.ndarray            # datetime64[D]
    patient: np.ndarray          # row in _Patients
    coverage: np.ndarray         # index into COVERAGES
    care: np.ndarray
    total: np.ndarray
    amo: np.ndarray
    amc: np.ndarray
    share: np.ndarray            # the patient share
    anomalies: np.ndarray        # rows planted with a patient share they should not have


def _first_names(rng: np.random.Generator, sex: np.ndarray) -> np.ndarray:
    n_female = len(FIRST.text) - N_MALE
    male = rng.integers(0, N_MALE, len(sex))
    female = N_MALE + rng.integers(0, n_female, len(sex))
    return np.where(sex == 1, male, female)


def _nirs(rng: np.random.Generator, sex, birth) -> np.ndarray:
    """Valid NIRs: sex, year, month, department, commune, order, then the key 97 - n % 97."""
    n = len(sex)
    year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    month = birth.astype("datetime64[M]").astype(np.int64) % 12 + 1
    department = _BIRTH_DEPARTMENTS[rng.integers(0, len(_BIRTH_DEPARTMENTS), n)]
    commune = rng.integers(1, 990, n)
    order = rng.integers(1, 1000, n)
    body = (sex * 10**12 + (year % 100) * 10**10 + month * 10**8 + department * 10**6
            + commune * 10**3 + order)
    return body.astype(str).astype(object) + _digits(97 - body % 97, 2)


def _emails(rng: np.random.Generator, first: np.ndarray, last: np.ndarray, keep) -> np.ndarray:
    domains = np.array(["example.org", "example.net", "example.com", "mail.example"], dtype=object)
    address = (FIRST.mail[first] + "." + LAST.mail[last] + "@"
               + domains[rng.integers(0, len(domains), len(first))])
    return np.where(keep, address, "").astype(object)


# The first patients, who come most often, carry the names that break naive code.
_SHOWCASE = [("Lefèvre", "Éloïse", 2), ("Dupré", "Jean-François", 1), ("N'Diaye", "Maëlle", 2),
             ("De La Fontaine", "Marie-Christine", 2), ("Lœuillet", "Noé", 1)]


def _showcase(sex: np.ndarray, first: np.ndarray, last: np.ndarray) -> None:
    for row, (surname, name, gender) in enumerate(_SHOWCASE[:len(sex)]):
        sex[row], last[row] = gender, list(LAST.text).index(surname)
        first[row] = list(FIRST.text).index(name)


def _patients(rng: np.random.Generator, count: int, as_of: date) -> _Patients:
    sex = rng.integers(1, 3, count)
    first, last = _first_names(rng, sex), rng.integers(0, len(LAST.text), count)
    _showcase(sex, first, last)
    minor = rng.random(count) < 0.18
    age_days = np.where(minor, rng.integers(200, 18 * 365 - 30, count),
                        rng.integers(18 * 365 + 30, 92 * 365, count))
    birth = _day(as_of) - age_days.astype("timedelta64[D]")
    city = rng.choice(len(_CITIES), count, p=_weights(_CITIES))
    address = (rng.integers(1, 160, count).astype(str).astype(object)
               + np.where(rng.random(count) < 0.06, " bis ", " ")
               + STREETS[rng.integers(0, len(STREETS), count)])
    postal = np.array([c[0] for c in _CITIES], dtype=object)[city]
    town = np.array([c[1] for c in _CITIES], dtype=object)[city]
    g_sex = rng.integers(1, 3, count)
    g_first = np.where(minor, _first_names(rng, g_sex), -1)
    g_last = np.where(rng.random(count) < 0.75, last, rng.integers(0, len(LAST.text), count))
    status = rng.choice(3, count, p=[0.88, 0.08, 0.04])
    insured = (status == 1) | ((status == 0) & (rng.random(count) < 0.85))
    mutuelle = np.where(insured, rng.choice(len(MUTUELLES), count, p=_weights(_MUTUELLES)), -1)
    phone = _valid_phones("0" + np.where(rng.random(count) < 0.8, "6", "1") + " "
                          + _pairs(rng.integers(0, 10**8, count)))
    columns = {
        "patient_id": "P" + _digits(np.arange(1, count + 1), 6),
        "last_name": LAST.text[last], "first_name": FIRST.text[first],
        "birth_date": _dates(birth, "%d/%m/%Y"), "address": address, "postal_code": postal,
        "city": town, "email": _emails(rng, first, last, ~minor & (rng.random(count) < 0.55)),
        "phone": phone, "nir": _nirs(rng, sex, birth),
        "guarantor_last_name": np.where(minor, LAST.text[g_last], ""),
        "guarantor_first_name": np.where(minor, FIRST.text[np.maximum(g_first, 0)], ""),
        "guarantor_address": np.where(minor, address, ""),
        "guarantor_postal_code": np.where(minor, postal, ""),
        "guarantor_city": np.where(minor, town, ""),
        "guarantor_email": _emails(rng, np.maximum(g_first, 0), g_last,
                                   minor & (rng.random(count) < 0.6)),
    }
    columns["sms_consent"], columns["email_consent"] = _consents(count, columns["phone"], minor)
    cpam = np.array([c[2] for c in _CITIES], dtype=object)[city]
    return _Patients(sex, last, first, minor, age_days, g_first, g_last, g_sex, status, mutuelle,
                     {k: np.asarray(v, dtype=object) for k, v in columns.items()}, cpam)


def _valid_phones(phones: np.ndarray) -> np.ndarray:
    """Mobiles drawn as 06 + eight random digits, those of numbering blocks never allocated in France or
    overseas (06 39, 06 9x) moved to 06 1x: every generated number is valid (core.contact.e164)."""
    text = np.asarray(phones).astype(str)
    unallocated = np.char.startswith(text, "06 9") | np.char.startswith(text, "06 39")
    fixed = np.char.add("06 1", np.array([p[4:] for p in text.tolist()], dtype=str))
    return np.where(unallocated, fixed, text).astype(object)


def _consents(count: int, phones: np.ndarray, minor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sms_consent, email_consent) by patient, drawn from nothing random (the other columns do not move):
    most patients agreed to e-mail, one in seven said no; a third of the adults agreed to SMS, a third
    refused, the rest never said (no consent). A minor's letters go to the guarantor: never an SMS."""
    k = np.arange(count)
    email = np.where(k % 7 == 3, "non", "oui").astype(object)
    mobile = np.char.startswith(np.asarray(phones).astype(str), "06")
    sms = np.select([minor | ~mobile, k % 3 == 0, k % 3 == 1], ["", "oui", "non"], "").astype(object)
    return sms, email


def _pairs(values: np.ndarray) -> np.ndarray:
    """Eight digits as four pairs: 12345678 -> '12 34 56 78'."""
    text = _digits(values, 8)
    return (_slice(text, 0, 2) + " " + _slice(text, 2, 4) + " " + _slice(text, 4, 6) + " "
            + _slice(text, 6, 8))


def _issue_days(rng: np.random.Generator, patients: _Patients, patient: np.ndarray,
                as_of: date) -> np.ndarray:
    """Spread over ~26 months, older ones rarer, never before the patient was born."""
    back = (792 * rng.random(len(patient)) ** 1.25).astype(np.int64) + 1
    back = np.minimum(back, patients.age_days[patient] - 1)
    return _day(as_of) - back.astype("timedelta64[D]")


def _shares(rng: np.random.Generator, care, coverage, insured, adult):
    """(total, amo, amc, patient share) in cents, total == amo + amc + patient by construction."""
    n = len(care)
    low, high = CARE_OVER[care, 0], CARE_OVER[care, 1]
    overrun = (low + (rng.random(n) * (high - low + 1)).astype(np.int64)) * 100
    overrun = np.where(coverage == 0, overrun, 0)  # CSS, AME and AT/MP forbid excess fees
    base = CARE_BASE[care]
    total = base + overrun
    forfait = np.where((coverage == 0) & adult & (CARE_KIND[care] == "consult"), 200, 0)
    full = coverage >= 2
    amo = np.where(full, total, base * 70 // 100 - forfait)
    ticket = base - base * 70 // 100
    part_of_overrun = rng.choice([0, 25, 50, 100, 100, 100], n)
    prosthesis_share = np.minimum(rng.integers(15, 61, n) * 1000, total - amo)
    prosthesis = CARE_KIND[care] == "prosthesis"
    amc = np.select(
        [coverage == 1, (coverage == 0) & insured & prosthesis, (coverage == 0) & insured],
        [total - amo, total - amo - prosthesis_share, ticket + overrun * part_of_overrun // 100],
        0,
    )
    return total, amo, amc, total - amo - amc


def _numbers(issue: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F + year + '-' + a 6-digit counter restarting each year; issue must be sorted."""
    year = issue.astype("datetime64[Y]").astype(np.int64) + 1970
    seq = np.arange(len(year)) - np.searchsorted(year, year, side="left") + 1
    body = "F" + year.astype(str).astype(object)
    digits = _digits(seq, 6)
    return body + "-" + digits, body + digits


def _plant_anomalies(inv: _Invoices, as_of: date) -> None:
    """One CSS and one AT/MP invoice carry a patient share they should not have."""
    recent = inv.issue >= _day(as_of) - 300
    rows = []
    for coverage, cents in ((1, 1500), (3, 2500)):
        found = np.flatnonzero((inv.coverage == coverage) & recent)
        if len(found):
            rows.append(found[0])
            inv.share[found[0]] += cents
            inv.total[found[0]] += cents
    inv.anomalies = np.array(rows, dtype=np.int64)


def _invoices(rng: np.random.Generator, patients: _Patients, count: int, as_of: date) -> _Invoices:
    n_patients = len(patients.sex)
    patient = (n_patients * rng.random(count) ** 1.6).astype(np.int64)  # a few chronic patients
    issue = _issue_days(rng, patients, patient, as_of)
    order = np.lexsort((patient, issue))
    patient, issue = patient[order], issue[order]
    care = rng.choice(len(_CARE), count, p=_weights(_CARE))
    adult = ~patients.minor[patient]
    at_mp = (patients.status[patient] == 0) & adult & (rng.random(count) < 0.04)
    coverage = np.where(at_mp, 3, patients.status[patient])
    insured = patients.mutuelle[patient] >= 0
    total, amo, amc, share = _shares(rng, care, coverage, insured, adult)
    number, compact = _numbers(issue)
    inv = _Invoices(number, compact, issue, patient, coverage, care, total, amo, amc, share,
                    np.zeros(0, dtype=np.int64))
    _plant_anomalies(inv, as_of)
    return inv


def _write_invoices(path: Path, inv: _Invoices, patients: _Patients) -> None:
    p = inv.patient
    cols = {name: values[p] for name, values in patients.columns.items()}
    payer = np.where(inv.amc > 0, MUTUELLES[np.maximum(patients.mutuelle[p], 0)], "")
    _write_csv(path, {
        "invoice_number": inv.number, "issue_date": _dates(inv.issue, "%d/%m/%Y"),
        "due_date": _dates(inv.issue + np.timedelta64(30, "D"), "%d/%m/%Y"),
        **{c: cols[c] for c in INVOICE_COLUMNS[3:13]},
        "total_amount": _amounts(inv.total, ","), "amo_amount": _amounts(inv.amo, ","),
        "amc_amount": _amounts(inv.amc, ","), "patient_amount": _amounts(inv.share, ","),
        "amc_payer": payer, "coverage": COVERAGES[inv.coverage],
        "care_description": CARE_TEXT[inv.care], "act_codes": CARE_CODES[inv.care],
        **{c: cols[c] for c in INVOICE_COLUMNS[21:]},
    }, ";", "cp1252", "\r\n")


def _write_csv(path: Path, columns: dict[str, np.ndarray], sep: str, encoding: str,
               newline: str, chunk: int = 250_000) -> None:
    """Writes column arrays chunk by chunk; rows are joined by str.join mapped in C, no quoting.

    No value needs quoting: every one comes from the lists above or from digits, none holds
    a separator, a quote or a line break (tests read every file back with the csv module).
    """
    names = list(columns)
    values = [_text(columns[name]) for name in names]
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    with open(path, "wb") as handle:
        handle.write(("\ufeff" if encoding == "utf-8-sig" else "").encode(codec))
        handle.write((sep.join(names) + newline).encode(codec))
        for start in range(0, len(values[0]), chunk):
            rows = zip(*(column[start:start + chunk].tolist() for column in values))
            handle.write((newline.join(map(sep.join, rows)) + newline).encode(codec))


def _text(values) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return values.astype(str).astype(object)
    return values.astype(object)


# ---------------------------------------------------------------- payments CSV files

@dataclass(frozen=True)
class Dialect:
    """How one payments CSV is written."""

    sep: str
    decimal: str
    date_format: str
    encoding: str
    newline: str


OUR_PAYMENTS = Dialect(";", ",", "%Y-%m-%d", "utf-8-sig", "\r\n")
MUTUELLE_PAYMENTS = Dialect(",", ".", "%d/%m/%Y", "utf-8", "\n")


Lines = dict[str, np.ndarray]   # column arrays of payment lines, or of expected rows


def _lines(day, payer_type, payer_name, amount, reference, invoice_number, status, reason,
           case, invoices) -> Lines:
    """Payment lines before sorting; `invoices` is what expected.csv says they were meant for."""
    n = len(day)

    def column(value):
        return np.array(np.broadcast_to(np.asarray(value, dtype=object), (n,)))

    return {
        "day": np.asarray(day, dtype="datetime64[D]"),
        "payer_type": column(payer_type), "payer_name": column(payer_name),
        "amount_cents": np.array(np.broadcast_to(np.asarray(amount, dtype=np.int64), (n,))),
        "reference": column(reference), "invoice_number": column(invoice_number),
        "status": column(status), "reject_reason": column(reason), "case": column(case),
        "invoices": column(invoices),
    }


def _concat(*parts: Lines) -> Lines:
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _write_payments(path: Path, lines: Lines, prefix: str, dialect: Dialect) -> Lines:
    """Sorts by date (stable), numbers the lines, writes the file; returns its expected rows."""
    order = np.argsort(lines["day"], kind="stable")
    lines = {key: values[order] for key, values in lines.items()}
    ids = prefix + _digits(np.arange(1, len(order) + 1), 7)
    _write_csv(path, {
        "payment_id": ids, "payment_date": _dates(lines["day"], dialect.date_format),
        "payer_type": lines["payer_type"], "payer_name": lines["payer_name"],
        "amount": _amounts(lines["amount_cents"], dialect.decimal),
        **{c: lines[c] for c in ("reference", "invoice_number", "status", "reject_reason")},
    }, dialect.sep, dialect.encoding, dialect.newline)
    return {
        "source_file": np.full(len(order), path.name, dtype=object),
        "source_line": np.arange(2, len(order) + 2), "payment_id": ids,
        "invoice_numbers": lines["invoices"], "case": lines["case"],
        "amount_cents": lines["amount_cents"],
    }


def _at_least(mask: np.ndarray, candidates: np.ndarray, count: int) -> np.ndarray:
    """The mask, with the first candidates switched on until it holds `count` rows."""
    missing = count - int(mask.sum())
    if missing > 0:
        mask = mask.copy()
        mask[np.flatnonzero(candidates & ~mask)[:missing]] = True
    return mask


def _claims(rng, issue, as_of: date, wait_days: int, p_wait: float, p_lost: float,
            p_reject: float, delay: tuple[int, int]):
    """Which claims are still awaited, which were rejected, and the day of the answer."""
    n = len(issue)
    age = (_day(as_of) - issue).astype(np.int64)
    awaited = ((age < wait_days) & (rng.random(n) < p_wait)) | (rng.random(n) < p_lost)
    rejected = ~awaited & (rng.random(n) < p_reject)
    answer = np.minimum(issue + rng.integers(*delay, n).astype("timedelta64[D]"), _day(as_of) - 1)
    return awaited, rejected, answer


def _amo_lines(rng, inv: _Invoices, patients: _Patients, as_of: date) -> Lines:
    rows = np.flatnonzero(inv.amo > 0)
    awaited, rejected, day = _claims(rng, inv.issue[rows], as_of, 15, 0.8, 0.01, 0.025, (3, 13))
    rows, rejected, day = rows[~awaited], rejected[~awaited], day[~awaited]
    rejected = _at_least(rejected, np.ones_like(rejected), 3)
    stamp = _dates(day, "%Y%m%d")
    numbers = inv.number[rows]
    return _lines(
        day, "amo", patients.cpam[inv.patient[rows]], inv.amo[rows],
        np.where(rejected, "RETOUR NOEMIE " + stamp, "BORDEREAU " + stamp), numbers,
        np.where(rejected, "rejected", "paid"),
        np.where(rejected, _AMO_REJECTS[rng.integers(0, len(_AMO_REJECTS), len(rows))], ""),
        np.where(rejected, "rejected", "explicit"), numbers,
    )


def _amc_lines(rng, inv: _Invoices, patients: _Patients, as_of: date):
    """The mutuelles' lines, and the invoices whose AMC share is still awaited."""
    rows = np.flatnonzero(inv.amc > 0)
    awaited, rejected, day = _claims(rng, inv.issue[rows], as_of, 25, 0.8, 0.03, 0.03, (5, 21))
    waiting = rows[awaited]
    rows, rejected, day = rows[~awaited], rejected[~awaited], day[~awaited]
    rejected = _at_least(rejected, np.ones_like(rejected), 3)
    numbers, payer = inv.number[rows], MUTUELLES[patients.mutuelle[inv.patient[rows]]]
    in_text = _at_least(~rejected & (rng.random(len(rows)) < 0.03), ~rejected, 2)
    first = _lines(
        day, "amc", payer, inv.amc[rows],
        np.where(in_text, "Facture " + numbers, "REMB TP " + _dates(day, "%Y%m%d")),
        np.where(in_text, "", numbers), np.where(rejected, "rejected", "paid"),
        np.where(rejected, _AMC_REJECTS[rng.integers(0, len(_AMC_REJECTS), len(rows))], ""),
        np.select([rejected, in_text], ["rejected", "text"], "explicit"), numbers,
    )
    old_enough = rejected & (day <= _day(as_of) - 40)
    again = _at_least(old_enough & (rng.random(len(rows)) < 0.15), old_enough, 1)
    later = day[again] + rng.integers(15, 36, int(again.sum())).astype("timedelta64[D]")
    resubmitted = _lines(
        later, "amc", payer[again], inv.amc[rows[again]],
        "RENVOI " + numbers[again], numbers[again], "paid", "", "resubmitted", numbers[again],
    )
    return _concat(first, resubmitted), waiting


# ---------------------------------------------------------------- how patients write

def _text_references(numbers: np.ndarray, last_bank: np.ndarray, form: np.ndarray) -> np.ndarray:
    """An invoice number the way people type it in a transfer's free text."""
    numbers = np.asarray(numbers, dtype=object)
    head, tail = _slice(numbers, 0, 5), _slice(numbers, 6, 12)   # "F2025", "000123"
    forms = [
        "Facture " + numbers,
        np.char.lower(head.astype(str)).astype(object) + " " + tail,
        "FACT " + head + tail + " " + np.asarray(last_bank, dtype=object),
        "REGLEMENT FACT. N°" + numbers,
        "fact " + np.char.lower(numbers.astype(str)).astype(object) + " merci",
    ]
    return _choose(np.asarray(form) % len(forms), forms)


def _slice(values: np.ndarray, start: int, stop: int) -> np.ndarray:
    """values[i][start:stop] for every string, vectorised through a fixed-width view."""
    fixed = np.asarray(values, dtype=object).astype(str)
    width = fixed.dtype.itemsize // 4
    chars = fixed.view("U1").reshape(-1, width)[:, start:stop]
    return np.ascontiguousarray(chars).view(f"U{stop - start}").ravel().astype(object)


def _choose(index: np.ndarray, options: list) -> np.ndarray:
    """options[index[i]][i] (or the option itself when it is a plain string), as objects."""
    out = np.empty(len(index), dtype=object)
    for k, option in enumerate(options):
        mask = index == k
        out[mask] = option[mask] if isinstance(option, np.ndarray) else option
    return out


def _payer_names(first: np.ndarray, last: np.ndarray, sex: np.ndarray,
                 form: np.ndarray) -> np.ndarray:
    """A person's name as a bank shows it: 'M. DUPONT JEAN', 'DUPONT J', 'Jean Dupont'…"""
    civility = np.where(sex == 1, "M. ", "MME ").astype(object)
    last_bank, first_bank = LAST.bank[last], FIRST.bank[first]
    forms = [
        civility + last_bank + " " + first_bank,
        last_bank + " " + _initials(first_bank),
        FIRST.text[first] + " " + LAST.text[last],
        "M OU MME " + last_bank + " " + first_bank,
    ]
    return _choose(np.asarray(form) % len(forms), forms)


def _initials(names: np.ndarray) -> np.ndarray:
    return np.asarray(names, dtype=object).astype("U1").astype(object)


def _format_rf(refs: np.ndarray) -> np.ndarray:
    """RF39F2025000123 -> 'RF39 F202 5000 123' (15 characters, as printed on letters)."""
    return (_slice(refs, 0, 4) + " " + _slice(refs, 4, 8) + " " + _slice(refs, 8, 12) + " "
            + _slice(refs, 12, 15))


PATIENT_KINDS = np.array(["explicit", "rf", "text", "name_amount", "partial", "overpayment"],
                         dtype=object)


def _patient_kinds(rng, share: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """How each payment refers to its invoice, as an index into PATIENT_KINDS."""
    kind = rng.choice(6, len(share), p=[0.14, 0.32, 0.26, 0.18, 0.07, 0.03])
    kind = np.where((kind == 4) & (share < 1000), 1, kind)          # too small to split
    kind = np.where((kind == 3) & (share < 500), 1, kind)           # 2 € shares are everyone's
    return np.where(minor & (kind == 3), 2, kind)                    # parents write the number


def _payers(rng, patients: _Patients, p: np.ndarray) -> np.ndarray:
    """Who pays: the patient, or the guarantor of a minor, in one of the bank spellings."""
    minor = patients.minor[p]
    return _payer_names(np.where(minor, patients.guarantor[p], patients.first[p]),
                        np.where(minor, patients.guarantor_last[p], patients.last[p]),
                        np.where(minor, patients.guarantor_sex[p], patients.sex[p]),
                        rng.integers(0, 4, len(p)))


def _patient_lines(rng, inv: _Invoices, patients: _Patients, as_of: date) -> Lines:
    """Scale mode: patients paying their shares, by every kind of reference, plus noise."""
    eligible = np.flatnonzero((inv.share > 0) & (inv.issue <= _day(as_of) - 8))
    rows = eligible[rng.random(len(eligible)) < 0.85]
    n, share, p = len(rows), inv.share[rows], inv.patient[rows]
    minor = patients.minor[p]
    kind = _patient_kinds(rng, share, minor)
    numbers = inv.number[rows]
    refs = rf_references(inv.compact[rows])
    refs = np.where(rng.random(n) < 0.3, _format_rf(refs), refs)
    texts = _text_references(numbers, LAST.bank[patients.last[p]], rng.integers(0, 5, n))
    names = _payers(rng, patients, p)
    partial = (share * rng.integers(30, 81, n) // 100) // 100 * 100
    amount = np.select([kind == 4, kind == 5], [np.maximum(partial, 100),
                                                share + rng.integers(1, 21, n) * 100], share)
    reference = _choose(kind, ["Paiement CB accueil", refs, texts, "", refs, texts])
    case = np.where(minor & (kind == 2), "guarantor", PATIENT_KINDS[kind])
    day = np.minimum(inv.issue[rows] + rng.integers(5, 61, n).astype("timedelta64[D]"),
                     _day(as_of) - 1)
    paid = _lines(day, "patient", names, amount, reference, np.where(kind == 0, numbers, ""),
                  "paid", "", case, numbers)
    return _concat(paid, _noise_lines(rng, n // 30, as_of))


def _noise_lines(rng, count: int, as_of: date) -> Lines:
    day = _day(as_of) - rng.integers(1, 400, count).astype("timedelta64[D]")
    return _lines(day, "patient", _STRANGERS[rng.integers(0, len(_STRANGERS), count)],
                  rng.integers(500, 20000, count),
                  np.where(rng.random(count) < 0.5, "", "VIREMENT"),
                  "", "paid", "", "noise", "")


# ---------------------------------------------------------------- the clinic's bank account

@dataclass(frozen=True)
class Account:
    """The clinic's French bank account, from which the IBAN and CFONB fields derive."""

    bank: str = "30004"
    desk: str = "01925"
    number: str = "00012345678"
    bic: str = "BNPAFRPPXXX"

    @property
    def rib_key(self) -> str:
        return f"{97 - (89 * int(self.bank) + 15 * int(self.desk) + 3 * int(self.number)) % 97:02d}"

    @property
    def iban(self) -> str:
        bban = self.bank + self.desk + self.number + self.rib_key
        return "FR" + mod_97_10.calc_check_digits(bban + "FR") + bban


ACCOUNT = Account()


def _siret(siren_body: str = "84512367", nic_body: str = "0001") -> str:
    """A SIRET whose SIREN and whole number both pass the Luhn check."""
    siren = siren_body + luhn.calc_check_digit(siren_body)
    return siren + nic_body + luhn.calc_check_digit(siren + nic_body)


SETTINGS = """\
# recouvrement settings for the fictional sample clinic. Documented in README.md.
[creditor]
name = "Centre de santé des Lilas"
address = "12 rue des Lilas"
postal_code = "75019"
city = "Paris"
phone = "01 42 00 00 00"
email = "facturation@centre-lilas.example"
siret = "{siret}"
iban = "{iban}"
bic = "{bic}"
[smtp]
# host = "localhost"  (no SMTP: e-mails are written to the output folder, not sent)
sender = "facturation@centre-lilas.example"
[sms]
# url = "https://api.brevo.com/v3/transactionalSMS/send"  (Brevo; without a url: SMS written, not sent)
# api_key_file = "sms.key"   (or RECOUVREMENT_SMS_API_KEY; never in this file)
sender = "CentreLilas"
[paths]
inbox = "inbox"
archive = "archive"
quarantine = "quarantine"
output = "out"
rules = "rules"          # the sample clinic's own rules files (here: the ladder, pre-due notice and SMS on)
[audit]
# key_file = "recouvrement-audit.key"                (or RECOUVREMENT_AUDIT_KEY; seals the audit trail)
# checkpoint_file = "recouvrement-audit.checkpoint"  (the trail's head, written after each command)
[agency]
name = "Recouvrement Conseil Île-de-France"   # the collection agency a mise en demeure names
"""


def _write_settings(path: Path) -> None:
    text = SETTINGS.format(siret=_siret(), iban=ACCOUNT.iban, bic=ACCOUNT.bic)
    path.write_text(text, encoding="utf-8", newline="\n")


@dataclass(frozen=True)
class Transfer:
    """One transaction of a bank entry, with what it was meant for."""

    amount: int
    debtor: str
    text: str = ""
    rf: str = ""
    creditor: str = ""
    ref: str = ""                 # TxDtls/Refs/AcctSvcrRef, for batch transactions
    currency: str = "EUR"
    case: str = "noise"
    invoices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    """One bank statement entry (camt.053 Ntry, CFONB 04 record)."""

    ref: str
    booked: date
    transfers: tuple[Transfer, ...]
    credit: bool = True
    status: str = "BOOK"
    family: tuple[str, str] = ("RCDT", "ESCT")   # ISO bank transaction code family, sub-family
    cfonb_code: str = "05"
    label: str = ""                              # CFONB 04 label

    @property
    def amount(self) -> int:
        return sum(t.amount for t in self.transfers)

    @property
    def currency(self) -> str:
        return self.transfers[0].currency


class _Picker:
    """Hands out distinct invoices with an open patient share, in a seeded order."""

    def __init__(self, rng, inv: _Invoices, patients: _Patients, before: date, as_of: date):
        self.inv, self.patients = inv, patients
        open_ = ((inv.share >= 500) & (inv.issue <= _day(before) - 10)
                 & (inv.issue >= _day(as_of) - 700))
        open_[inv.anomalies] = False
        self.order = [int(i) for i in rng.permutation(np.flatnonzero(open_))]
        self.used: set[int] = set()

    def take(self, minor: bool = False, test=lambda row: True) -> int:
        for row in self.order:
            if row not in self.used and self.minor(row) == minor and test(row):
                self.used.add(row)
                return row
        raise ValueError("the sample is too small for its bank scenarios")

    def minor(self, row: int) -> bool:
        return bool(self.patients.minor[self.inv.patient[row]])

    def pair(self) -> tuple[int, int]:
        """Two open invoices of one adult patient, for a grouped payment."""
        by_patient: dict[int, list[int]] = {}
        for row in self.order:
            if row not in self.used and not self.minor(row):
                by_patient.setdefault(int(self.inv.patient[row]), []).append(row)
                if len(by_patient[int(self.inv.patient[row])]) == 2:
                    first, second = sorted(by_patient[int(self.inv.patient[row])])
                    self.used.update((first, second))
                    return first, second
        raise ValueError("the sample has no patient with two open shares")

    def unambiguous(self, row: int) -> bool:
        """Only this open share of the patient has this amount, and the name is unique."""
        p = self.inv.patient[row]
        same_patient = np.flatnonzero(self.inv.patient == p)
        twins = [r for r in same_patient if r != row and self.inv.share[r] == self.inv.share[row]]
        pats = self.patients
        namesakes = np.sum((pats.last == pats.last[p]) & (pats.first == pats.first[p]))
        return not twins and namesakes == 1


class _Scenarios:
    """Builds the human-sized bank entries of the sample, one scenario per method."""

    def __init__(self, rng, inv: _Invoices, patients: _Patients, start: date, as_of: date):
        self.rng, self.inv, self.patients = rng, inv, patients
        self.start, self.days = start, (as_of - start).days
        self.pick = _Picker(rng, inv, patients, start, as_of)
        self.count = 0

    def day(self) -> date:
        return self.start + timedelta(days=int(self.rng.integers(0, self.days)))

    def ref(self, day: date) -> str:
        self.count += 1
        return f"LIL{day:%Y%m%d}{self.count:04d}"

    def entry(self, *transfers: Transfer, **fields) -> Entry:
        day = self.day()
        return Entry(self.ref(day), day, transfers, **fields)

    def name(self, row: int, form: int, guarantor: bool = False) -> str:
        """The patient's name (or the guarantor's) in one of the bank spellings."""
        pats, i = self.patients, [self.inv.patient[row]]
        who = (pats.guarantor, pats.guarantor_last, pats.guarantor_sex) if guarantor else (
            pats.first, pats.last, pats.sex)
        return str(_payer_names(who[0][i], who[1][i], who[2][i], np.array([form]))[0])

    def text(self, row: int, form: int) -> str:
        last = LAST.bank[self.patients.last[self.inv.patient[row]]]
        return str(_text_references(self.inv.number[[row]], np.array([last]), np.array([form]))[0])

    def number(self, row: int) -> str:
        return str(self.inv.number[row])

    def share(self, row: int) -> int:
        return int(self.inv.share[row])

    def paid(self, row: int, case: str, form: int, *, rf: bool = False, amount: int | None = None,
             text: str | None = None, guarantor: bool = False) -> Transfer:
        reference = rf_reference(self.number(row)) if rf else ""
        words = text if text is not None else ("" if rf else self.text(row, form))
        return Transfer(self.share(row) if amount is None else amount,
                        self.name(row, form, guarantor), words, reference, case=case,
                        invoices=(self.number(row),))


def _reference_entries(s: _Scenarios) -> list[Entry]:
    """Patients naming their invoice: RF references, messy free text, two invoices at once."""
    entries = [s.entry(s.paid(s.pick.take(), "rf", form, rf=True)) for form in range(5)]
    entries += [s.entry(s.paid(s.pick.take(), "text", form)) for form in range(5)]
    for words in ("Factures {} et {}", "{} {}"):
        a, b = s.pick.pair()
        text = words.format(s.number(a), s.number(b))
        entries.append(s.entry(Transfer(s.share(a) + s.share(b), s.name(a, 0), text,
                                        case="grouped", invoices=(s.number(a), s.number(b)))))
    return entries


def _amount_entries(s: _Scenarios) -> list[Entry]:
    """Names and amounts only, amounts short of the share, and one above it."""
    entries = []
    for form in range(3):
        row = s.pick.take(test=s.pick.unambiguous)
        entries.append(s.entry(s.paid(row, "name_amount", form, text="REGLEMENT")))
    row = s.pick.take(test=lambda r: s.share(r) >= 2000)
    entries.append(s.entry(s.paid(row, "partial", 1, rf=True, amount=s.share(row) // 200 * 100)))
    row = s.pick.take(test=lambda r: s.share(r) >= 2000)
    entries.append(s.entry(s.paid(row, "partial", 2, amount=s.share(row) // 300 * 100)))
    row = s.pick.take()
    entries.append(s.entry(s.paid(row, "overpayment", 0, amount=s.share(row) + 1000)))
    return entries


def _odd_entries(s: _Scenarios, amc_waiting: np.ndarray) -> list[Entry]:
    """A parent paying for a child, a batch, a pending entry, and a credit in dollars."""
    entries = [_guarantor_entry(s), _batch_entry(s, amc_waiting)]
    entries.append(s.entry(s.paid(s.pick.take(), "pending", 3), status="PDNG"))
    row = s.pick.take()
    abroad = replace(s.paid(row, "foreign_currency", 0, text=f"Invoice {s.number(row)}"),
                     currency="USD")
    entries.append(s.entry(abroad, family=("RCDT", "XBCT")))
    return entries


def _camt_entries(s: _Scenarios, amc_waiting: np.ndarray) -> list[Entry]:
    entries = (_reference_entries(s) + _amount_entries(s) + _odd_entries(s, amc_waiting)
               + _noise_entries(s))
    return sorted(entries, key=lambda e: (e.booked, e.ref))


def _guarantor_entry(s: _Scenarios) -> Entry:
    row = s.pick.take(minor=True)
    child = FIRST.bank[s.patients.first[s.inv.patient[row]]]
    return s.entry(s.paid(row, "guarantor", 0, guarantor=True,
                          text=f"REGLEMENT {s.number(row)} POUR {child}"))


def _batch_entry(s: _Scenarios, amc_waiting: np.ndarray) -> Entry:
    """A tiers payant operator pays three awaited AMC shares in one booking."""
    day = s.day()
    ref = s.ref(day)
    rows = [int(r) for r in amc_waiting[:3]]
    transfers = tuple(
        Transfer(int(s.inv.amc[r]), "ALMERYS", f"TP {s.number(r)}", ref=f"{ref}-{k}", case="batch",
                 invoices=(s.number(r),))
        for k, r in enumerate(rows, start=1)
    )
    return Entry(ref, day, transfers)


def _noise_entries(s: _Scenarios) -> list[Entry]:
    clinic = "CENTRE DE SANTE DES LILAS"
    return [
        s.entry(Transfer(48213, "URSSAF ILE DE FRANCE", "REMBOURSEMENT TROP PERCU 3T2026")),
        s.entry(Transfer(12960, "MEDILAB FOURNITURES SAS", "AVOIR A-2026-118")),
        s.entry(Transfer(7500, "KOWALSKI ADAM", "VIREMENT")),
        s.entry(Transfer(185000, clinic, "LOYER NOVEMBRE 2026", creditor="SCI DES LILAS",
                         case="debit"), credit=False, family=("ICDT", "ESCT")),
    ]


# ---------------------------------------------------------------- camt.053

def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _dot(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _camt_transfer(parent: ET.Element, t: Transfer) -> None:
    tx = _sub(parent, "TxDtls")
    refs = _sub(tx, "Refs")
    if t.ref:
        _sub(refs, "AcctSvcrRef", t.ref)
    _sub(refs, "EndToEndId", "NOTPROVIDED")
    _sub(_sub(_sub(tx, "AmtDtls"), "TxAmt"), "Amt", _dot(t.amount), Ccy=t.currency)
    parties = _sub(tx, "RltdPties")
    _sub(_sub(parties, "Dbtr"), "Nm", t.debtor)
    if t.creditor:
        _sub(_sub(parties, "Cdtr"), "Nm", t.creditor)
    if not (t.rf or t.text):
        return
    info = _sub(tx, "RmtInf")
    if t.rf:
        ref_info = _sub(_sub(info, "Strd"), "CdtrRefInf")
        kind = _sub(ref_info, "Tp")
        _sub(_sub(kind, "CdOrPrtry"), "Cd", "SCOR")
        _sub(kind, "Issr", "ISO")
        _sub(ref_info, "Ref", t.rf)
    else:
        _sub(info, "Ustrd", t.text)


def _camt_entry(parent: ET.Element, e: Entry) -> None:
    ntry = _sub(parent, "Ntry")
    _sub(ntry, "Amt", _dot(e.amount), Ccy=e.currency)
    _sub(ntry, "CdtDbtInd", "CRDT" if e.credit else "DBIT")
    _sub(ntry, "Sts", e.status)
    _sub(_sub(ntry, "BookgDt"), "Dt", e.booked.isoformat())
    _sub(_sub(ntry, "ValDt"), "Dt", (e.booked + timedelta(days=1)).isoformat())
    _sub(ntry, "AcctSvcrRef", e.ref)
    domain = _sub(_sub(ntry, "BkTxCd"), "Domn")
    _sub(domain, "Cd", "PMNT")
    family = _sub(domain, "Fmly")
    _sub(family, "Cd", e.family[0])
    _sub(family, "SubFmlyCd", e.family[1])
    details = _sub(ntry, "NtryDtls")
    if len(e.transfers) > 1:
        batch = _sub(details, "Btch")
        _sub(batch, "NbOfTxs", str(len(e.transfers)))
        _sub(batch, "TtlAmt", _dot(e.amount), Ccy=e.currency)
        _sub(batch, "CdtDbtInd", "CRDT" if e.credit else "DBIT")
    for transfer in e.transfers:
        _camt_transfer(details, transfer)


def _balance(parent: ET.Element, code: str, cents: int, day: date) -> None:
    bal = _sub(parent, "Bal")
    _sub(_sub(_sub(bal, "Tp"), "CdOrPrtry"), "Cd", code)
    _sub(bal, "Amt", _dot(abs(cents)), Ccy="EUR")
    _sub(bal, "CdtDbtInd", "CRDT" if cents >= 0 else "DBIT")
    _sub(_sub(bal, "Dt"), "Dt", day.isoformat())


def _booked_sum(entries: list[Entry]) -> int:
    """What the booked euro entries move on the account (the USD one was never converted)."""
    return sum((e.amount if e.credit else -e.amount) for e in entries
               if e.status == "BOOK" and e.currency == "EUR")


def _write_camt(path: Path, entries: list[Entry], start: date, end: date, opening: int) -> None:
    root = ET.Element("Document", xmlns=CAMT_NS)
    statement = _sub(root, "BkToCstmrStmt")
    header = _sub(statement, "GrpHdr")
    _sub(header, "MsgId", f"LILAS-CAMT053-{end:%Y%m%d}")
    _sub(header, "CreDtTm", f"{end + timedelta(days=1)}T06:00:00")
    stmt = _sub(statement, "Stmt")
    _sub(stmt, "Id", f"STMT-{end:%Y%m%d}")
    _sub(stmt, "ElctrncSeqNb", f"{end:%j}")
    _sub(stmt, "CreDtTm", f"{end + timedelta(days=1)}T06:00:00")
    period = _sub(stmt, "FrToDt")
    _sub(period, "FrDtTm", f"{start}T00:00:00")
    _sub(period, "ToDtTm", f"{end}T23:59:59")
    account = _sub(stmt, "Acct")
    _sub(_sub(account, "Id"), "IBAN", ACCOUNT.iban)
    _sub(account, "Ccy", "EUR")
    _sub(_sub(account, "Ownr"), "Nm", "CENTRE DE SANTE DES LILAS")
    _sub(_sub(_sub(account, "Svcr"), "FinInstnId"), "BIC", ACCOUNT.bic)
    _balance(stmt, "OPBD", opening, start - timedelta(days=1))
    _balance(stmt, "CLBD", opening + _booked_sum(entries), end)
    for entry in entries:
        _camt_entry(stmt, entry)
    tree = ET.ElementTree(root)
    ET.indent(tree, "  ")
    tree.write(path, encoding="UTF-8", xml_declaration=True)


def _bank_expected(name: str, entries: list[Entry], lines: list[int] | None = None) -> Lines:
    rows = []
    for position, entry in enumerate(entries, start=1):
        line = lines[position - 1] if lines else position
        for t in entry.transfers:
            rows.append((name, line, t.ref or entry.ref, " ".join(t.invoices), t.case, t.amount))
    return {column: np.array([row[k] for row in rows], dtype=np.int64 if k in (1, 5) else object)
            for k, column in enumerate(EXPECTED_COLUMNS)}


# ---------------------------------------------------------------- CFONB 120
#
# Record layout (1-based positions), as read by akretion/python-cfonb (cfonb/parser/
# statement.py, amounts in common.py) and silarhi/cfonb-parser (src/Parser/Cfonb120/
# Line01Parser.php, Line04Parser.php, Line05Parser.php):
#   01/07  1-2 code, 3-7 bank, 8-11 blank, 12-16 desk, 17-19 currency, 20 decimals, 21 blank,
#          22-32 account, 33-34 blank, 35-40 date DDMMYY, 41-90 blank, 91-104 amount, 105-120 blank
#   04     1-2 code, 3-7 bank, 8-11 internal code, 12-16 desk, 17-19 currency, 20 decimals,
#          21 blank, 22-32 account, 33-34 operation code, 35-40 operation date, 41-42 reject
#          code, 43-48 value date, 49-79 label, 80-81 blank, 82-88 entry reference, 89 exemption
#          code, 90 blank, 91-104 amount, 105-120 blank
#   05     1-32 as 04, 33-34 operation code, 35-40 operation date, 41-45 blank, 46-48
#          qualifier (NPY payer name, LIB free text), 49-118 information, 119-120 blank
# An amount is 14 characters, 13 digits then the last digit overpunched with the sign:
# '{' A..I for +0..+9, '}' J..R for -0..-9.

def cfonb_amount(cents: int) -> str:
    """Signed cents in CFONB notation: 12345 -> '0000000001234E', -920 -> '0000000000092}'."""
    digits = f"{abs(cents):014d}"
    return digits[:13] + ("{ABCDEFGHI" if cents >= 0 else "}JKLMNOPQR")[int(digits[13])]


def _cfonb_prefix(code: str, internal: str = "    ") -> str:
    return f"{code}{ACCOUNT.bank}{internal}{ACCOUNT.desk}EUR2 {ACCOUNT.number}"


def _cfonb_balance(code: str, day: date, cents: int) -> str:
    return f"{_cfonb_prefix(code)}  {day:%d%m%y}{' ' * 50}{cfonb_amount(cents)}{' ' * 16}"


def _cfonb_records(e: Entry) -> list[str]:
    t = e.transfers[0]
    cents = e.amount if e.credit else -e.amount
    op = f"{_cfonb_prefix('04', '0001')}{e.cfonb_code}{e.booked:%d%m%y}  {e.booked:%d%m%y}"
    label = _unaccent(e.label)[:31]
    records = [f"{op}{label:<31}  {e.ref:>7}  {cfonb_amount(cents)}{' ' * 16}"]
    head = f"{_cfonb_prefix('05', '0001')}{e.cfonb_code}{e.booked:%d%m%y}{' ' * 5}"
    for qualifier, info in (("NPY", t.debtor), ("LIB", t.text or t.rf)):
        if info:
            records.append(f"{head}{qualifier}{_unaccent(info)[:70]:<70}  ")
    return records


def _cfonb_entries(s: _Scenarios) -> list[Entry]:
    def transfer(row: int, case: str, form: int, **kwargs) -> Entry:
        t = s.paid(row, case, form, **kwargs)
        t = replace(t, debtor=_unaccent(t.debtor).upper().replace(".", ""))
        return s.entry(t, label=f"VIR SEPA {t.debtor}")

    entries = [
        transfer(s.pick.take(), "text", 0),
        transfer(s.pick.take(), "rf", 3, rf=True),
        transfer(s.pick.take(), "text", 2),
        transfer(s.pick.take(test=s.pick.unambiguous), "name_amount", 1, text=""),
        s.entry(Transfer(23890, "EDF ENTREPRISES", "PRLV SEPA EDF ENTREPRISES", case="debit"),
                credit=False, cfonb_code="B1", label="PRLV SEPA EDF ENTREPRISES"),
        s.entry(Transfer(21000, "", "3 CHEQUES", case="cheque_deposit"), cfonb_code="02",
                label="REMISE CHEQUE 0004512"),
    ]
    ordered = sorted(entries, key=lambda e: (e.booked, e.ref))
    return [replace(e, ref=f"{n:07d}") for n, e in enumerate(ordered, start=1)]


def _write_cfonb(path: Path, entries: list[Entry], start: date, end: date,
                 opening: int) -> list[int]:
    """Writes the statement; returns the line of each entry's 04 record."""
    records = [_cfonb_balance("01", start - timedelta(days=1), opening)]
    lines = []
    for entry in entries:
        lines.append(len(records) + 1)
        records += _cfonb_records(entry)
    closing = opening + sum(e.amount if e.credit else -e.amount for e in entries)
    records.append(_cfonb_balance("07", end, closing))
    assert all(len(r) == 120 for r in records), "a CFONB record must be 120 characters"
    path.write_bytes("".join(r + "\r\n" for r in records).encode("ascii"))
    return lines


# ---------------------------------------------------------------- the whole set

@dataclass(frozen=True)
class SampleSummary:
    """What generate() wrote."""

    out: Path
    invoices: int
    patients: int
    payment_lines: int
    files: tuple[str, ...]
    cases: dict[str, int]


def _write_bank_files(rng, out: Path, inv: _Invoices, patients: _Patients,
                      amc_waiting: np.ndarray, as_of: date) -> list[Lines]:
    """The camt.053 statement covers the last 30 days, the CFONB one the 30 days before."""
    end, start = as_of - timedelta(days=1), as_of - timedelta(days=30)
    earlier = start - timedelta(days=30)
    s = _Scenarios(rng, inv, patients, earlier, as_of)   # picks invoices open before both
    s.start, s.days = start, (as_of - start).days
    waiting = amc_waiting[inv.issue[amc_waiting] <= _day(start) - 3]
    camt = _camt_entries(s, waiting)
    _write_camt(out / "bank_camt053.xml", camt, start, end, opening=2_345_678)
    s.start, s.days = earlier, (start - earlier).days
    cfonb = _cfonb_entries(s)
    lines = _write_cfonb(out / "bank_cfonb120.txt", cfonb, earlier, start - timedelta(days=1),
                         opening=1_987_654)
    return [_bank_expected("bank_camt053.xml", camt),
            _bank_expected("bank_cfonb120.txt", cfonb, lines)]


def generate(out: Path, invoices: int = 400, seed: int = 2026, as_of: date = AS_OF,
             scale: bool | None = None) -> SampleSummary:
    """Writes a complete data set into `out`; scale mode by default above SCALE_THRESHOLD."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scale = invoices > SCALE_THRESHOLD if scale is None else scale
    rng = np.random.default_rng(seed)
    patients = _patients(rng, max(40, invoices // 2), as_of)
    inv = _invoices(rng, patients, invoices, as_of)
    _write_invoices(out / "invoices.csv", inv, patients)
    patients.columns.clear()   # the text columns are written; half a million rows of strings
    amo = _amo_lines(rng, inv, patients, as_of)
    amc, amc_waiting = _amc_lines(rng, inv, patients, as_of)
    expected = [
        _write_payments(out / "remittance_amo.csv", amo, "AMO-", OUR_PAYMENTS),
        _write_payments(out / "remittance_amc.csv", amc, "AMC-", MUTUELLE_PAYMENTS),
    ]
    if scale:
        patient_lines = _patient_lines(rng, inv, patients, as_of)
        expected.append(_write_payments(out / "payments_patient.csv", patient_lines, "PAT-",
                                        OUR_PAYMENTS))
    else:
        expected += _write_bank_files(rng, out, inv, patients, amc_waiting, as_of)
        expected.append(_write_noemie(np.random.default_rng(seed + 1), out, expected, as_of))
    _write_settings(out / "recouvrement.toml")
    truth = _concat(*expected)
    _write_csv(out / "expected.csv", {c: truth[c] for c in EXPECTED_COLUMNS}, ",", "utf-8", "\n")
    payment_files = dict.fromkeys(truth["source_file"].tolist())
    files = ("invoices.csv", *payment_files, "recouvrement.toml", "expected.csv")
    cases, counts = np.unique(truth["case"].astype(str), return_counts=True)
    return SampleSummary(out, invoices, len(patients.sex), len(truth["case"]), files,
                         dict(zip(cases.tolist(), counts.tolist())))


# ---------------------------------------------------------------- NOEMIE return
#
# Layout: recouvrement/importers/noemie.py; written by tools/noemie.py. Its own random stream (seed + 1),
# so the files before it keep their bytes. Invoice F2024-000123 is FSE number 024000123 (the shipped
# [noemie] rule of rules/insurers.toml adds the prefix F2 back).

NOEMIE_FILE = "retour_noemie.rsp"


def _write_noemie(rng, out: Path, expected: list[Lines], as_of: date) -> Lines:
    """AMO shares no other file answers: paid, deferred, rejected; and a clawback on a share paid in the AMO
    remittance. Returns its expected rows."""
    from recouvrement.importers import noemie
    from recouvrement.importers.noemie import Batch, Clawback, Invoice, Rejection, Remittance, Share, Transfer
    from tools.noemie import Identity, write

    import csv
    with open(out / "invoices.csv", encoding="cp1252", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    amo_expected = expected[0]                     # the AMO remittance: the shares the CPAM already answered
    answered = {n for numbers in amo_expected["invoice_numbers"] for n in str(numbers).split()}
    awaited = [r for r in rows if r["coverage"] == "none" and _cents(r["amo_amount"]) > 0
               and r["invoice_number"] not in answered
               and date.fromisoformat("-".join(reversed(r["issue_date"].split("/")))) <= as_of - timedelta(days=7)]
    awaited = [awaited[i] for i in sorted(rng.choice(len(awaited), size=min(12, len(awaited)), replace=False))]
    paid_amo = [(n, int(c)) for n, c, case in zip(amo_expected["invoice_numbers"], amo_expected["amount_cents"],
                                                  amo_expected["case"]) if case == "explicit" and int(c) >= 1500]
    clawed, clawed_cents = paid_amo[int(rng.integers(len(paid_amo)))]

    def fse(number: str) -> str:
        return number.replace("-", "")[2:]

    def invoice(row, state: str, rejection: Rejection | None = None) -> Invoice:
        cents = _cents(row["amo_amount"])
        return Invoice(fse(row["invoice_number"]), shares=(Share("amo", cents, state, cents if state == "P" else 0),),
                       rejections=(rejection,) if rejection else ())

    paid, rejected, deferred = awaited[:-4], awaited[-4:-2], awaited[-2:]
    first, second = as_of - timedelta(days=5), as_of - timedelta(days=3)
    reasons = (Rejection("0412", "DROITS NON OUVERTS A CETTE DATE", "F", "O"),
               Rejection("0587", "EXONERATION ALD NON JUSTIFIEE", "F", "O"))
    remittance = Remittance("CP", "00000941234567", as_of - timedelta(days=3), file_id="RSP001", transfers=(
        Transfer(first, ("VIR CPAM DU VAL-DE-MARNE", f"NOEMIE {first:%Y%m%d}"), "CPAM94", (
            Batch("001", first - timedelta(days=4), tuple(invoice(r, "P") for r in paid[:5])),
            Batch("002", first - timedelta(days=3), tuple(invoice(r, "D") for r in deferred)),
        )),
        Transfer(second, ("VIR CPAM DU VAL-DE-MARNE", f"NOEMIE {second:%Y%m%d}"), "CPAM94", (
            Batch("003", second - timedelta(days=4), (*(invoice(r, "P") for r in paid[5:]),
                                                      Invoice(fse(clawed), clawbacks=(Clawback(-500, "IND", "RPR",
                                                                                               "D2026-0042"),)))),
        )),
        Transfer(None, batches=(
            Batch("004", second - timedelta(days=2), tuple(invoice(r, "R", reason)
                                                          for r, reason in zip(rejected, reasons))),)),
    ))
    identities = {fse(r["invoice_number"]): Identity(r["nir"].replace(" ", ""), _ascii_upper(r["last_name"]),
                                                      _ascii_upper(r["first_name"]), act_code="C")
                  for r in awaited if r["nir"]}
    data = write(remittance, identities)
    (out / NOEMIE_FILE).write_bytes(data)
    parsed = noemie.read(out / NOEMIE_FILE, numbers=noemie.NoemieNumbers(prefix="F2"))
    frame = parsed.frame
    numbers = [f"{n[:5]}-{n[5:]}" for n in frame["invoice_number"]]
    cases = ["clawback" if s == "clawback" else "rejected" if s == "rejected" else "explicit" for s in frame["status"]]
    return {"source_file": np.full(len(frame), NOEMIE_FILE, dtype=object),
            "source_line": frame["source_line"].to_numpy(dtype=np.int64),
            "payment_id": frame["payment_id"].to_numpy(dtype=object), "invoice_numbers": np.array(numbers, dtype=object),
            "case": np.array(cases, dtype=object), "amount_cents": frame["amount_cents"].to_numpy(dtype=np.int64)}


def _cents(text: str) -> int:
    units, _, frac = text.replace(" ", "").partition(",")
    return int(units) * 100 + int((frac or "0").ljust(2, "0"))


def _ascii_upper(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").upper()


@click.command()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write into (created if missing).")
@click.option("--invoices", default=400, show_default=True, help="Number of invoices.")
@click.option("--seed", default=2026, show_default=True, help="Same seed, same bytes.")
@click.option("--scale/--sample", "scale", default=None,
              help=f"Scale mode (patient payments CSV, no bank statements); "
                   f"default: scale above {SCALE_THRESHOLD} invoices.")
def main(out: Path, invoices: int, seed: int, scale: bool | None) -> None:
    """Write the deterministic sample (or scale) data set of the fictional clinic."""
    try:
        summary = generate(out, invoices=invoices, seed=seed, scale=scale)
    except ValueError as error:   # too few invoices for every bank scenario
        raise click.ClickException(f"{error}: ask for 300 invoices or more, or --scale") from None
    click.echo(f"{summary.invoices} invoices, {summary.patients} patients, "
               f"{summary.payment_lines} payment lines written to {summary.out}")
    click.echo("cases: " + ", ".join(f"{k}={v}" for k, v in summary.cases.items()))


if __name__ == "__main__":
    main()
