"""Answers assembled from several snapshots, for routes in consumers' shapes.

Each part is read like any snapshot (hot cache, a cold miss fetched within the read wait,
stale-if-error, single flight); the answer carries the freshness of its parts taken together:
`Age` of the oldest, `Cache-Control: max-age` of the one that expires first, `X-Snapshot-Stale`
when any is stale, `Last-Modified` of the newest, and an ETag over the body, so `If-None-Match`
answers 304 like every snapshot route.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from litestar import Request
from litestar.response.base import ASGIResponse

from snapshots.api.answers import ComposedAnswer, ComposedAnswers, answer_key
from snapshots.api.cache import CachedSnapshot
from snapshots.api.reader import SnapshotReader, header

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
        remember: ComposedAnswers | None = None,
    ) -> ASGIResponse:
        """`value` as JSON with the parts' freshness headers; 304 when the ETag is current. With
        `remember`, the answer is kept there for the fast path to repeat."""
        answer = ComposedAnswer.of(_encode(value), extra_headers, [e for e, _ in self._parts])
        if remember is not None:
            remember.remember(answer_key(request.scope), answer)
        status, raw, body, results = answer.respond(
            header(request.scope, b"if-none-match"),
            [how for _, how in self._parts],
            self._reader.stale_if_error_seconds,
        )
        for dataset, result in results:
            self._reader.metrics.read(dataset, result)
        headers = [(name.decode(), value.decode("latin-1")) for name, value in raw]
        if status == 304:
            return ASGIResponse(status_code=304, headers=headers)
        return ASGIResponse(
            body=body, status_code=200, headers=headers, media_type="application/json"
        )
