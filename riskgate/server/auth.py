"""Who is calling: the principals of the auth file and how a call is matched to one.

The auth file (setting ``auth_file``, ``riskgate serve --auth FILE``) is TOML with one
``[[principal]]`` table per caller::

    [[principal]]
    name = "gw-a"
    token_sha256 = "…"               # sha256 hex digest of its bearer token
    cert_subject = "CN=gw-a"         # and/or: its mutual-TLS client certificate
    roles = ["gateway"]
    accounts = ["acct-1", "desk-a-*"]  # account ids, prefixes ending in *, or "*" for all

A call presents a bearer token (``authorization: Bearer <token>`` metadata) or, when the
server requires client certificates (``tls_client_ca_file``), the certificate it connected
with. ``cert_subject`` is ``CN=<common name>`` or ``SAN=<subject alternative name>`` (a DNS
name, URI, e-mail address or IP address of the certificate). Tokens are kept only as their
digests and compared in constant time; neither tokens nor digests are ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import string
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskgate.config import SettingsError

__all__ = [
    "ANONYMOUS",
    "ROLES",
    "AuthConfig",
    "AuthFileError",
    "Principal",
    "Scope",
    "load_auth_file",
    "token_sha256",
]

ROLES: tuple[str, ...] = ("gateway", "account_admin", "market", "risk_officer", "viewer")
_PRINCIPAL_KEYS = ("name", "token_sha256", "cert_subject", "roles", "accounts")
_HEX = frozenset(string.hexdigits)
KNOWN_TOKENS = 256


class AuthFileError(SettingsError):
    """An auth file that cannot be used; one line naming the file and the field."""


def token_sha256(token: str) -> str:
    """The hex digest to put in ``token_sha256`` for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Scope:
    """The accounts a principal may touch: exact ids, prefixes, or every account."""

    everything: bool = False
    ids: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    def covers(self, account_id: str) -> bool:
        return self.everything or account_id in self.ids or account_id.startswith(self.prefixes)

    def describe(self) -> str:
        if self.everything:
            return "'*'"
        items = sorted(self.ids) + [p + "*" for p in self.prefixes]
        return ", ".join(items) if items else "no accounts"


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str]
    scope: Scope
    token_digest: bytes | None = field(default=None, repr=False)
    cert_subject: tuple[str, str] | None = None  # ("CN" | "SAN", value)


# Every caller when the service runs without an auth file.
ANONYMOUS = Principal("anonymous", frozenset(ROLES), Scope(everything=True))


@dataclass(frozen=True)
class AuthConfig:
    """The principals of one auth file."""

    path: str
    principals: tuple[Principal, ...]
    _by_digest: dict[bytes, Principal] = field(init=False, repr=False, compare=False)
    _known: dict[str, Principal] = field(init=False, repr=False, compare=False)
    _by_name: dict[tuple[str, str], Principal] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        digests = {p.token_digest: p for p in self.principals if p.token_digest is not None}
        object.__setattr__(self, "_by_digest", digests)
        object.__setattr__(self, "_known", {})
        names = {p.cert_subject: p for p in self.principals if p.cert_subject is not None}
        object.__setattr__(self, "_by_name", names)

    @property
    def uses_certificates(self) -> bool:
        return any(p.cert_subject is not None for p in self.principals)

    def by_token(self, token: str) -> Principal | None:
        """The principal whose digest is ``token``'s sha256 digest.

        The digest, not the token, is what is looked up: the table is keyed by the digest
        (Python's keyed hash of it, whose timing says nothing about a stored digest, and a
        stored digest would not give its token away anyway); the candidate found is then
        confirmed by a constant-time comparison. One lookup, whatever the number of
        principals. Tokens already found are remembered (in memory only, at most
        ``KNOWN_TOKENS``), which spares the hash on a gateway's every call; an unknown
        token is never remembered."""
        found = self._known.get(token)
        if found is not None:
            return found
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found = self._by_digest.get(digest)
        if found is None or not hmac.compare_digest(found.token_digest or b"", digest):
            return None
        if len(self._known) >= KNOWN_TOKENS:
            self._known.clear()
        self._known[token] = found
        return found

    def by_certificate(self, common_names: Iterable[str], sans: Iterable[str]) -> list[Principal]:
        """The principals a client certificate with these names matches."""
        by_name = self._by_name
        out = [by_name[("CN", n)] for n in common_names if ("CN", n) in by_name]
        out += [by_name[("SAN", n)] for n in sans if ("SAN", n) in by_name]
        return list(dict.fromkeys(out)) if len(out) > 1 else out


# ---- loading ------------------------------------------------------------------------------


class _Problem(Exception):
    """A problem with one field of one principal table (worded without the file)."""


def _strings(raw: Any, what: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise _Problem(f"{what}: expected a list of strings")
    return raw


def _scope(raw: Any) -> Scope:
    ids: set[str] = set()
    prefixes: list[str] = []
    for entry in _strings(raw, "accounts"):
        if entry == "*":
            return Scope(everything=True)
        if not entry or entry == "*" * len(entry):
            raise _Problem(f"accounts: {entry!r} is not an account id or prefix")
        star = entry.find("*")
        if star == -1:
            ids.add(entry)
        elif star == len(entry) - 1:
            prefixes.append(entry[:-1])
        else:
            raise _Problem(f"accounts: {entry!r}: '*' may only end a prefix")
    return Scope(ids=frozenset(ids), prefixes=tuple(dict.fromkeys(prefixes)))


def _principal(table: Any) -> Principal:
    if not isinstance(table, Mapping):
        raise _Problem("expected a table")
    for key in table:
        if key not in _PRINCIPAL_KEYS:
            raise _Problem(f"{key}: unknown key (expected {', '.join(_PRINCIPAL_KEYS)})")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _Problem("name: missing or empty")
    digest = None
    if "token_sha256" in table:
        raw = table["token_sha256"]
        if not isinstance(raw, str) or len(raw) != 64 or not set(raw) <= _HEX:
            raise _Problem("token_sha256: expected a sha256 hex digest (64 hex digits)")
        digest = bytes.fromhex(raw)
    subject = None
    if "cert_subject" in table:
        raw = table["cert_subject"]
        kind, sep, value = raw.partition("=") if isinstance(raw, str) else ("", "", "")
        if not sep or kind.strip().upper() not in ("CN", "SAN") or not value.strip():
            raise _Problem("cert_subject: expected 'CN=<common name>' or 'SAN=<alternative name>'")
        subject = (kind.strip().upper(), value.strip())
    if digest is None and subject is None:
        raise _Problem("token_sha256 or cert_subject: a principal needs at least one")
    roles = _strings(table.get("roles"), "roles")
    if not roles:
        raise _Problem("roles: empty")
    for role in roles:
        if role not in ROLES:
            raise _Problem(f"roles: unknown role {role!r} (expected {', '.join(ROLES)})")
    return Principal(name, frozenset(roles), _scope(table.get("accounts", [])), digest, subject)


def _check_unique(principals: Sequence[Principal]) -> None:
    seen: dict[Any, str] = {}
    for k, p in enumerate(principals):
        for key, what in (
            (("name", p.name), "name"),
            (("token", p.token_digest), "token_sha256"),
            (("cert", p.cert_subject), "cert_subject"),
        ):
            if key[1] is None:
                continue
            if key in seen:
                raise AuthFileError(
                    f"principal[{k}] ({p.name}).{what}: the same as principal {seen[key]}'s"
                )
            seen[key] = p.name


def load_auth_file(path: str | Path, *, mutual_tls: bool) -> AuthConfig:
    """Read and check an auth file. ``mutual_tls``: the server requires client certificates
    (else a ``cert_subject`` could never match, which is refused as a configuration error)."""
    where = f"auth_file: {path}"
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AuthFileError(f"auth_file: cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AuthFileError(f"{where}: malformed TOML: {exc}") from None
    for key in data:
        if key != "principal":
            raise AuthFileError(f"{where}: {key}: unknown key (expected [[principal]] tables)")
    tables = data.get("principal")
    if not isinstance(tables, list) or not tables:
        raise AuthFileError(f"{where}: principal: no [[principal]] tables")
    principals = []
    for k, table in enumerate(tables):
        name = table.get("name") if isinstance(table, Mapping) else None
        label = f"principal[{k}]" + (f" ({name})" if isinstance(name, str) and name else "")
        try:
            p = _principal(table)
        except _Problem as exc:
            raise AuthFileError(f"{where}: {label}.{exc}") from None
        if p.cert_subject is not None and not mutual_tls:
            raise AuthFileError(
                f"{where}: {label}.cert_subject: needs mutual TLS (tls_client_ca_file)"
            )
        principals.append(p)
    try:
        _check_unique(principals)
    except AuthFileError as exc:
        raise AuthFileError(f"{where}: {exc}") from None
    return AuthConfig(str(path), tuple(principals))
