"""Answers assembled from several snapshots, for routes in consumers' shapes.

Each part is read like any snapshot (hot cache, a cold miss fetched within the read wait,
stale-if-error, single flight); the answer carries the freshness of its parts taken together:
`Age` of the oldest, `Cache-Control: max-age` of the one that expires first, `X-Snapshot-Stale`
when any is stale, `Last-Modified` of the newest, and an ETag over the body, so `If-None-Match`
answers 304 like every snapshot route.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from litestar import Request
from litestar.response.base import ASGIResponse

from snapshots.api.cache import CachedSnapshot
from snapshots.api.reader import SnapshotReader, header
from snapshots_client.http_caching import etag_matches, freshness_headers, http_date, quoted_etag

_encode = msgspec.json.Encoder().encode


class ComposedRead:
    """The snapshots one answer is built from, read through the reader and remembered."""

    def __init__(self, reader: SnapshotReader) -> None:
        self._reader = reader
        self._parts: list[tuple[CachedSnapshot, str]] = []

    async def data(self, dataset: str, key: str) -> Any:
        """The latest data of (dataset, key), read as a snapshot route would read it."""
        entry, how = await self._reader.entry(dataset, key, None)
        self._parts.append((entry, how))
        return msgspec.json.decode(entry.payload)

    async def each(self, dataset: str, keys: Iterable[str]) -> list[Any]:
        """The data of several keys of one dataset, read concurrently, in the keys' order."""
        return list(await asyncio.gather(*(self.data(dataset, key) for key in keys)))

    def respond(
        self,
        request: Request[Any, Any, Any],
        value: Any,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ASGIResponse:
        """`value` as JSON with the parts' freshness headers; 304 when the ETag is current."""
        body = _encode(value)
        now = time.time()
        ages = [max(0.0, now - entry.verified_timestamp) for entry, _ in self._parts]
        oldest = max(ages, default=0.0)
        # Seconds until the first part expires (negative once one is stale).
        left = min(
            (entry.ttl_seconds - age for (entry, _), age in zip(self._parts, ages, strict=True)),
            default=0.0,
        )
        # The ETag covers the extra headers too: a list page whose items stay while its `Link`
        # moves (the list grew past it) must not be answered 304 with the old Link kept.
        digest = hashlib.sha256(body)
        for name, value in sorted((extra_headers or {}).items()):
            digest.update(f"\n{name}: {value}".encode())
        etag = quoted_etag(digest.hexdigest())
        headers = [("etag", etag)]
        if self._parts:
            newest = max(entry.fetched_at for entry, _ in self._parts)
            headers.append(("last-modified", http_date(newest)))
        headers += freshness_headers(oldest, oldest + left, self._reader.stale_if_error_seconds)
        headers += (extra_headers or {}).items()
        condition = header(request.scope, b"if-none-match")
        not_modified = condition is not None and etag_matches(condition, etag)
        for (entry, how), age in zip(self._parts, ages, strict=True):
            stale = age > entry.ttl_seconds
            result = "not_modified" if not_modified else "stale" if stale else how
            self._reader.metrics.read(entry.dataset, result)
        if not_modified:
            return ASGIResponse(status_code=304, headers=headers)
        return ASGIResponse(
            body=body, status_code=200, headers=headers, media_type="application/json"
        )
