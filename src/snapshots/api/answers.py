"""Composed answers (built from several snapshots: the mirror, qontract-api's routes) that can be
repeated while their parts stay current: the one definition of their headers, and the memory
the fast path answers hits from."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from snapshots.api.cache import CachedSnapshot
from snapshots_client.http_caching import (
    etag_matches,
    freshness_header_bytes,
    http_date,
    quoted_etag,
)

AnswerKey = tuple[bytes, ...]
"""What a composed answer depends on besides its parts: scheme, Host, root path, path and query
(the mirror's links are built from the URL the caller used)."""

MAX_REMEMBERED = 4096
MAX_REMEMBERED_BYTES = 64 * 1024 * 1024


def answer_key(scope: Any) -> AnswerKey:
    """The AnswerKey of a request (an ASGI HTTP scope)."""
    host = b""
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
            break  # the first, as Litestar's base URL (the mirror's links) takes it
    else:  # no Host (HTTP/1.0): Litestar's base URL is the address the request reached
        server = scope.get("server")
        if server:
            host = f"{server[0]}:{server[1]}".encode()
    return (
        scope["scheme"].encode(),
        host,
        scope.get("root_path", "").encode(),
        scope["path"].encode(),
        scope["query_string"],
    )


@dataclass(frozen=True)
class ComposedAnswer:
    """A 200 answer built from snapshots, with what is needed to repeat it while each of its
    parts is still the current snapshot of its key."""

    body: bytes
    etag: str
    version_headers: tuple[tuple[bytes, bytes], ...]  # ETag and Last-Modified, as sent
    extra_headers: tuple[tuple[bytes, bytes], ...]  # the caller's (e.g. Link), as sent
    parts: tuple[CachedSnapshot, ...]

    @classmethod
    def of(
        cls, body: bytes, extra_headers: Mapping[str, str] | None, parts: list[CachedSnapshot]
    ) -> ComposedAnswer:
        # The ETag covers the extra headers too: a list page whose items stay while its `Link`
        # moves (the list grew past it) must not be answered 304 with the old Link kept.
        digest = hashlib.sha256(body)
        for name, value in sorted((extra_headers or {}).items()):
            digest.update(f"\n{name}: {value}".encode())
        etag = quoted_etag(digest.hexdigest())
        version = [(b"etag", etag.encode("latin-1"))]
        newest = max((entry.fetched_at for entry in parts), default=None)
        if newest is not None:
            version.append((b"last-modified", http_date(newest).encode("latin-1")))
        return cls(
            body=body,
            etag=etag,
            version_headers=tuple(version),
            extra_headers=tuple(
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in (extra_headers or {}).items()
            ),
            parts=tuple(parts),
        )

    def respond(
        self, condition: str | None, hows: Iterable[str], stale_if_error_seconds: int
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, list[tuple[str, str]]]:
        """(status, headers as sent, body, (dataset, read result) of each part) of this answer
        now: the one definition the Litestar handlers and the fast path answer with. 304 when
        `condition` (If-None-Match) names the ETag."""
        now = time.time()
        ages = [max(0.0, now - entry.verified_timestamp) for entry in self.parts]
        oldest = max(ages, default=0.0)
        # Seconds until the first part expires (negative once one is stale).
        left = min(
            (entry.ttl_seconds - age for entry, age in zip(self.parts, ages, strict=True)),
            default=0.0,
        )
        headers = [
            *self.version_headers,
            *freshness_header_bytes(oldest, oldest + left, stale_if_error_seconds),
            *self.extra_headers,
        ]
        not_modified = condition is not None and etag_matches(condition, self.etag)
        results = [
            (
                entry.dataset,
                "not_modified" if not_modified else "stale" if age > entry.ttl_seconds else how,
            )
            for entry, age, how in zip(self.parts, ages, hows, strict=True)
        ]
        if not_modified:
            return 304, headers, b"", results
        return 200, headers, self.body, results


class ComposedAnswers:
    """Composed answers by AnswerKey, for the fast path to repeat while their parts are current
    (a refresh of any part supersedes its cache entry, and with it the answer). Bounded by
    count and bytes; least recently used first out."""

    def __init__(
        self,
        lookup: Callable[[str, str], CachedSnapshot | None],
        max_entries: int = MAX_REMEMBERED,
        max_bytes: int = MAX_REMEMBERED_BYTES,
    ) -> None:
        self._lookup = lookup  # the current snapshot of a key, counted as a read
        self._answers: OrderedDict[AnswerKey, ComposedAnswer] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0

    def remember(self, key: AnswerKey, answer: ComposedAnswer) -> None:
        if len(answer.body) > self._max_bytes // 16:
            return  # a huge page would push out many answers for one
        self._forget(key)
        self._answers[key] = answer
        self._bytes += len(answer.body)
        while len(self._answers) > self._max_entries or self._bytes > self._max_bytes:
            self._forget(next(iter(self._answers)))

    def _forget(self, key: AnswerKey) -> None:
        answer = self._answers.pop(key, None)
        if answer is not None:
            self._bytes -= len(answer.body)

    def current(self, key: AnswerKey) -> ComposedAnswer | None:
        """The answer remembered for `key` if every part is its key's current snapshot (each
        part looked up is counted as read, as the handler's reads are)."""
        answer = self._answers.get(key)
        if answer is None:
            return None
        for part in answer.parts:
            if self._lookup(part.dataset, part.key) is not part:
                self._forget(key)
                return None
        self._answers.move_to_end(key)
        return answer
