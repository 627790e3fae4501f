"""The hot path: the latest snapshot of each key, pre-encoded, so a read is a lookup plus headers.

An entry stops being served as current when a refresh of its key is stored (every outcome can
change freshness or the error shown), so a read never returns what Postgres no longer says
while Postgres answers. The superseded entry is kept until it is replaced or evicted: when the
database does not answer, it is what can still be served (stale-if-error for our own store).
Bounded in bytes, least recently used first out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from snapshots.store import Latest
from snapshots_client.http_caching import quoted_etag, version_headers

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class CachedSnapshot:
    """One key's latest snapshot and state, with the JSON that does not change between reads."""

    dataset: str
    key: str
    version: int
    etag: str  # the content hash, quoted (RFC 9110 entity-tag)
    fetched_at: datetime
    verified_at: datetime
    ttl_seconds: float
    next_refresh_at: datetime | None
    last_error: str | None
    payload: bytes  # the data, encoded once
    envelope_head: bytes  # {"dataset":..,"key":..,"data":<payload>,"freshness":{..."age_seconds":
    envelope_middle: bytes  # ,"ttl_seconds":..,"stale":
    envelope_tail: bytes  # ,"next_refresh_at":..,"last_error":..},"version":N}
    static_headers: tuple[tuple[bytes, bytes], ...]  # ETag, Last-Modified, X-Snapshot-Version
    verified_timestamp: float  # verified_at as POSIX time: cheaper than datetimes on every read
    answers: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)
    """The last answer built for each body kind, with the age it was built for: the many reads
    of a hot key within one millisecond get the same bytes (see `SnapshotReader.answer`)."""

    @classmethod
    def of(cls, latest: Latest, ttl_seconds: float) -> CachedSnapshot:
        snapshot = latest.snapshot
        assert snapshot is not None
        payload = _encode(snapshot.payload)
        # The envelope in the field order of Snapshot and Freshness; only age_seconds
        # and stale change between reads, so everything around them is encoded once.
        head = b"".join(
            [
                b'{"dataset":',
                _encode(snapshot.dataset),
                b',"key":',
                _encode(snapshot.key),
                b',"data":',
                payload,
                b',"freshness":{"fetched_at":',
                _encode(snapshot.fetched_at),
                b',"verified_at":',
                _encode(snapshot.verified_at),
                b',"age_seconds":',
            ]
        )
        static_headers = version_headers(
            snapshot.content_hash, snapshot.fetched_at, snapshot.version
        )
        middle = b',"ttl_seconds":' + _encode(float(ttl_seconds)) + b',"stale":'
        tail = b"".join(
            [
                b',"next_refresh_at":',
                _encode(latest.state.next_refresh_at),
                b',"last_error":',
                _encode(latest.state.last_error),
                b'},"version":',
                str(snapshot.version).encode(),
                b"}",
            ]
        )
        return cls(
            dataset=snapshot.dataset,
            key=snapshot.key,
            version=snapshot.version,
            etag=quoted_etag(snapshot.content_hash),
            fetched_at=snapshot.fetched_at,
            verified_at=snapshot.verified_at,
            verified_timestamp=snapshot.verified_at.timestamp(),
            ttl_seconds=ttl_seconds,
            next_refresh_at=latest.state.next_refresh_at,
            last_error=latest.state.last_error,
            payload=payload,
            envelope_head=head,
            envelope_middle=middle,
            envelope_tail=tail,
            static_headers=tuple((n.encode(), v.encode()) for n, v in static_headers),
        )

    @property
    def size(self) -> int:
        """Bytes held for the entry, with the one built envelope `answers` may keep beside it."""
        return 2 * len(self.envelope_head) + len(self.payload) + 1024


class SnapshotCache:
    """LRU of CachedSnapshot by (dataset, key), with a generation per key against stale fills.

    Superseded entries (a refresh was stored since) stay as fallbacks, not served by `get`.
    """

    def __init__(self, max_bytes: int) -> None:
        self._entries: OrderedDict[tuple[str, str], CachedSnapshot] = OrderedDict()
        self._superseded: set[tuple[str, str]] = set()
        self._generations: dict[tuple[str, str], int] = {}
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, dataset: str, key: str) -> CachedSnapshot | None:
        """The key's current entry (None if absent or superseded)."""
        name = (dataset, key)
        with self._lock:
            entry = self._entries.get(name)
            if entry is None or name in self._superseded:
                return None
            self._entries.move_to_end(name)
            return entry

    def fallback(self, dataset: str, key: str) -> CachedSnapshot | None:
        """The key's last entry, current or superseded: what to serve when the store is down."""
        with self._lock:
            return self._entries.get((dataset, key))

    def generation(self, dataset: str, key: str) -> int:
        """Read before loading from the store; `put` refuses the entry if it changed since."""
        with self._lock:
            return self._generations.get((dataset, key), 0)

    def put(self, entry: CachedSnapshot, generation: int) -> None:
        name = (entry.dataset, entry.key)
        with self._lock:
            if self._generations.get(name, 0) != generation:
                return  # a refresh landed while this entry was read: it may be older
            old = self._entries.pop(name, None)
            self._bytes += entry.size - (old.size if old else 0)
            self._entries[name] = entry
            self._superseded.discard(name)
            while self._bytes > self._max_bytes and len(self._entries) > 1:
                evicted_name, evicted = self._entries.popitem(last=False)
                self._superseded.discard(evicted_name)
                self._bytes -= evicted.size

    def invalidate(self, dataset: str, key: str, *_: Any) -> None:
        """Stop serving the key's entry as current (a refresh of it was stored)."""
        name = (dataset, key)
        with self._lock:
            self._generations[name] = self._generations.get(name, 0) + 1
            if name in self._entries:
                self._superseded.add(name)

    def clear(self) -> None:
        """Serve no entry as current (change notifications may have been missed)."""
        with self._lock:
            for name in self._entries:
                self._generations[name] = self._generations.get(name, 0) + 1
            self._superseded.update(self._entries)

    def __len__(self) -> int:
        """Entries served as current."""
        with self._lock:
            return len(self._entries) - len(self._superseded)
