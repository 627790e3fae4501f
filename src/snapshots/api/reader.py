"""Serving a snapshot: the hot-path cache, cold misses, max_age, and HTTP caching semantics.

Every snapshot response carries `ETag` (the content hash), `Last-Modified` (fetched_at), `Age`
(since verified_at), `Cache-Control: max-age=<seconds of TTL left>, stale-if-error=<s>` and
`X-Snapshot-Stale`; `If-None-Match` with the current ETag answers 304 with no body
(RFC 9110 13.1.2, RFC 9111, RFC 5861).
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import msgspec
from litestar import Request
from litestar.response.base import ASGIResponse

from snapshots.api.answers import ComposedAnswers
from snapshots.api.cache import CachedSnapshot, SnapshotCache
from snapshots.api.metrics import Metrics
from snapshots.clock import utcnow
from snapshots.config import JobsConfig
from snapshots.coordination.changes import ChangeFeed
from snapshots.deadline import within
from snapshots.errors import KeyLimitReached, RefreshTooSoon, Unavailable, UpstreamNotFound
from snapshots.handles import RefreshService
from snapshots.logs import get_logger
from snapshots.read_times import ReadTracker
from snapshots.registry import Registry
from snapshots.store import Latest, Store
from snapshots.store.errors import STORE_UNANSWERED
from snapshots_client.http_caching import etag_matches, freshness_header_bytes
from snapshots_client.wire import Freshness

Body = Literal["envelope", "data"]
_encode = msgspec.json.Encoder().encode
log = get_logger(__name__)

STORE_WAIT_SECONDS = 2.0
"""How long a read waits for the database when memory holds an older snapshot to serve."""


class SnapshotReader:
    """Reads the latest snapshot of a key for the API, through the in-memory cache."""

    def __init__(
        self,
        config: JobsConfig,
        registry: Registry,
        store: Store,
        refresher: RefreshService,
        reads: ReadTracker,
        changes: ChangeFeed,
        cache: SnapshotCache,
        metrics: Metrics,
    ) -> None:
        self.registry = registry
        self.store = store
        self.refresher = refresher
        self.reads = reads
        self.cache = cache
        self.metrics = metrics
        self._read_wait = config.read_wait_seconds
        self.stale_if_error_seconds = config.api.stale_if_error_seconds
        self.answers = ComposedAnswers(self.cached)  # mirror answers, repeated by the fast path
        refresher.add_listener(cache.invalidate)
        # Other processes' refreshes arrive as NOTIFY; after a gap in those, trust nothing cached.
        changes.subscribe(lambda change: cache.invalidate(change.dataset, change.key))
        changes.on_gap(cache.clear)

    def cached(self, dataset: str, key: str) -> CachedSnapshot | None:
        """The hot path: the cached snapshot of a key, counted as a read, or None."""
        cached = self.cache.get(dataset, key)
        if cached is not None:
            self.reads.touch(dataset, key)
        return cached

    async def entry(
        self, dataset: str, key: str, max_age: float | None
    ) -> tuple[CachedSnapshot, str]:
        """The key's cached snapshot and how it was obtained (`hit` or `miss`).

        When the database does not answer within `STORE_WAIT_SECONDS` and memory still holds
        a (superseded) snapshot of the key, that is served: its age and staleness say how
        old it is.
        """
        registered = self.registry.dataset(dataset)
        cached = self.cache.get(dataset, key)
        if cached is not None and (max_age is None or _age(cached) <= max_age):
            self.reads.touch(dataset, key)
            return cached, "hit"
        registered.check_key(key)
        generation = self.cache.generation(dataset, key)
        fallback = self.cache.fallback(dataset, key) if max_age is None else None
        try:
            latest, fetched = await self._latest(dataset, key, max_age, fallback is not None)
        except STORE_UNANSWERED as exc:
            if fallback is None:
                raise
            log.warning(
                "read.served_from_memory",
                dataset=dataset,
                key=key,
                version=fallback.version,
                error_type=type(exc).__name__,
            )
            self.reads.touch(dataset, key)
            return fallback, "stale"
        cached = CachedSnapshot.of(latest, registered.ttl_seconds)
        if not fetched:
            self.cache.put(cached, generation)
        self.reads.touch(dataset, key)
        return cached, "miss" if fetched else "hit"

    async def _latest(
        self, dataset: str, key: str, max_age: float | None, bounded: bool
    ) -> tuple[Latest, bool]:
        """From the store; on a cold miss (or an old snapshot and `max_age`) fetched first.

        `bounded`: give the store `STORE_WAIT_SECONDS` (memory has something to serve)."""
        looked_at = time.monotonic()
        reading = self.store.latest(dataset, key)
        latest = await (within(reading, STORE_WAIT_SECONDS) if bounded else reading)
        if latest is None or latest.snapshot is None:
            return await self._cold_miss(dataset, key, latest is not None, looked_at), True
        if max_age is not None and _age_of(latest) > max_age:
            return await self._refreshed(latest), True
        return latest, False

    async def _cold_miss(self, dataset: str, key: str, registered: bool, since: float) -> Latest:
        """Fetch a key that had no snapshot at `since`, registering it; bounded by the read wait."""
        missing = self.refresher.known_missing(dataset, key)
        if missing is not None:
            raise UpstreamNotFound(f"{dataset} {key}: {missing} (remembered for the negative TTL)")
        settings = self.registry.dataset(dataset).settings
        if not registered and await self.store.demand_key_count(dataset) >= settings.max_keys:
            raise KeyLimitReached(
                f"{dataset} already has {settings.max_keys} keys registered by reads (max_keys); "
                "add this key to `keys` in jobs.toml or raise max_keys"
            )
        seen = await self.store.newest_run_id(dataset, key)
        handle = await self.refresher.start(dataset, key, "miss", since=since, seen_run_id=seen)
        result = await handle.result(self._read_wait)
        if result.not_found:
            raise UpstreamNotFound(f"{dataset} {key}: {result.error}")
        if result.interrupted:
            raise Unavailable(f"{dataset} {key}: {result.error}", retry_after=5)
        latest = await self.store.latest(dataset, key)
        if latest is None or latest.snapshot is None:
            raise Unavailable(
                f"no snapshot of {dataset} {key} yet; the last refresh failed: {result.error or result.note}",
                retry_after=30,
                last_error=result.error or result.note,
            )
        return latest

    async def _refreshed(self, latest: Latest) -> Latest:
        """A refresh of an older snapshot, waited for (bounded by the read wait)."""
        assert latest.snapshot is not None
        dataset, key = latest.snapshot.dataset, latest.snapshot.key
        try:
            started = await self.refresher.force(dataset, key, trigger="miss")
        except RefreshTooSoon:
            return latest  # refreshed moments ago; its result (or error) is what there is
        ttl = self.registry.dataset(dataset).ttl_seconds
        try:
            result = await started.result(self._read_wait)
        except Unavailable as exc:  # still refreshing: say how old the refused snapshot is
            raise Unavailable(
                exc.message, exc.retry_after, freshness=_freshness(latest, ttl)
            ) from None
        fresh = await self.store.latest(dataset, key)
        if result.outcome == "failed" or fresh is None or fresh.snapshot is None:
            error = result.error or result.note
            raise Unavailable(
                f"{dataset} {key} is {_age_of(latest):.0f}s old and could not be refreshed: {error}",
                retry_after=30,
                last_error=error,
                freshness=_freshness(latest, ttl),
            )
        return fresh

    def answer(
        self,
        entry: CachedSnapshot,
        how: str,
        condition: str | None,
        body: Body = "envelope",
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, str]:
        """(status, headers as the ASGI server sends them, body, read result) of a cached
        snapshot: the one definition both the Litestar handlers and the fast path answer with.
        304 when `condition` (the If-None-Match header) names the current ETag.

        Everything in the answer but the ETag comparison follows from three figures of the
        read's age (to the millisecond in the body, whole seconds in `Age`, the TTL left in
        `Cache-Control`), so the headers and body built for those figures are kept on the
        entry and given again to the reads that come to the same ones: a hot key is read many
        times a millisecond."""
        age = time.time() - entry.verified_timestamp
        if age < 0.0:
            age = 0.0
        figures = (round(age, 3), int(age), math.floor(entry.ttl_seconds - age))
        built = entry.answers.get(body)
        if built is None or built[0] != figures:
            built = (figures, *self._build(entry, age, figures, body))
            entry.answers[body] = built
        _, static, content = built
        headers = list(static)
        if extra_headers:
            headers += [
                (name.encode(), value.encode("latin-1")) for name, value in extra_headers.items()
            ]
        stale = figures[2] < 0  # age > ttl
        if condition is not None and etag_matches(condition, entry.etag):
            return 304, headers, b"", "not_modified"
        return 200, headers, content, "stale" if stale else how

    def _build(
        self, entry: CachedSnapshot, age: float, figures: tuple[float, int, int], body: Body
    ) -> tuple[tuple[tuple[bytes, bytes], ...], bytes]:
        """The headers (without the per-request ones) and body of a read at `age`."""
        headers = (
            *entry.static_headers,
            *freshness_header_bytes(age, entry.ttl_seconds, self.stale_if_error_seconds),
        )
        if body == "data":
            return headers, entry.payload
        content = b"".join(
            [
                entry.envelope_head,
                str(figures[0]).encode(),
                entry.envelope_middle,
                b"true" if figures[2] < 0 else b"false",
                entry.envelope_tail,
            ]
        )
        return headers, content

    def respond(
        self,
        request: Request[Any, Any, Any],
        entry: CachedSnapshot,
        how: str,
        body: Body = "envelope",
        extra_headers: dict[str, str] | None = None,
    ) -> ASGIResponse:
        """The snapshot with its caching headers, counted as a read; 304 when the client's ETag
        is current. A bare ASGIResponse: Litestar's Response would resolve media type, encoders
        and headers again on every read."""
        condition = header(request.scope, b"if-none-match")
        status, raw, content, result = self.answer(entry, how, condition, body, extra_headers)
        self.metrics.read(entry.dataset, result)
        headers = [(name.decode(), value.decode("latin-1")) for name, value in raw]
        if status == 304:
            return ASGIResponse(status_code=304, headers=headers)
        return ASGIResponse(
            body=content, status_code=200, headers=headers, media_type="application/json"
        )


def json_response(
    value: Any, status_code: int, headers: dict[str, str] | None = None
) -> ASGIResponse:
    """A JSON answer as a bare ASGIResponse (for routes that also return the hot-path one)."""
    return ASGIResponse(
        body=_encode(value), status_code=status_code, headers=headers, media_type="application/json"
    )


def header(scope: Any, name: bytes) -> str | None:
    """One request header straight from the ASGI scope (cheaper than building Headers)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _age(entry: CachedSnapshot) -> float:
    return (utcnow() - entry.verified_at).total_seconds()


def _freshness(latest: Latest, ttl_seconds: float) -> Freshness:
    """The Freshness body of a stored snapshot (for errors that refuse it)."""
    assert latest.snapshot is not None
    age = _age_of(latest)
    return Freshness(
        fetched_at=latest.snapshot.fetched_at,
        verified_at=latest.snapshot.verified_at,
        age_seconds=round(age, 3),
        ttl_seconds=float(ttl_seconds),
        stale=age > ttl_seconds,
        next_refresh_at=latest.state.next_refresh_at,
        last_error=latest.state.last_error,
    )


def _age_of(latest: Latest) -> float:
    assert latest.snapshot is not None
    return (utcnow() - latest.snapshot.verified_at).total_seconds()
