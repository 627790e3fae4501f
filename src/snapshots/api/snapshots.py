"""Snapshot routes: the latest snapshot, its history, and forcing a refresh of one key.

Keys may contain `/` (`acme/repo-01`), so the key is the rest of the path. `.../history`
and `.../refresh` are suffixes; when the whole rest is itself a valid key, it is the key.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, Parameter
from litestar.types import ASGIApp

from snapshots.api.common import reader_of, runtime_of
from snapshots.api.schemas import ERROR_RESPONSES
from snapshots.api.serving import json_response
from snapshots.errors import BadParameter, MalformedKey, Unavailable, UpstreamError
from snapshots.refresher import wait_bounded
from snapshots.registry import RegisteredDataset
from snapshots.runtime import Runtime
from snapshots.wire import History, RefreshStarted, Snapshot, Version

MaxAge = Annotated[
    float | None,
    Parameter(
        ge=0,
        description="serve only a snapshot verified within this many seconds; else refresh and wait",
    ),
]
Wait = Annotated[
    float | None,
    Parameter(
        ge=0, le=300, description="wait this many seconds for the refresh and return the snapshot"
    ),
]
AcceptShrink = Annotated[
    bool, Parameter(description="store the result even if the shrink guard would hold it back")
]


def split_key(registered: RegisteredDataset, path: Path, suffix: str) -> tuple[str, bool]:
    """(key, whether `suffix` was meant): the whole path if it is a valid key, else path - suffix."""
    text = str(path).lstrip("/")
    try:
        registered.check_key(text)
    except MalformedKey:
        if text.endswith(f"/{suffix}"):
            stem = text.removesuffix(f"/{suffix}")
            registered.check_key(stem)
            return stem, True
        raise
    return text, False


@get(
    "/api/v1/snapshots/{dataset:str}/{key:path}",
    tags=["snapshots"],
    summary="The latest snapshot of a key (or, with /history, its versions)",
    responses={
        **ERROR_RESPONSES,
        200: ResponseSpec(
            data_container=Snapshot | History,
            description="the snapshot; for .../history, a page of versions",
        ),
        304: ResponseSpec(
            data_container=None, description="the ETag sent in If-None-Match is current"
        ),
    },
    opt={"role": "reader"},
)
async def get_snapshot(
    request: Request[Any, Any, State],
    dataset: FromPath[str],
    key: FromPath[Path],
    max_age: MaxAge = None,
) -> ASGIApp:
    """The envelope `{dataset, key, data, freshness, version}` with ETag, Last-Modified, Age,
    Cache-Control and X-Snapshot-Stale; `If-None-Match` with the ETag answers 304.

    `.../{key}/history?since=&until=&limit=&before_version=&include=data`: versions newest
    first (ISO times; limit 1-1000, default 50); `next` links the following page. These are
    parsed only on the history branch, keeping the hot read's signature to one parameter.
    """
    reader = reader_of(request.app.state)
    path = str(key).lstrip("/")
    if max_age is None and (cached := reader.cached(dataset, path)) is not None:
        return reader.respond(request, cached, "hit")  # only valid keys are ever cached
    runtime = runtime_of(request.app.state)
    registered = runtime.registry.dataset(dataset)
    key_text, is_history = split_key(registered, key, "history")
    if is_history:
        page = await _history(runtime, dataset, key_text, _history_query(request))
        return json_response(page, 200)
    entry, how = await reader.entry(dataset, key_text, max_age)
    return reader.respond(request, entry, how)


class HistoryQuery(msgspec.Struct, forbid_unknown_fields=True):
    since: datetime | None = None
    until: datetime | None = None
    before_version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    include: Literal["data"] | None = None
    max_age: float | None = None  # accepted (and ignored) so one query string serves both


def _history_query(request: Request[Any, Any, State]) -> HistoryQuery:
    try:
        return msgspec.convert(dict(request.query_params), HistoryQuery, strict=False)
    except msgspec.ValidationError as exc:
        raise BadParameter(
            f"history parameters: {exc}; use since/until (ISO times), limit (1-1000), "
            "before_version (>= 1), include=data"
        ) from None


async def _history(runtime: Runtime, dataset: str, key: str, query: HistoryQuery) -> History:
    include_data = query.include == "data"
    rows = await runtime.store.history(
        dataset,
        key,
        since=query.since,
        until=query.until,
        before_version=query.before_version,
        limit=query.limit,
        include_data=include_data,
    )
    versions = [
        Version(
            version=r.version,
            content_hash=r.content_hash,
            item_count=r.item_count,
            fetched_at=r.fetched_at,
            verified_at=r.verified_at,
            data=r.payload if include_data else None,
        )
        for r in rows
    ]
    more = len(rows) == query.limit and rows[-1].version > 1
    if not more:
        return History(dataset=dataset, key=key, versions=versions, next=None)
    parts = [f"before_version={rows[-1].version}", f"limit={query.limit}"]
    if include_data:
        parts.append("include=data")
    for name, value in (("since", query.since), ("until", query.until)):
        if value is not None:
            parts.append(f"{name}={value.isoformat()}")
    next_url = f"/api/v1/snapshots/{dataset}/{key}/history?{'&'.join(parts)}"
    return History(dataset=dataset, key=key, versions=versions, next=next_url)


@post(
    "/api/v1/snapshots/{dataset:str}/{key:path}",
    tags=["snapshots"],
    summary="Force a refresh of a key (POST .../{key}/refresh)",
    status_code=202,
    responses=ERROR_RESPONSES,
    opt={"role": "operator"},
)
async def refresh_snapshot(
    request: Request[Any, Any, State],
    dataset: FromPath[str],
    key: FromPath[Path],
    wait: Wait = None,
    accept_shrink: AcceptShrink = False,
) -> ASGIApp:
    """202 with the run id (poll `/api/v1/runs/{id}`), or with `wait` the new snapshot.

    Joins a refresh already running; inside the key's minimum interval answers 429.
    """
    runtime = runtime_of(request.app.state)
    registered = runtime.registry.dataset(dataset)
    key_text, is_refresh = split_key(registered, key, "refresh")
    if not is_refresh:
        raise MalformedKey(f"POST to /api/v1/snapshots/{dataset}/{{key}}/refresh to refresh a key")
    started = await runtime.refresher.force(dataset, key_text, accept_shrink)
    if wait is None:
        body = RefreshStarted(
            dataset, key_text, started.run_id, "joined" if started.joined else "started"
        )
        return json_response(body, 202, {"Location": f"/api/v1/runs/{started.run_id}"})
    result = await wait_bounded(started, wait, f"{dataset} {key_text}")
    if result.outcome == "failed":
        raise UpstreamError(
            f"refresh of {dataset} {key_text} failed: {result.error}; the last good snapshot is kept"
        )
    reader = reader_of(request.app.state)
    try:
        entry, how = await reader.entry(dataset, key_text, None)
    except Unavailable:
        raise Unavailable(
            f"no snapshot of {dataset} {key_text}: {result.note}", retry_after=30
        ) from None
    headers = {"X-Refresh-Run": str(result.run_id), "X-Refresh-Outcome": result.outcome}
    return reader.respond(request, entry, how, extra_headers=headers)
