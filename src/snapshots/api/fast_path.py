"""The fast path: a hit answered in front of Litestar (`GatewayApp` asks it first).

- `GET /api/v1/snapshots/{dataset}/{key}`, `/api/v1/latest/{dataset}/{key}` and each
  instance's bare routes (the seed's shape: `/api/v1/pagerduty/schedules/{id}/users`), without
  a query string, from a caller whose token is one of the service's own, for a key whose latest
  snapshot is in the hot cache (`SnapshotReader.answer` is the one definition of the answer);
- `GET /mirror/<instance>/...` (query included), with a gateway token in the mirror's library
  scheme, whose answer the mirror handler composed before from snapshots that are all still
  current (`ComposedAnswer.respond` is the one definition of that answer).

Either is answered from pre-encoded bytes with the headers, read counts, request id and
access-log line the Litestar handler gives. Everything else (misses, query parameters on
snapshot routes, JWTs, unknown tokens, oversized requests, HEAD, other routes) goes to Litestar
unchanged, whose handlers stay in the OpenAPI document; `tests/test_fast_path.py` compares the
two paths' answers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar.types import Receive, Scope, Send

from snapshots.api.access_log import AccessLog
from snapshots.api.answers import answer_key
from snapshots.api.auth import ANONYMOUS, TokenStore
from snapshots.api.limits import MAX_HEADER_BYTES, MAX_PATH_BYTES
from snapshots.api.middleware import request_id
from snapshots.api.reader import Body, SnapshotReader
from snapshots.providers.kind import BareRoute, Mirror
from snapshots.registry import Registry

_ROUTES = ("/api/v1/snapshots/", "/api/v1/latest/")
_MIRROR = "/mirror/"
_JSON = (b"content-type", b"application/json")
_PARAMETER = re.compile(r"\{(\w+):str\}")
TARGETS = 4096


@dataclass(frozen=True)
class BareTarget:
    """A bare route of one instance: the path as a regex, its dataset, how its key is built."""

    pattern: re.Pattern[str]
    dataset: str
    route: BareRoute


def mirrors(registry: Registry) -> dict[str, Mirror]:
    """The mirror of each instance whose kind has one (`/mirror/<instance>/...`)."""
    return {
        name: provider.kind.mirror
        for name, provider in registry.providers.items()
        if provider.kind.mirror is not None
    }


def bare_targets(registry: Registry) -> list[BareTarget]:
    """The bare routes the app serves (configured datasets only), as the fast path matches them:
    each `{name:str}` is one path segment, as Litestar reads it."""
    targets = []
    for instance, provider in sorted(registry.providers.items()):
        for route in provider.kind.routes:
            dataset = f"{instance}.{route.dataset}"
            if dataset not in registry.datasets:
                continue
            pieces = _PARAMETER.split(f"/api/v1/{instance}{route.path}")
            regex = "".join(
                f"(?P<{piece}>[^/]+)" if index % 2 else re.escape(piece)
                for index, piece in enumerate(pieces)
            )
            targets.append(BareTarget(re.compile(regex), dataset, route))
    return targets


class FastPath:
    """Answers hits of snapshot, bare and mirror routes; `handled` says whether it did."""

    def __init__(
        self,
        reader: SnapshotReader,
        tokens: TokenStore,
        access_log: AccessLog | None,
        bare: list[BareTarget] | None = None,
        mirrors: dict[str, Mirror] | None = None,
    ) -> None:
        self._reader = reader
        self._bare = bare or []
        self._mirrors = mirrors or {}  # instance -> its kind's mirror
        self._tokens = tokens
        self._access_log = access_log
        self._principals: dict[bytes, str] = {}  # authorization header -> principal name
        self._targets: dict[str, tuple[str, str, Body] | None] = {}  # path -> its target

    def _target(self, path: str) -> tuple[str, str, Body] | None:
        """(dataset, key, body) of a snapshot route or a bare route, or None; remembered per
        path (the routes do not change while the process runs; at most `TARGETS` paths)."""
        try:
            return self._targets[path]
        except KeyError:
            pass
        if len(self._targets) >= TARGETS:
            self._targets.clear()
        target = self._targets[path] = self._parse(path)
        return target

    def _parse(self, path: str) -> tuple[str, str, Body] | None:
        if path.startswith(_ROUTES):
            latest = path.startswith("/api/v1/latest/")
            rest = path[len("/api/v1/latest/") :] if latest else path[len("/api/v1/snapshots/") :]
            dataset, _, key = rest.partition("/")
            key = key.lstrip("/")
            if not key or (not latest and key.endswith("/history")):
                return None
            return dataset, key, "envelope"
        for bare in self._bare:
            match = bare.pattern.fullmatch(path)
            if match is not None:
                return bare.dataset, bare.route.key_from(match.groupdict()), "data"
        return None

    def _caller(self, remembered_as: bytes, token_of: Callable[[], str | None]) -> str | None:
        """The caller's name when the token `token_of` reads from the request is one of the
        service's own (or the API is open), else None: the request goes to Litestar, which
        answers 401 or verifies a JWT. Names are remembered by `remembered_as` (the header, and
        for a mirror its instance): tokens do not change while the process runs."""
        if self._tokens.open:
            return ANONYMOUS.name
        known = self._principals.get(remembered_as)
        if known is not None:
            return known
        token = token_of()
        if not token or "." in token:  # JWTs: verified (and timed) by Litestar
            return None
        principal = self._tokens.authenticate(token)
        if principal is None:
            return None
        if len(self._principals) < 1024:
            self._principals[remembered_as] = principal.name
        return principal.name

    def _principal(self, authorization: bytes | None) -> str | None:
        """The caller of a snapshot or bare route: a bearer token."""

        def bearer() -> str | None:
            if authorization is None:
                return None
            scheme, _, token = authorization.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None

        return self._caller(authorization or b"", bearer)

    def _mirror_principal(self, instance: str, authorization: bytes | None) -> str | None:
        """The caller of a mirror route: a gateway token in the mirror's library scheme."""
        mirror = self._mirrors.get(instance)
        if mirror is None:
            return None
        if authorization is None:
            return self._caller(b"", lambda: None)
        return self._caller(
            instance.encode() + b"\n" + authorization,
            lambda: mirror.token(authorization.decode("latin-1")),
        )

    def _mirror_hit(
        self, scope: Any, path: str, authorization: bytes | None, condition: str | None
    ) -> tuple[str, tuple[int, list[tuple[bytes, bytes]], bytes]] | None:
        """(principal, answer) of a mirror request whose answer is remembered and current."""
        instance = path[len(_MIRROR) :].partition("/")[0]
        principal = self._mirror_principal(instance, authorization)
        if principal is None:
            return None
        answer = self._reader.answers.current(answer_key(scope))
        if answer is None:
            return None
        hows = ["hit"] * len(answer.parts)
        status, headers, body, results = answer.respond(
            condition, hows, self._reader.stale_if_error_seconds
        )
        for dataset, result in results:
            self._reader.metrics.read(dataset, result)
        return principal, (status, headers, body)

    def _snapshot_hit(
        self, scope: Any, path: str, authorization: bytes | None, condition: str | None
    ) -> tuple[str, tuple[int, list[tuple[bytes, bytes]], bytes]] | None:
        """(principal, answer) of a snapshot or bare route whose key is in the hot cache."""
        if scope["query_string"] or not path.startswith("/api/v1/"):
            return None
        target = self._target(path)
        if target is None:
            return None
        dataset, key, body_kind = target
        principal = self._principal(authorization)
        if principal is None:
            return None
        entry = self._reader.cached(dataset, key)
        if entry is None:
            return None
        status, headers, body, result = self._reader.answer(entry, "hit", condition, body_kind)
        self._reader.metrics.read(dataset, result)
        return principal, (status, headers, body)

    async def handled(self, asgi_scope: Scope, receive: Receive, asgi_send: Send) -> bool:
        started = time.perf_counter()
        scope: Any = asgi_scope  # plain dict access: the typed unions cost casts, not safety
        send: Any = asgi_send
        if scope["type"] != "http" or scope["method"] != "GET":
            return False
        path: str = scope["path"]
        if len(path) > MAX_PATH_BYTES:
            return False
        authorization = condition = incoming_id = None
        size = 0
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            # A repeated header counts by its first value, as Litestar's `headers.get` and
            # `reader.header` read it (the last would let a second token answer for the first).
            if name == b"authorization":
                if authorization is None:
                    authorization = value
            elif name == b"if-none-match":
                if condition is None:
                    condition = value.decode("latin-1")
            elif name == b"x-request-id":
                incoming_id = value
            elif name in (b"content-length", b"transfer-encoding"):
                return False  # a body on a GET: Litestar's limits decide
        if size > MAX_HEADER_BYTES:
            return False
        if path.startswith(_MIRROR):
            hit = self._mirror_hit(scope, path, authorization, condition)
        else:
            hit = self._snapshot_hit(scope, path, authorization, condition)
        if hit is None:
            return False
        principal, (status, headers, body) = hit
        self._reader.metrics.fast_path_answered()
        answer_id = request_id(incoming_id)
        scope.setdefault("state", {})["principal"] = principal
        if status == 200:
            headers += [_JSON, (b"content-length", b"%d" % len(body))]
        headers.append((b"x-request-id", answer_id.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        if self._access_log is not None:
            self._access_log.record(scope, status, started, answer_id)
        return True
