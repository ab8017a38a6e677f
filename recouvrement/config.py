"""Settings from recouvrement.toml (--config / RECOUVREMENT_CONFIG / ./recouvrement.toml), validated at load.

Documented in README.md; the samples ship one for a fictional clinic.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from stdnum import iban as stdnum_iban
from stdnum.fr import siret as stdnum_siret

from recouvrement.errors import RecouvrementError


@dataclass(frozen=True)
class Creditor:
    name: str = ""
    address: str = ""
    postal_code: str = ""
    city: str = ""
    phone: str = ""
    email: str = ""
    siret: str = ""
    iban: str = ""
    bic: str = ""


@dataclass(frozen=True)
class Smtp:
    host: str | None = None
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    sender: str = ""


@dataclass(frozen=True)
class Sms:
    """The SMS provider (Brevo's transactional SMS API, channels/sms.py). Without `url`, SMS are written to the
    output folder, not sent. The API key is never a setting: RECOUVREMENT_SMS_API_KEY, else `api_key_file`."""
    url: str = ""                      # e.g. https://api.brevo.com/v3/transactionalSMS/send
    api_key_file: Path | None = None   # relative to the settings file; one line, the key
    sender: str = ""                   # the name the phone shows: 3 to 11 letters or digits, one letter at least
    phone: str = ""                    # the number the SMS asks to call; default: [creditor] phone
    timeout: int = 15                  # seconds to wait for the provider


@dataclass(frozen=True)
class Paths:
    inbox: Path = Path("inbox")
    archive: Path = Path("archive")
    quarantine: Path = Path("quarantine")
    output: Path = Path("out")
    rules: Path | None = None          # a folder whose rules files replace the shipped ones (it may hold only some)


@dataclass(frozen=True)
class Privacy:
    keep_care: bool = False            # keep care descriptions / act codes in the sealed invoice_care table
    nir_key_file: Path | None = None   # default: beside the settings file, else in the user's data folder


@dataclass(frozen=True)
class Inbox:
    settle_seconds: int = 10           # a file changed more recently than this is still being written


@dataclass(frozen=True)
class Audit:
    key_file: Path | None = None         # the secret that seals the audit trail; default beside the NIR key
    checkpoint_file: Path | None = None  # the trail's last head, kept outside the database; default beside it


@dataclass(frozen=True)
class Agency:
    name: str = ""                     # the collection agency a mise en demeure names ("" : not named)


@dataclass(frozen=True)
class Schedule:
    cron: str = "30 2 * * *"           # minute hour day month day-of-week
    timezone: str = "Europe/Paris"


@dataclass(frozen=True)
class Database:
    """Where the clinic's data lives. Several clinics on one PostgreSQL server: one schema each (README,
    "Several clinics on one PostgreSQL server"); --db / RECOUVREMENT_DB win over `url`."""
    url: str = ""                      # e.g. postgresql://nord@db.example/recouvrement ("" : --db, else SQLite)
    schema: str = ""                   # PostgreSQL only: the clinic's schema ("" : the database's default)


@dataclass(frozen=True)
class Settings:
    creditor: Creditor = field(default_factory=Creditor)
    smtp: Smtp = field(default_factory=Smtp)
    sms: Sms = field(default_factory=Sms)
    paths: Paths = field(default_factory=Paths)
    privacy: Privacy = field(default_factory=Privacy)
    schedule: Schedule = field(default_factory=Schedule)
    inbox: Inbox = field(default_factory=Inbox)
    audit: Audit = field(default_factory=Audit)
    agency: Agency = field(default_factory=Agency)
    database: Database = field(default_factory=Database)
    source: Path | None = None

    def rules(self):
        """The policy files: the shipped ones, each replaced by the `[paths] rules` folder's file of that name."""
        from recouvrement.rules import load_rules
        return load_rules(overrides=self.paths.rules)

    def require_creditor(self) -> Creditor:
        missing = [f.name for f in fields(Creditor) if not getattr(self.creditor, f.name)]
        if missing:
            raise RecouvrementError(f"réglages du créancier manquants pour écrire des lettres : {', '.join(missing)}",
                                    file=str(self.source or "recouvrement.toml"), field="creditor")
        return self.creditor

    def mail_sender(self) -> str:
        """The address e-mails come from: `[smtp] sender`, else the creditor's."""
        return self.smtp.sender or self.creditor.email

    def nir_key_path(self) -> Path:
        """Where the NIR key lives, never in the current folder (each folder would make its own key and
        hash the same NIR differently): `[privacy] nir_key_file` (relative to the settings file), else
        `recouvrement-nir.key` beside the settings file, else `$XDG_DATA_HOME/recouvrement/nir.key`
        (~/.local/share/recouvrement/nir.key) when there is no settings file."""
        if self.privacy.nir_key_file is not None:
            return self.privacy.nir_key_file
        if self.source is not None:
            return self.source.parent / NIR_KEY_NAME
        data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(data_home) / "recouvrement" / "nir.key"

    def nir_key(self) -> bytes:
        """The installation's secret for hashing NIRs: RECOUVREMENT_NIR_KEY, else the key file, made once."""
        if os.environ.get("RECOUVREMENT_NIR_KEY"):
            return os.environ["RECOUVREMENT_NIR_KEY"].encode()
        return read_or_create_key(self.nir_key_path())


    def installation_file(self, configured: Path | None, beside_settings: str, in_data_folder: str) -> Path:
        """Where a file of the installation lives, never in the current folder: as configured (relative to the
        settings file), else beside the settings file, else in $XDG_DATA_HOME/recouvrement/."""
        if configured is not None:
            return configured
        if self.source is not None:
            return self.source.parent / beside_settings
        data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(data_home) / "recouvrement" / in_data_folder

    def audit_key(self) -> bytes:
        """The secret that seals the audit trail (HMAC-SHA256): RECOUVREMENT_AUDIT_KEY, else `[audit] key_file`,
        made once (found like the NIR key). Distinct from the NIR key: each secret does one job."""
        if os.environ.get("RECOUVREMENT_AUDIT_KEY"):
            return os.environ["RECOUVREMENT_AUDIT_KEY"].encode()
        return read_or_create_key(self.installation_file(self.audit.key_file, "recouvrement-audit.key", "audit.key"))

    def sms_phone(self) -> str:
        """The clinic's number an SMS gives: `[sms] phone`, else `[creditor] phone`."""
        return self.sms.phone or self.creditor.phone

    def sms_api_key(self) -> str:
        """The SMS provider's API key: RECOUVREMENT_SMS_API_KEY, else the first line of `[sms] api_key_file`.
        Never logged, never in an error message."""
        if os.environ.get(SMS_KEY_VARIABLE):
            return os.environ[SMS_KEY_VARIABLE].strip()
        where = str(self.source or "recouvrement.toml")
        if self.sms.api_key_file is None:
            raise RecouvrementError(f"clé d'API SMS manquante : {SMS_KEY_VARIABLE} ou [sms] api_key_file",
                                    file=where, field="sms.api_key_file")
        try:
            key = self.sms.api_key_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            raise RecouvrementError("fichier de clé d'API SMS illisible", file=str(self.sms.api_key_file),
                                    field="sms.api_key_file") from None
        if not key:
            raise RecouvrementError("fichier de clé d'API SMS vide", file=str(self.sms.api_key_file),
                                    field="sms.api_key_file")
        return key

    def audit_checkpoint(self) -> Path:
        return self.installation_file(self.audit.checkpoint_file, "recouvrement-audit.checkpoint",
                                      "audit.checkpoint")


NIR_KEY_NAME = "recouvrement-nir.key"
SCHEMA_NAME = re.compile(r"(?!pg_)[a-z_][a-z0-9_]{0,62}")


def valid_schema(name: str) -> bool:
    """A clinic's PostgreSQL schema: a lowercase identifier that needs no quoting, never a system one.

    >>> [valid_schema(n) for n in ("clinique_nord", "Nord", "pg_catalog", "a;drop", "2nord")]
    [True, False, False, False, False]
    """
    return SCHEMA_NAME.fullmatch(name) is not None
SMS_KEY_VARIABLE = "RECOUVREMENT_SMS_API_KEY"


def read_or_create_key(path: Path) -> bytes:
    """The key in `path`, created once (0600, written whole before it appears: two processes creating it at
    the same moment end up with the same key, the second one's attempt being dropped)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(partial, path)     # fails if another process made the key first: theirs is kept
        except FileExistsError:
            pass
        finally:
            partial.unlink()
    key = path.read_text(encoding="ascii").strip()
    if not key:
        raise RecouvrementError("clé NIR vide", file=str(path))
    return key.encode()


SECTIONS = {"creditor": Creditor, "smtp": Smtp, "sms": Sms, "paths": Paths, "privacy": Privacy, "schedule": Schedule,
            "inbox": Inbox, "audit": Audit, "agency": Agency, "database": Database}


def config_path(explicit: str | Path | None = None) -> Path | None:
    chosen = explicit or os.environ.get("RECOUVREMENT_CONFIG")
    if chosen:
        path = Path(chosen)
        if not path.exists():
            raise RecouvrementError("fichier de réglages introuvable", file=str(path))
        return path
    default = Path("recouvrement.toml")
    return default if default.exists() else None


def load_settings(explicit: str | Path | None = None) -> Settings:
    path = config_path(explicit)
    if path is None:
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RecouvrementError(f"TOML invalide : {exc}", file=str(path)) from None
    sections = {}
    for name, values in data.items():
        if name not in SECTIONS:
            raise RecouvrementError(f"section inconnue [{name}]", file=str(path), field=name)
        sections[name] = _section(path, name, SECTIONS[name], values)
    settings = Settings(**sections, source=path.resolve())   # a later chdir must not move the key
    _check_creditor(path, settings.creditor)
    _check_addresses(path, settings)
    _check_sms(path, settings)
    _check_database(path, settings.database)
    return settings


def _section(path: Path, name: str, cls, values: dict):
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise RecouvrementError(f"réglage inconnu {key!r}", file=str(path), field=f"{name}.{key}")
        default = getattr(cls(), key)
        if (isinstance(default, Path) or (cls is Privacy and key == "nir_key_file") or cls is Audit
                or (cls is Paths and key == "rules") or (cls is Sms and key == "api_key_file")):
            if not isinstance(value, str) or not value:
                raise RecouvrementError("doit être un chemin (texte)", file=str(path), field=f"{name}.{key}")
            value = _relative(path, value)
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise RecouvrementError("doit valoir true ou false", file=str(path), field=f"{name}.{key}")
        elif isinstance(default, int) and not isinstance(default, bool) and not isinstance(value, int):
            raise RecouvrementError("doit être un nombre entier", file=str(path), field=f"{name}.{key}")
        elif isinstance(default, str) and not isinstance(value, str):
            raise RecouvrementError("doit être un texte", file=str(path), field=f"{name}.{key}")
        kwargs[key] = value
    return cls(**kwargs)


def _relative(config: Path, value) -> Path:
    path = Path(value)
    return path if path.is_absolute() else config.resolve().parent / path


def _check_creditor(path: Path, creditor: Creditor) -> None:
    if creditor.siret and not stdnum_siret.is_valid(creditor.siret):
        raise RecouvrementError("SIRET invalide", file=str(path), field="creditor.siret")
    if creditor.iban and not stdnum_iban.is_valid(creditor.iban):
        raise RecouvrementError("IBAN invalide", file=str(path), field="creditor.iban")


def _check_addresses(path: Path, settings: Settings) -> None:
    """The creditor's address (Reply-To of every e-mail) and the envelope sender: one bare address each."""
    from recouvrement.core.contact import is_valid_email
    for key, value in (("creditor.email", settings.creditor.email), ("smtp.sender", settings.smtp.sender)):
        if value and not is_valid_email(value):
            raise RecouvrementError("pas une adresse e-mail valide (une seule adresse nue, sans nom)",
                                    file=str(path), field=key)


def _check_sms(path: Path, settings: Settings) -> None:
    """[sms]: an https:// endpoint (http only to this machine, for tests), a sender id the networks accept, a
    clinic number to call, and a readable API key — checked when the settings load, the key never shown."""
    import re
    from urllib.parse import urlsplit

    from recouvrement.core.contact import e164
    sms = settings.sms
    if not sms.url:
        return
    where = str(path)
    parts = urlsplit(sms.url)
    local = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or not (parts.scheme == "https" or local):
        raise RecouvrementError("adresse du fournisseur SMS : une URL https://", file=where, field="sms.url")
    if not re.fullmatch(r"(?=.*[A-Za-z])[A-Za-z0-9]{3,11}", sms.sender):
        raise RecouvrementError("expéditeur SMS : 3 à 11 lettres ou chiffres sans espace, une lettre au moins",
                                file=where, field="sms.sender")
    if e164(settings.sms_phone()) is None:
        raise RecouvrementError("numéro de la clinique à donner dans les SMS invalide ([sms] phone ou "
                                "[creditor] phone)", file=where, field="sms.phone")
    if sms.timeout < 1:
        raise RecouvrementError("doit être au moins 1 seconde", file=where, field="sms.timeout")
    settings.sms_api_key()


def _check_database(path: Path, database: Database) -> None:
    """[database] schema: a plain identifier (it is written into the connection's search_path)."""
    if database.schema and not valid_schema(database.schema):
        raise RecouvrementError("nom de schéma invalide : lettres minuscules, chiffres et _ (63 au plus), sans "
                                "commencer par un chiffre ni par pg_", file=str(path), field="database.schema")
