"""Snapshot routes: the latest snapshot, its history, and forcing a refresh of one key.

Keys may contain `/` (`acme/repo-01`), so the key is the rest of the path. The canonical
routes put the action first (`/latest/`, `/history/`, `/refresh/`), so every key, whatever
its pattern, has exactly one meaning. Under `/snapshots/`, `.../history` (GET) and
`.../refresh` (POST) are suffixes: a POST always strips `/refresh`; a GET whose whole rest
and whose stem are both valid keys is ambiguous and answered 400 naming the canonical routes.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, Parameter
from litestar.types import ASGIApp

from snapshots.api.reader import SnapshotReader, json_response
from snapshots.api.schemas import ERROR_RESPONSES
from snapshots.errors import (
    BadParameter,
    MalformedKey,
    RefreshTooSoon,
    Unavailable,
    UpstreamError,
    UpstreamNotFound,
)
from snapshots.registry import RegisteredDataset
from snapshots.store import Store
from snapshots_client.http_caching import history_link
from snapshots_client.wire import History, RefreshStarted, Snapshot, Version

MAX_VERSION = 2**31 - 1  # snapshots.version is a PostgreSQL integer
HISTORY_SUFFIX = "/history"
REFRESH_SUFFIX = "/refresh"

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


def _valid(registered: RegisteredDataset, key: str) -> bool:
    try:
        registered.check_key(key)
    except MalformedKey:
        return False
    return True


def split_get(registered: RegisteredDataset, path: str) -> tuple[str, bool]:
    """(key, whether its history is asked) for `GET /snapshots/{dataset}/{path}`.

    `.../history` means the history when only the stem is a valid key, and the key itself
    when only the whole path is; when both are, the request is refused as ambiguous.
    """
    if not path.endswith(HISTORY_SUFFIX):
        registered.check_key(path)
        return path, False
    stem = path.removesuffix(HISTORY_SUFFIX)
    whole_valid, stem_valid = _valid(registered, path), _valid(registered, stem)
    if whole_valid and stem_valid:
        name = registered.name
        raise BadParameter(
            f"{path!r} is ambiguous: it is a key of {name} and the history of key {stem!r}; "
            f"use GET /api/v1/history/{name}/{stem} for the history, or "
            f"GET /api/v1/latest/{name}/{path} for the key"
        )
    if stem_valid:
        return stem, True
    registered.check_key(path)
    return path, False


_SNAPSHOT_RESPONSES = {
    **ERROR_RESPONSES,
    200: ResponseSpec(data_container=Snapshot, description="the latest snapshot"),
    304: ResponseSpec(data_container=None, description="the ETag sent in If-None-Match is current"),
}


async def _read(
    request: Request[Any, Any, State],
    reader: SnapshotReader,
    dataset: str,
    key: str,
    max_age: float | None,
) -> ASGIApp:
    """The key's latest snapshot: from the hot cache, else the store (or a cold fetch)."""
    entry, how = await reader.entry(dataset, key, max_age)
    return reader.respond(request, entry, how)


@get(
    "/api/v1/snapshots/{dataset:str}/{key:path}",
    tags=["snapshots"],
    summary="The latest snapshot of a key (or, with /history, its versions)",
    responses={
        **_SNAPSHOT_RESPONSES,
        200: ResponseSpec(
            data_container=Snapshot | History,
            description="the snapshot; for .../history, a page of versions",
        ),
    },
    opt={"role": "reader"},
)
async def get_snapshot(
    request: Request[Any, Any, State],
    reader: NamedDependency[SnapshotReader],
    store: NamedDependency[Store],
    dataset: FromPath[str],
    key: FromPath[Path],
    max_age: MaxAge = None,
) -> ASGIApp:
    """The envelope `{dataset, key, data, freshness, version}` with ETag, Last-Modified, Age,
    Cache-Control and X-Snapshot-Stale; `If-None-Match` with the ETag answers 304.

    `.../{key}/history?since=&until=&limit=&before_version=&include=data`: versions newest
    first, as `GET /api/v1/history/{dataset}/{key}` (which is unambiguous for every key).
    """
    path = str(key).lstrip("/")
    if (
        max_age is None
        and not path.endswith(HISTORY_SUFFIX)
        and (cached := reader.cached(dataset, path)) is not None
    ):
        return reader.respond(request, cached, "hit")  # only valid keys are ever cached
    key_text, is_history = split_get(reader.registry.dataset(dataset), path)
    if is_history:
        page = await _history(store, dataset, key_text, _history_query(request))
        return json_response(page, 200)
    return await _read(request, reader, dataset, key_text, max_age)


@get(
    "/api/v1/latest/{dataset:str}/{key:path}",
    tags=["snapshots"],
    summary="The latest snapshot of a key (the whole rest of the path is the key)",
    responses=_SNAPSHOT_RESPONSES,
    opt={"role": "reader"},
)
async def get_latest(
    request: Request[Any, Any, State],
    reader: NamedDependency[SnapshotReader],
    dataset: FromPath[str],
    key: FromPath[Path],
    max_age: MaxAge = None,
) -> ASGIApp:
    """As `GET /api/v1/snapshots/{dataset}/{key}`, for keys that end in `/history` too."""
    path = str(key).lstrip("/")
    if max_age is None and (cached := reader.cached(dataset, path)) is not None:
        return reader.respond(request, cached, "hit")
    return await _read(request, reader, dataset, path, max_age)


@get(
    "/api/v1/history/{dataset:str}/{key:path}",
    tags=["snapshots"],
    summary="Versions of a key, newest first (the whole rest of the path is the key)",
    responses=ERROR_RESPONSES,
    opt={"role": "reader"},
)
async def get_history(
    request: Request[Any, Any, State],
    reader: NamedDependency[SnapshotReader],
    store: NamedDependency[Store],
    dataset: FromPath[str],
    key: FromPath[Path],
) -> ASGIApp:
    """`?since=&until=&limit=&before_version=&include=data`: ISO times, limit 1-1000 (default
    50), versions older than `before_version`; `next` links the following page."""
    path = str(key).lstrip("/")
    reader.registry.dataset(dataset).check_key(path)
    page = await _history(store, dataset, path, _history_query(request))
    return json_response(page, 200)


class HistoryQuery(msgspec.Struct, forbid_unknown_fields=True):
    since: datetime | None = None
    until: datetime | None = None
    before_version: Annotated[int, msgspec.Meta(ge=1, le=MAX_VERSION)] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    include: Literal["data"] | None = None
    max_age: float | None = None  # accepted (and ignored) so one query string serves both


def _history_query(request: Request[Any, Any, State]) -> HistoryQuery:
    try:
        return msgspec.convert(dict(request.query_params), HistoryQuery, strict=False)
    except msgspec.ValidationError as exc:
        raise BadParameter(
            f"history parameters: {exc}; use since/until (ISO times), limit (1-1000), "
            f"before_version (1-{MAX_VERSION}), include=data"
        ) from None


async def _history(store: Store, dataset: str, key: str, query: HistoryQuery) -> History:
    include_data = query.include == "data"
    rows = await store.history(
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
    next_url = history_link(
        dataset,
        key,
        before_version=rows[-1].version,
        limit=query.limit,
        include_data=include_data,
        since=query.since,
        until=query.until,
    )
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
    reader: NamedDependency[SnapshotReader],
    dataset: FromPath[str],
    key: FromPath[Path],
    wait: Wait = None,
    accept_shrink: AcceptShrink = False,
) -> ASGIApp:
    """As `POST /api/v1/refresh/{dataset}/{key}`; the path must end in `/refresh`, which is
    always stripped (a key ending in `/refresh` is `.../{key}/refresh` as well)."""
    path = str(key).lstrip("/")
    if not path.endswith(REFRESH_SUFFIX):
        raise MalformedKey(
            f"POST to /api/v1/refresh/{dataset}/{{key}} (or .../snapshots/{dataset}/{{key}}/refresh) "
            "to refresh a key"
        )
    key_text = path.removesuffix(REFRESH_SUFFIX)
    return await _refresh(request, reader, dataset, key_text, wait, accept_shrink)


@post(
    "/api/v1/refresh/{dataset:str}/{key:path}",
    tags=["snapshots"],
    summary="Force a refresh of a key (the whole rest of the path is the key)",
    status_code=202,
    responses=ERROR_RESPONSES,
    opt={"role": "operator"},
)
async def refresh_key(
    request: Request[Any, Any, State],
    reader: NamedDependency[SnapshotReader],
    dataset: FromPath[str],
    key: FromPath[Path],
    wait: Wait = None,
    accept_shrink: AcceptShrink = False,
) -> ASGIApp:
    """202 with the run id (poll `/api/v1/runs/{id}`), or with `wait` the new snapshot.

    Joins a refresh already running; inside the key's minimum interval answers 429 with the
    latest version; 404 when the upstream says the key does not exist.
    """
    return await _refresh(request, reader, dataset, str(key).lstrip("/"), wait, accept_shrink)


async def _refresh(
    request: Request[Any, Any, State],
    reader: SnapshotReader,
    dataset: str,
    key: str,
    wait: float | None,
    accept_shrink: bool,
) -> ASGIApp:
    reader.registry.dataset(dataset).check_key(key)
    try:
        started = await reader.refresher.force(dataset, key, accept_shrink)
    except RefreshTooSoon as exc:
        if exc.latest_version is None:  # refused by another process: the store knows it
            latest = await reader.store.latest(dataset, key)
            exc.latest_version = latest.snapshot.version if latest and latest.snapshot else None
        raise
    if wait is None:
        body = RefreshStarted(
            dataset, key, started.run_id, "joined" if started.joined else "started"
        )
        return json_response(body, 202, {"Location": f"/api/v1/runs/{started.run_id}"})
    result = await started.result(wait)
    if result.interrupted:  # the worker stepped down: the next one will take it
        raise Unavailable(f"refresh of {dataset} {key}: {result.error}", retry_after=5)
    if result.not_found:
        raise UpstreamNotFound(f"{dataset} {key}: {result.error}")
    if result.outcome == "failed":
        raise UpstreamError(
            f"refresh of {dataset} {key} failed: {result.error}; the last good snapshot is kept"
        )
    try:
        entry, how = await reader.entry(dataset, key, None)
    except Unavailable:
        raise Unavailable(
            f"no snapshot of {dataset} {key}: {result.note}", retry_after=30
        ) from None
    headers = {"X-Refresh-Run": str(result.run_id), "X-Refresh-Outcome": result.outcome}
    return reader.respond(request, entry, how, extra_headers=headers)
