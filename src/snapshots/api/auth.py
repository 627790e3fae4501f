"""Bearer tokens with roles: `reader` may GET, `operator` may also refresh.

Tokens are stored only as SHA-256 hashes, one `name role sha256` per line of the tokens file;
`snapshots token create` prints a new token once and appends its hash. The token's name (never
the token) is what logs show.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from snapshots.api.jwt_auth import JwtVerifier
from snapshots.config import JobsConfig
from snapshots.errors import ConfigError, Forbidden, Unauthorized

Role = Literal["reader", "operator"]
ROLES: tuple[Role, ...] = ("reader", "operator")
_RANK = {"reader": 1, "operator": 2}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")
TOKEN_PREFIX = "snp_"  # noqa: S105 - a prefix that makes leaked tokens easy to spot, not a secret


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name and role (or the open, unauthenticated local operator)."""

    name: str
    role: Role

    def may(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]


ANONYMOUS = Principal("anonymous", "operator")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class _Entry:
    name: str
    role: Role
    digest: str


class TokenStore:
    """The API tokens this process accepts, by hash, and JWTs when `[api.jwt]` is set."""

    def __init__(self, entries: list[_Entry], jwt: JwtVerifier | None = None) -> None:
        self._entries = entries
        self._jwt = jwt

    @property
    def open(self) -> bool:
        """No tokens configured: every request is the local operator (loopback binds only)."""
        return not self._entries and self._jwt is None

    @classmethod
    def of(cls, config: JobsConfig) -> TokenStore:
        """The tokens file and the JWT settings of `config`."""
        verifier = None
        if config.api.jwt is not None and config.jwt_secret is not None:
            verifier = JwtVerifier(
                config.jwt_secret, config.api.jwt.role, frozenset(config.api.jwt.revoked_subjects)
            )
        return cls(cls.load(config.api.tokens_path)._entries, verifier)

    @classmethod
    def load(cls, path: Path | None) -> TokenStore:
        if path is None:
            return cls([])
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            return cls([])
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the tokens file: {exc.strerror}") from None
        entries = []
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split()
            if (
                len(parts) != 3
                or not _NAME.fullmatch(parts[0])
                or parts[1] not in ROLES
                or not _HASH.fullmatch(parts[2])
            ):
                raise ConfigError(
                    f"{path}:{number}: expected 'name role sha256' with role reader or operator "
                    "(create tokens with `snapshots token create NAME --role ROLE`)"
                )
            entries.append(_Entry(parts[0], parts[1], parts[2]))
        return cls(entries)

    def authenticate(self, token: str) -> Principal | None:
        """The token's principal, comparing against every entry in constant time; a JWT is
        verified instead when `[api.jwt]` is set (401 saying why when it fails)."""
        if (
            self._jwt is not None
            and not token.startswith(TOKEN_PREFIX)
            and self._jwt.looks_like_jwt(token)
        ):
            subject = self._jwt.subject(token)
            role: Role = "operator" if self._jwt.role == "operator" else "reader"
            return Principal(self._jwt.principal_name(subject), role)
        digest = _digest(token)
        found = None
        for entry in self._entries:
            if hmac.compare_digest(digest, entry.digest):
                found = Principal(entry.name, entry.role)
        return found


def create_token(path: Path, name: str, role: Role) -> str:
    """Append a new token's hash to `path` and return the token (shown once, stored nowhere)."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"token name {name!r}: use letters, digits and . _ - (up to 64)")
    existing = TokenStore.load(path)
    if any(entry.name == name for entry in existing._entries):
        raise ConfigError(f"{path}: a token named {name!r} exists; pick another name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(f"{name} {role} {_digest(token)}\n")
    path.chmod(0o600)
    return token


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Authenticate the request's bearer token (401 when missing or unknown)."""
    tokens: TokenStore = connection.app.state.tokens
    if tokens.open:
        return ANONYMOUS
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "send 'Authorization: Bearer <token>' (create one with `snapshots token create`)"
        )
    principal = tokens.authenticate(token.strip())
    if principal is None:
        raise Unauthorized("the bearer token is not valid; ask an operator for a token")
    return principal


async def require_role(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: the route's `opt["role"]` (reader by default; None for public routes).

    Async on purpose: Litestar runs a synchronous guard on a worker thread, a costly hop on
    every read of the hot path.
    """
    role: Role | None = handler.opt.get("role", "reader")
    if role is None or connection.scope["path"].startswith("/schema"):
        return  # public: health, metrics, and the OpenAPI document
    principal = principal_of(connection)
    # Straight into the scope (no State object per request); the access log reads it there.
    connection.scope.setdefault("state", {})["principal"] = principal.name
    if not principal.may(role):
        raise Forbidden(f"token {principal.name!r} has role {principal.role}; this needs {role}")
