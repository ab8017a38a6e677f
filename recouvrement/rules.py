"""Load and validate the policy files in rules/*.toml into frozen dataclasses the core reads.

Every key is required and every unknown key is refused, so a typo in a rules file is an error
naming the file and the key, never a silently ignored setting. The dataclass defaults are the
shipped policy (tests check that rules/ and the defaults agree), so the core can be tested with
``Rules()`` and no file at all.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recouvrement.errors import RecouvrementError

DEFAULT_RULES_DIR = Path(__file__).resolve().parent / "rules"
PHONE = "phone"  # a ladder level may be a phone call (a call list, not a letter), alone
# The ways a level reaches the patient; a level's `channel` names one, or several joined by "+" in any
# order ("sms+letter"); "both" is the older name of "letter+email" and stays the stored name of that pair.
MEANS = ("letter", "email", "sms")
CHANNEL_SYNTAX = "parmi letter, email, both, sms, ou plusieurs joints par + (ex. sms+letter)"


def channel_means(channel: str) -> frozenset[str]:
    """The means a channel names; ValueError for an unknown one.

    >>> sorted(channel_means("sms+letter")), sorted(channel_means("both"))
    (['letter', 'sms'], ['email', 'letter'])
    """
    parts = [p.strip() for p in channel.split("+")]
    means: set[str] = set()
    for part in parts:
        named = {"letter", "email"} if part == "both" and len(parts) == 1 else {part}
        if not named <= set(MEANS) or named & means:
            raise ValueError(channel)
        means |= named
    return frozenset(means)


def channel_name(means: frozenset[str] | set[str]) -> str:
    """The stored name of a set of means: "both" for letter and e-mail, else the means joined by "+" in the
    order letter, email, sms.

    >>> channel_name({"sms", "letter"}), channel_name({"letter", "email"}), channel_name({"sms"})
    ('letter+sms', 'both', 'sms')
    """
    if set(means) == {"letter", "email"}:
        return "both"
    return "+".join(m for m in MEANS if m in means)


def _means_of(channel: str | None) -> frozenset[str]:
    """A decided channel's means; none for no channel or a phone call."""
    return channel_means(channel) if channel and channel != PHONE else frozenset()


def is_postal(channel: str | None) -> bool:
    return "letter" in _means_of(channel)


def by_email(channel: str | None) -> bool:
    return "email" in _means_of(channel)


def by_sms(channel: str | None) -> bool:
    return "sms" in _means_of(channel)


@dataclass(frozen=True)
class LadderLevel:
    """One rung of the reminder ladder: when it is due, which letter, which channel."""

    level: int
    days: int  # days past the oldest remindable item's due date
    template: str  # the letter (for a phone level: the letter the call falls back to)
    channel: str  # letter | email | sms | both, means joined by "+" (see channel_means), or phone
    script: str | None = None  # phone level: the call script template (templates/calls/<script>.txt.j2)
    call_within_days: int | None = None  # phone level: no outcome recorded that long after the list → its letter

    @property
    def is_phone(self) -> bool:
        return self.channel == "phone"


@dataclass(frozen=True)
class PreDueNotice:
    """The neutral notice "avant échéance", sent once per invoice `days_before` its due date (never on or after
    it), for a patient share of at least `min_patient_share_cents`. Not a ladder level (level 1 still comes
    `days` after the due date)."""

    enabled: bool = False
    days_before: int = 7
    min_patient_share_cents: int = 3000
    template: str = "avant_echeance"
    channel: str = "email"


@dataclass(frozen=True)
class RejectionNotice:
    """The neutral letter telling a patient an insurer did not pay (level 0, outside the ladder)."""

    template: str = "avis_rejet"
    channel: str = "email"
    due_after_days: int = 30  # the shifted share falls due this long after the rejection


@dataclass(frozen=True)
class RejectReasons:
    """What the rejection notice may say of an insurer's reason: (reason as remittances write it, the letter's
    neutral words). A reason not listed is never copied into a letter (it could reveal care)."""

    reasons: tuple[tuple[str, str], ...] = (
        ("droits non ouverts", "vos droits n'étaient pas ouverts à cette date auprès de votre caisse"),
        ("droits clos", "vos droits n'étaient plus ouverts à cette date auprès de votre caisse"),
        ("droits fermés", "vos droits n'étaient plus ouverts à cette date auprès de votre caisse"),
        ("assuré inconnu", "votre caisse n'a pas retrouvé votre dossier avec les informations transmises"),
        ("bénéficiaire inconnu", "votre caisse n'a pas retrouvé votre dossier avec les informations transmises"),
        ("adhérent inconnu", "votre mutuelle n'a pas retrouvé votre contrat avec les informations transmises"),
        ("contrat résilié", "votre contrat de mutuelle n'était plus en vigueur à cette date"),
        ("hors période de garantie", "votre contrat de mutuelle ne couvrait pas cette date"),
        ("fin de droits", "vos droits avaient pris fin à cette date"),
        ("doublon", "cette facture lui avait déjà été présentée"),
    )


@dataclass(frozen=True)
class LadderRules:
    min_gap_days: int = 14
    levels: tuple[LadderLevel, ...] = (
        LadderLevel(1, 15, "relance_1", "email"),
        LadderLevel(2, 30, "relance_2", "both"),
        LadderLevel(3, 45, "mise_en_demeure", "both"),
    )
    rejection_notice: RejectionNotice = field(default_factory=RejectionNotice)
    pre_due: PreDueNotice = field(default_factory=PreDueNotice)

    @property
    def max_level(self) -> int:
        return len(self.levels)

    def level(self, number: int) -> LadderLevel:
        return self.levels[number - 1]


@dataclass(frozen=True)
class ExclusionRules:
    anomaly_coverages: tuple[str, ...] = ("css", "ame", "at_mp")
    limitation_years: int = 2
    min_total_cents: int = 500


@dataclass(frozen=True)
class SegmentRules:
    min_level2_invoices: int = 2
    level2_window_months: int = 12
    min_broken_plans: int = 1
    broken_plan_window_months: int = 24


@dataclass(frozen=True)
class PlanRules:
    min_instalment_cents: int = 1500
    max_months: int = 12
    first_due_after_months: int = 1
    grace_days: int = 15
    answer_window_days: int = 30  # a proposed plan pauses the ladder this long, then lapses unanswered


@dataclass(frozen=True)
class AgencyRules:
    min_amount_cents: int = 500
    after_level3_days: int = 15
    allow_email: bool = False
    allow_phone: bool = False
    # The agency's commission on what it collects, in basis points (1500 = 15 %), when its returns file gives
    # none on the line; 0: none booked. An expense of the clinic, never charged to the patient.
    commission_rate_bp: int = 0


@dataclass(frozen=True)
class Account:
    """A general-ledger account of the clinic's chart (plan comptable): its number and label."""

    number: str
    label: str


@dataclass(frozen=True)
class Journal:
    code: str
    label: str


@dataclass(frozen=True)
class AccountingRules:
    """The accounts and journals recouvrement books into (the FEC and the accounting journal CSV)."""

    bank_journal: Journal = Journal("BQ", "Banque")
    transfer_journal: Journal = Journal("OD", "Opérations diverses")
    bank: Account = Account("512000", "Banque")
    patient: Account = Account("411100", "Clients - patients")
    amo: Account = Account("411200", "Clients - Assurance Maladie obligatoire")
    amc: Account = Account("411300", "Clients - organismes complémentaires")
    credit: Account = Account("419100", "Clients - trop-perçus à rembourser")
    write_off: Account = Account("654000", "Pertes sur créances irrécouvrables")
    commission: Account = Account("622600", "Commissions et courtages - recouvrement")
    agency: Account = Account("401900", "Fournisseurs - agence de recouvrement")


@dataclass(frozen=True)
class Rules:
    ladder: LadderRules = field(default_factory=LadderRules)
    exclusions: ExclusionRules = field(default_factory=ExclusionRules)
    segments: SegmentRules = field(default_factory=SegmentRules)
    plans: PlanRules = field(default_factory=PlanRules)
    agency: AgencyRules = field(default_factory=AgencyRules)
    accounting: AccountingRules = field(default_factory=AccountingRules)
    reject_reasons: RejectReasons = field(default_factory=RejectReasons)


def load_rules(rules_dir: Path | None = None, overrides: Path | None = None) -> Rules:
    """Read ladder, exclusions, segments, plans, agency, accounting and reject_reasons .toml from rules_dir
    (default: repo rules/); a file present in `overrides` (an installation's `[paths] rules` folder, which may
    hold only the files it changes) is read in place of rules_dir's."""
    folder = Path(rules_dir) if rules_dir is not None else DEFAULT_RULES_DIR

    def table(name: str) -> _Table:
        own = Path(overrides) / name if overrides is not None else None
        return _Table.of_file(own if own is not None and own.is_file() else folder / name)
    return Rules(
        ladder=_ladder(table("ladder.toml")),
        exclusions=_exclusions(table("exclusions.toml")),
        segments=_segments(table("segments.toml")),
        plans=_plans(table("plans.toml")),
        agency=_agency(table("agency.toml")),
        accounting=_accounting(table("accounting.toml")),
        reject_reasons=_reject_reasons(table("reject_reasons.toml")),
    )


class _Table:
    """One TOML table being read: each key taken once, checked, and the leftovers refused."""

    def __init__(self, data: dict[str, Any], file: str, path: str = "") -> None:
        self._data, self._file, self._path = data, file, path
        self._taken: set[str] = set()

    @classmethod
    def of_file(cls, path: Path) -> _Table:
        return cls(_read_toml(path), str(path))

    def error(self, key: str, message: str) -> RecouvrementError:
        where = f"{self._path}.{key}" if self._path else key
        return RecouvrementError(message, file=self._file, field=where)

    def _take(self, key: str) -> Any:
        if key not in self._data:
            raise self.error(key, "clé obligatoire manquante")
        self._taken.add(key)
        return self._data[key]

    def integer(self, key: str, minimum: int = 0, maximum: int | None = None) -> int:
        value = self._take(key)
        # bool is an int in Python; `true` where a number is expected is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"nombre entier attendu, lu {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"entre {minimum} et {maximum}" if maximum is not None else f"au moins {minimum}"
            raise self.error(key, f"doit être {bounds}, lu {value}")
        return value

    def boolean(self, key: str) -> bool:
        value = self._take(key)
        if not isinstance(value, bool):
            raise self.error(key, f"true ou false attendu, lu {value!r}")
        return value

    def text(self, key: str, choices: tuple[str, ...] | None = None) -> str:
        value = self._take(key)
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"texte non vide attendu, lu {value!r}")
        if choices is not None and value not in choices:
            raise self.error(key, f"doit être parmi {', '.join(choices)}, lu {value!r}")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self._take(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.error(key, f"liste de textes attendue, lu {value!r}")
        return tuple(value)

    def table(self, key: str) -> _Table:
        value = self._take(key)
        if not isinstance(value, dict):
            raise self.error(key, f"table [{key}] attendue")
        return _Table(value, self._file, self._prefixed(key))

    def tables(self, key: str) -> list[_Table]:
        value = self._take(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            raise self.error(key, f"une ou plusieurs tables [[{key}]] attendues")
        return [_Table(v, self._file, f"{self._prefixed(key)}[{i}]") for i, v in enumerate(value)]

    def close(self) -> None:
        unknown = sorted(set(self._data) - self._taken)
        if unknown:
            known = ", ".join(sorted(self._taken))
            raise self.error(unknown[0], f"clé inconnue (clés connues ici : {known})")

    def _prefixed(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecouvrementError("fichier de règles introuvable", file=str(path)) from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RecouvrementError("le fichier de règles n'est pas du texte UTF-8", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11 puts the position only in the message: "... (at line 3, column 7)".
        found = re.search(r"line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        raise RecouvrementError(f"TOML invalide : {exc}", file=str(path), line=line) from None


def _ladder(table: _Table) -> LadderRules:
    min_gap_days = table.integer("min_gap_days")
    notice_table = table.table("rejection_notice")
    notice = RejectionNotice(
        template=notice_table.text("template"),
        channel=_channel(notice_table, "channel"),
        due_after_days=notice_table.integer("due_after_days"),
    )
    notice_table.close()
    pre_due = _pre_due(table.table("pre_due"))
    levels = tuple(_ladder_level(t, i + 1) for i, t in enumerate(table.tables("levels")))
    table.close()
    _check_levels(levels, table)
    return LadderRules(min_gap_days=min_gap_days, levels=levels, rejection_notice=notice, pre_due=pre_due)


def _pre_due(table: _Table) -> PreDueNotice:
    notice = PreDueNotice(
        enabled=table.boolean("enabled"),
        days_before=table.integer("days_before", minimum=1, maximum=60),
        min_patient_share_cents=table.integer("min_patient_share_cents"),
        template=table.text("template"),
        channel=_channel(table, "channel"),
    )
    table.close()
    return notice


def _ladder_level(table: _Table, expected: int) -> LadderLevel:
    number, days = table.integer("level", minimum=1), table.integer("days")
    template = table.text("template")
    channel = _channel(table, "channel", phone=True)
    script = call_within_days = None
    if channel == PHONE:
        script = table.text("script")
        call_within_days = table.integer("call_within_days", minimum=1, maximum=30)
    else:
        for key in ("script", "call_within_days"):
            if key in table._data:
                raise table.error(key, "seulement pour un niveau par téléphone (channel = \"phone\")")
    level = LadderLevel(number, days, template, channel, script, call_within_days)
    table.close()
    if level.level != expected:
        raise table.error("level", f"les niveaux se numérotent 1, 2, 3 … dans l'ordre ; attendu {expected}")
    return level


def _channel(table: _Table, key: str, phone: bool = False) -> str:
    """A channel in its stored name (channel_name); `phone`: a ladder level, which may also be a phone call."""
    value = table.text(key)
    if phone and value == PHONE:
        return PHONE
    try:
        return channel_name(channel_means(value))
    except ValueError:
        also = ", ou phone seul" if phone else ""
        raise table.error(key, f"canal {CHANNEL_SYNTAX}{also}, lu {value!r}") from None


def _check_levels(levels: tuple[LadderLevel, ...], table: _Table) -> None:
    for before, after in zip(levels, levels[1:]):
        if after.days <= before.days:
            raise table.error(f"levels[{after.level - 1}].days",
                              f"le niveau {after.level} doit venir après le niveau {before.level} "
                              f"({after.days} ≤ {before.days} jours)")
    # The last level is the mise en demeure: it must reach the patient by post, e-mail at most in copy, never
    # a phone call nor a text message (a formal notice is written; its wording and its proof are the letter's).
    if levels[-1].channel != PHONE and "sms" in channel_means(levels[-1].channel):
        raise table.error(f"levels[{len(levels) - 1}].channel",
                          "la mise en demeure ne part jamais par SMS : letter ou both")
    if levels[-1].channel == PHONE or "letter" not in channel_means(levels[-1].channel):
        raise table.error(f"levels[{len(levels) - 1}].channel",
                          "le dernier niveau (mise en demeure) part par courrier : letter ou both")


def _exclusions(table: _Table) -> ExclusionRules:
    rules = ExclusionRules(
        anomaly_coverages=tuple(c.lower() for c in table.texts("anomaly_coverages")),
        limitation_years=table.integer("limitation_years", minimum=1),
        min_total_cents=table.integer("min_total_cents"),
    )
    table.close()
    return rules


def _segments(table: _Table) -> SegmentRules:
    rules = SegmentRules(
        min_level2_invoices=table.integer("min_level2_invoices", minimum=1),
        level2_window_months=table.integer("level2_window_months", minimum=1),
        min_broken_plans=table.integer("min_broken_plans", minimum=1),
        broken_plan_window_months=table.integer("broken_plan_window_months", minimum=1),
    )
    table.close()
    return rules


def _plans(table: _Table) -> PlanRules:
    rules = PlanRules(
        min_instalment_cents=table.integer("min_instalment_cents", minimum=1),
        max_months=table.integer("max_months", minimum=1),
        first_due_after_months=table.integer("first_due_after_months", minimum=1),
        grace_days=table.integer("grace_days"),
        answer_window_days=table.integer("answer_window_days", minimum=1),
    )
    table.close()
    return rules


def _agency(table: _Table) -> AgencyRules:
    rules = AgencyRules(
        min_amount_cents=table.integer("min_amount_cents"),
        after_level3_days=table.integer("after_level3_days"),
        allow_email=table.boolean("allow_email"),
        allow_phone=table.boolean("allow_phone"),
        commission_rate_bp=table.integer("commission_rate_bp", maximum=10000),
    )
    table.close()
    return rules


def _reject_reasons(table: _Table) -> RejectReasons:
    reasons = table.table("reasons")
    pairs = tuple((key, reasons.text(key)) for key in list(reasons._data))
    reasons.close()
    table.close()
    return RejectReasons(pairs)


ACCOUNTS = ("bank", "patient", "amo", "amc", "credit", "write_off", "commission", "agency")
JOURNALS = ("bank_journal", "transfer_journal")


def _accounting(table: _Table) -> AccountingRules:
    journals = table.table("journals")
    found_journals = {}
    for key in JOURNALS:
        entry = journals.table(key.removesuffix("_journal"))
        code = entry.text("code")
        if not re.fullmatch(r"[A-Za-z0-9]{1,10}", code):
            raise entry.error("code", f"code journal : 1 à 10 lettres ou chiffres, lu {code!r}")
        found_journals[key] = Journal(code, _plain_label(entry, "label"))
        entry.close()
    journals.close()
    accounts = table.table("accounts")
    found_accounts = {}
    for key in ACCOUNTS:
        entry = accounts.table(key)
        number = entry.text("number")
        # The FEC's CompteNum starts with three digits (a class of the plan comptable général).
        if not re.fullmatch(r"[0-9]{3}[0-9A-Za-z]{0,17}", number):
            raise entry.error("number", f"numéro de compte : 3 chiffres au moins en tête, 20 caractères au plus, "
                                        f"lu {number!r}")
        found_accounts[key] = Account(number, _plain_label(entry, "label"))
        entry.close()
    accounts.close()
    table.close()
    fields: dict[str, Journal | Account] = {**found_journals, **found_accounts}
    return AccountingRules(**fields)  # type: ignore[arg-type]  # keys: JOURNALS and ACCOUNTS, its fields


def _plain_label(table: _Table, key: str) -> str:
    """A label on one line, without the FEC's separators (tab, pipe)."""
    value = table.text(key)
    if re.search(r"[\t|\r\n]", value):
        raise table.error(key, "libellé sur une ligne, sans tabulation ni barre verticale")
    return value
