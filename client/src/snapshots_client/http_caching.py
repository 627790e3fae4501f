"""The HTTP semantics of snapshot answers, shared by the gateway and the testing kit's fake.

Both encode their answers with these helpers (and the structs in `wire`), so the fake an
integration tests against cannot drift from the service it runs against: the ETag is the
content hash, quoted (RFC 9110 8.8.3); `If-None-Match` uses the weak comparison (13.1.2);
`Cache-Control` offers the TTL left as `max-age` and `stale-if-error` (RFC 9111, RFC 5861);
a history page links the next one with every parameter of the query; and each error code
has one status.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote, urlencode

DEFAULT_STALE_IF_ERROR_SECONDS = 86400
"""What `Cache-Control: stale-if-error` offers caches when the gateway is not told otherwise."""

ERROR_STATUS: Mapping[str, int] = {
    "bad_request": 400,
    "malformed_key": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "unknown_dataset": 404,
    "unknown_run": 404,
    "method_not_allowed": 405,
    "dataset_disabled": 409,
    "max_keys_reached": 409,
    "too_large": 413,
    "path_too_long": 414,
    "headers_too_large": 431,
    "refresh_too_soon": 429,
    "internal": 500,
    "config_invalid": 500,
    "upstream_error": 502,
    "unavailable": 503,
    "budget_exhausted": 503,
    "database_unavailable": 503,
    "not_ready": 503,
}
"""The error table: every `error.code` the gateway answers, with its HTTP status."""


def quoted_etag(content_hash: str) -> str:
    """The strong entity-tag of a snapshot version: its content hash, quoted."""
    return f'"{content_hash}"'


def etag_matches(header: str, etag: str) -> bool:
    """Whether an `If-None-Match` header names `etag` (weak comparison: `W/` is ignored)."""
    if header == etag or header.strip() == "*":  # the client's own ETag back: the usual case
        return True
    bare = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == bare for candidate in header.split(","))


def http_date(moment: datetime) -> str:
    """`Last-Modified` of a snapshot: when it was fetched, as an IMF-fixdate."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def version_headers(content_hash: str, fetched_at: datetime, version: int) -> list[tuple[str, str]]:
    """The headers that stay the same for every read of one version (computed once per version)."""
    return [
        ("etag", quoted_etag(content_hash)),
        ("last-modified", http_date(fetched_at)),
        ("x-snapshot-version", str(version)),
    ]


def freshness_header_bytes(
    age_seconds: float, ttl_seconds: float, stale_if_error_seconds: int
) -> list[tuple[bytes, bytes]]:
    """`Age`, `Cache-Control` and `X-Snapshot-Stale` of a read `age_seconds` after
    verification, as an ASGI server sends them (the service's hot path)."""
    return [
        (b"age", b"%d" % int(age_seconds)),
        (
            b"cache-control",
            b"max-age=%d, stale-if-error=%d"
            % (max(0, math.floor(ttl_seconds - age_seconds)), stale_if_error_seconds),
        ),
        (b"x-snapshot-stale", b"true" if age_seconds > ttl_seconds else b"false"),
    ]


def freshness_headers(
    age_seconds: float, ttl_seconds: float, stale_if_error_seconds: int
) -> list[tuple[str, str]]:
    """`freshness_header_bytes` as text."""
    return [
        (name.decode(), value.decode())
        for name, value in freshness_header_bytes(age_seconds, ttl_seconds, stale_if_error_seconds)
    ]


def history_link(
    dataset: str,
    key: str,
    *,
    before_version: int,
    limit: int,
    include_data: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
) -> str:
    """The `next` link of a history page: the same query, continued below `before_version`.

    Values are percent-encoded, so a time zone's `+` survives the round trip."""
    params: list[tuple[str, str]] = [("before_version", str(before_version)), ("limit", str(limit))]
    if include_data:
        params.append(("include", "data"))
    for name, moment in (("since", since), ("until", until)):
        if moment is not None:
            params.append((name, moment.isoformat()))
    path = f"/api/v1/history/{quote(dataset, safe='')}/{quote(key, safe='/')}"
    return f"{path}?{urlencode(params)}"
