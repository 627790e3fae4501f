"""FakeGateway: canned snapshots answered in the gateway's own API shapes, for the test suites
of integrations. No upstream, no database, no running gateway.

It answers the routes the client uses (snapshot, history, refresh, dataset refresh, runs) with
the real envelope, ETag/304, freshness headers and error bodies, so the real client runs
against it unchanged: over HTTP (`serve()`) or in process (`transport()`).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import httpx
import msgspec

from snapshots_client.http_caching import (
    DEFAULT_STALE_IF_ERROR_SECONDS,
    ERROR_STATUS,
    etag_matches,
    freshness_headers,
    history_link,
    version_headers,
)
from snapshots_client.wire import (
    DatasetBody,
    DatasetRefresh,
    ErrorBody,
    ErrorDetail,
    Freshness,
    History,
    KeyBody,
    KeyRefresh,
    ProviderBody,
    RefreshStarted,
    Run,
    Snapshot,
    Version,
)

ErrorKind = Literal[
    "unavailable",
    "not_found",
    "disabled",
    "unauthorized",
    "forbidden",
    "bad_request",
    "refresh_failed",
    "refresh_too_soon",
]
_ERROR_CODES: dict[str, str] = {
    "unavailable": "unavailable",
    "not_found": "not_found",
    "disabled": "dataset_disabled",
    "unauthorized": "unauthorized",
    "forbidden": "forbidden",
    "bad_request": "malformed_key",
    "refresh_failed": "upstream_error",
    "refresh_too_soon": "refresh_too_soon",
}
"""Each ErrorKind as the gateway's error code; the status comes from the shared error table."""
_encode = msgspec.json.Encoder().encode


@dataclass
class CannedVersion:
    """One version of a canned snapshot; `age` counts from when it was added."""

    data: Any
    version: int
    fetched_at: datetime
    ttl_seconds: float
    last_error: str | None
    content_hash: str = ""

    def __post_init__(self) -> None:
        canonical = msgspec.json.encode(self.data, order="sorted")
        self.content_hash = hashlib.sha256(canonical).hexdigest()


@dataclass
class CannedError:
    """An error answered for a key: `times` answers (None: every time), then the snapshot."""

    kind: ErrorKind
    message: str
    times: int | None
    retry_after: int | None
    last_error: str | None


@dataclass(frozen=True)
class Recorded:
    """A request the fake answered, for assertions (`gateway.requests`)."""

    method: str
    path: str
    status: int
    if_none_match: str | None


@dataclass
class FakeGateway:
    """Canned snapshots by (dataset, key), errors to answer, and a log of what was asked."""

    versions: dict[tuple[str, str], list[CannedVersion]] = field(default_factory=dict)
    errors: dict[tuple[str, str], CannedError] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    refreshes: list[tuple[str, str]] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)  # token -> role (reader, operator)
    url: str | None = None  # set while served over HTTP
    stale_if_error: int = DEFAULT_STALE_IF_ERROR_SECONDS  # Cache-Control's, as the gateway's
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- arranging ---

    def add(
        self,
        dataset: str,
        key: str,
        data: Any,
        *,
        age: float = 0.0,
        ttl: float = 300.0,
        stale: bool = False,
        last_error: str | None = None,
    ) -> None:
        """Serve `data` as the latest snapshot of (dataset, key), as a new version.

        `stale=True` makes it older than its TTL (unless `age` says how old); `last_error`
        is the error of a later refresh that failed (the snapshot stays served).
        """
        if stale and age <= ttl:
            age = ttl * 2 + 1
        fetched_at = datetime.now(UTC) - timedelta(seconds=age)
        with self._lock:
            history = self.versions.setdefault((dataset, key), [])
            number = history[-1].version + 1 if history else 1
            history.append(CannedVersion(data, number, fetched_at, ttl, last_error))

    def fail(
        self,
        dataset: str,
        key: str,
        kind: ErrorKind = "unavailable",
        message: str | None = None,
        *,
        times: int | None = None,
        retry_after: int | None = None,
        last_error: str | None = None,
    ) -> None:
        """Answer (dataset, key) with an error: `times` times (default: always), then normally.

        `unavailable` is the gateway's 503 (no snapshot could be had; `last_error` says why);
        `retry_after` sets its Retry-After header.
        """
        if kind not in _ERROR_CODES:
            raise ValueError(f"unknown error kind {kind!r}; use one of {', '.join(_ERROR_CODES)}")
        text = message or f"canned {kind} for {dataset} {key}"
        with self._lock:
            self.errors[(dataset, key)] = CannedError(kind, text, times, retry_after, last_error)

    def require_token(self, token: str, role: Literal["reader", "operator"] = "reader") -> None:
        """From now on, answer 401 without a known token (and 403 to readers refreshing)."""
        self.tokens[token] = role

    def load(self, source: str | Path | dict[str, Any]) -> None:
        """Add snapshots from a JSON file or its parsed content. Two forms:

        `{"<dataset>": {"<key>": <data>, ...}, ...}`, or, for freshness and errors,
        `{"snapshots": [{"dataset", "key", "data", "age"?, "ttl"?, "stale"?, "last_error"?}],
          "errors": [{"dataset", "key", "kind"?, "message"?, "times"?, "retry_after"?}]}`.
        """
        content = source if isinstance(source, dict) else json.loads(Path(source).read_text())
        if not isinstance(content, dict):
            raise ValueError(f"{source}: expected a JSON object of datasets or snapshots/errors")
        if isinstance(content.get("snapshots"), list) or isinstance(content.get("errors"), list):
            for item in content.get("snapshots", []):
                options = {k: item[k] for k in ("age", "ttl", "stale", "last_error") if k in item}
                self.add(item["dataset"], item["key"], item["data"], **options)
            for item in content.get("errors", []):
                options = {
                    k: item[k]
                    for k in ("message", "times", "retry_after", "last_error")
                    if k in item
                }
                self.fail(item["dataset"], item["key"], item.get("kind", "unavailable"), **options)
            return
        for dataset, keys in content.items():
            if not isinstance(keys, dict):
                raise ValueError(f"{source}: {dataset!r} must map keys to data")
            for key, data in keys.items():
                self.add(dataset, key, data)

    def transport(self) -> httpx.MockTransport:
        """An httpx transport answering in process (for SnapshotsClient(transport=...))."""
        return httpx.MockTransport(self.handle)

    def count(self, path: str, status: int | None = None) -> int:
        """How many requests for `path` were answered (with `status`, if given)."""
        return sum(
            1 for r in self.requests if r.path == path and (status is None or r.status == status)
        )

    # --- answering ---

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one API request like the gateway would (HEAD as the GET, without the body)."""
        response = self._answer(request)
        if request.method == "HEAD":
            headers = [(k, v) for k, v in response.headers.multi_items() if k != "content-length"]
            response = httpx.Response(response.status_code, headers=headers)
        with self._lock:
            self.requests.append(
                Recorded(
                    request.method,
                    request.url.path,
                    response.status_code,
                    request.headers.get("If-None-Match"),
                )
            )
        return response

    def _answer(self, request: httpx.Request) -> httpx.Response:
        role = self._role(request.headers.get("Authorization"))
        if role is None:
            return _error(401, "unauthorized", "no bearer token, or an unknown one")
        path = unquote(request.url.path)
        if path.startswith("/api/v1/runs/"):
            return self._run(path.rsplit("/", 1)[-1])
        if request.method == "POST" and path.startswith("/api/v1/datasets/"):
            return self._refresh_dataset(path.split("/")[4], role)
        if path in ("/api/v1/datasets", "/api/v1/providers") or (
            path.startswith("/api/v1/datasets/") and path.endswith("/keys")
        ):
            return self._operator_view(path)
        route, _, tail = path.removeprefix("/api/v1/").partition("/")
        if route not in ("snapshots", "latest", "history", "refresh"):
            return _error(404, "not_found", f"the fake gateway does not serve {path}")
        dataset, _, rest = tail.partition("/")
        if not any(d == dataset for d, _ in [*self.versions, *self.errors]):
            return _error(404, "unknown_dataset", f"no canned snapshots of dataset {dataset!r}")
        if request.method == "POST":
            if role != "operator":
                return _error(403, "forbidden", "refreshing needs an operator token")
            key = rest if route == "refresh" else rest.removesuffix("/refresh")
            return self._refresh(dataset, key, request)
        if route == "history":
            return self._history(dataset, rest, request)
        if (
            route == "snapshots"
            and (dataset, rest) not in self.versions
            and rest.endswith("/history")
        ):
            return self._history(dataset, rest.removesuffix("/history"), request)
        return self._snapshot(dataset, rest, request)

    def _operator_view(self, path: str) -> httpx.Response:
        """What `snapshots status` reads: datasets, a dataset's keys, providers (canned ones:
        every key fetched, no budget published)."""
        now = datetime.now(UTC)
        by_dataset: dict[str, list[KeyBody]] = {}
        with self._lock:
            for (dataset, key), history in sorted(self.versions.items()):
                latest = history[-1]
                age = (now - latest.fetched_at).total_seconds()
                by_dataset.setdefault(dataset, []).append(
                    KeyBody(
                        key=key,
                        source="canned",
                        version=latest.version,
                        item_count=len(latest.data) if isinstance(latest.data, list) else 1,
                        fetched_at=latest.fetched_at,
                        verified_at=latest.fetched_at,
                        age_seconds=round(age, 3),
                        stale=age > latest.ttl_seconds,
                        next_refresh_at=None,
                        last_refresh_at=latest.fetched_at,
                        last_outcome="changed",
                        last_error=latest.last_error,
                    )
                )
        if path.endswith("/keys"):
            name = path.split("/")[4]
            if name not in by_dataset:
                return _error(404, "unknown_dataset", f"no canned snapshots of dataset {name!r}")
            return _json(200, by_dataset[name])
        if path == "/api/v1/providers":
            providers: dict[str, list[str]] = {}
            for name in by_dataset:
                providers.setdefault(name.split(".", 1)[0], []).append(name)
            return _json(
                200,
                [
                    ProviderBody(p, "", True, None, names, None, None, {}, None)
                    for p, names in sorted(providers.items())
                ],
            )
        datasets = [
            DatasetBody(
                dataset=name,
                provider=name.split(".", 1)[0],
                description="canned snapshots (testing kit)",
                ttl_seconds=max(self.versions[(name, k.key)][-1].ttl_seconds for k in keys),
                enabled=True,
                disabled_reason=None,
                keys=len(keys),
                fresh=sum(1 for k in keys if not k.stale),
                stale=sum(1 for k in keys if k.stale),
                failing=0,
                budget=None,
            )
            for name, keys in by_dataset.items()
        ]
        return _json(200, datasets)

    def _role(self, authorization: str | None) -> str | None:
        if not self.tokens:
            return "operator"
        scheme, _, token = (authorization or "").partition(" ")
        return self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None

    def _canned_error(self, dataset: str, key: str) -> httpx.Response | None:
        with self._lock:
            error = self.errors.get((dataset, key))
            if error is None:
                return None
            if error.times is not None:
                error.times -= 1
                if error.times <= 0:
                    del self.errors[(dataset, key)]
        code = _ERROR_CODES[error.kind]
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
        detail = ErrorDetail(code, error.message, last_error=error.last_error)
        return _json(ERROR_STATUS[code], ErrorBody(detail), headers)

    def _latest(self, dataset: str, key: str) -> CannedVersion | None:
        history = self.versions.get((dataset, key))
        return history[-1] if history else None

    def _snapshot(self, dataset: str, key: str, request: httpx.Request) -> httpx.Response:
        max_age = request.url.params.get("max_age")
        if max_age is not None and not _non_negative_number(max_age):
            return _error(400, "bad_request", "invalid parameters: max_age: Expected float >= 0.0")
        if (failure := self._canned_error(dataset, key)) is not None:
            return failure
        latest = self._latest(dataset, key)
        if latest is None:
            return _error(
                404,
                "not_found",
                f"no canned snapshot of {dataset} {key}; add one with gateway.add({dataset!r}, {key!r}, data)",
            )
        return self._envelope(dataset, key, latest, request.headers.get("If-None-Match"))

    def _envelope(
        self, dataset: str, key: str, canned: CannedVersion, if_none_match: str | None
    ) -> httpx.Response:
        """The gateway's snapshot answer: envelope, caching headers, 304 on a current ETag."""
        age = max(0.0, (datetime.now(UTC) - canned.fetched_at).total_seconds())
        headers = [
            *version_headers(canned.content_hash, canned.fetched_at, canned.version),
            *freshness_headers(age, canned.ttl_seconds, self.stale_if_error),
        ]
        if if_none_match is not None and etag_matches(if_none_match, headers[0][1]):
            return httpx.Response(304, headers=headers)
        freshness = Freshness(
            fetched_at=canned.fetched_at,
            verified_at=canned.fetched_at,
            age_seconds=round(age, 3),
            ttl_seconds=canned.ttl_seconds,
            stale=age > canned.ttl_seconds,
            last_error=canned.last_error,
        )
        body = Snapshot(dataset, key, canned.data, freshness, canned.version)
        return _json(200, body, dict(headers))

    def _history(self, dataset: str, key: str, request: httpx.Request) -> httpx.Response:
        try:
            query = msgspec.convert(dict(request.url.params), _HistoryQuery, strict=False)
        except msgspec.ValidationError as exc:
            return _error(400, "bad_request", f"history parameters: {exc}")
        include = query.include == "data"
        newest_first = [
            v
            for v in reversed(self.versions.get((dataset, key), []))
            if (query.before_version is None or v.version < query.before_version)
            and (query.since is None or v.fetched_at >= query.since)
            and (query.until is None or v.fetched_at < query.until)
        ]
        page = newest_first[: query.limit]
        versions = [
            Version(
                version=v.version,
                content_hash=v.content_hash,
                item_count=len(v.data) if isinstance(v.data, list) else 1,
                fetched_at=v.fetched_at,
                verified_at=v.fetched_at,
                data=v.data if include else None,
            )
            for v in page
        ]
        next_url = None
        if len(newest_first) > query.limit:
            next_url = history_link(
                dataset,
                key,
                before_version=page[-1].version,
                limit=query.limit,
                include_data=include,
                since=query.since,
                until=query.until,
            )
        return _json(200, History(dataset=dataset, key=key, versions=versions, next=next_url))

    def _refresh(self, dataset: str, key: str, request: httpx.Request) -> httpx.Response:
        if (failure := self._canned_error(dataset, key)) is not None:
            return failure
        latest = self._latest(dataset, key)
        if latest is None:
            return _error(404, "not_found", f"no canned snapshot of {dataset} {key}")
        with self._lock:
            self.refreshes.append((dataset, key))
            run_id = len(self.refreshes)
        if request.url.params.get("wait") is None:
            started = RefreshStarted(dataset=dataset, key=key, run_id=run_id, status="started")
            return _json(202, started, {"Location": f"/api/v1/runs/{run_id}"})
        return self._envelope(dataset, key, latest, None)

    def _run(self, run_id: str) -> httpx.Response:
        number = int(run_id) if run_id.isdigit() else 0
        if not 0 < number <= len(self.refreshes):
            return _error(404, "unknown_run", f"no refresh run {run_id} was started")
        dataset, key = self.refreshes[number - 1]
        run = Run(number, dataset, key, "unchanged", trigger="demand", upstream_requests=0)
        return _json(200, run)

    def _refresh_dataset(self, dataset: str, role: str) -> httpx.Response:
        if role != "operator":
            return _error(403, "forbidden", "refreshing needs an operator token")
        keys = [k for d, k in self.versions if d == dataset]
        if not keys:
            return _error(404, "unknown_dataset", f"no canned snapshots of dataset {dataset!r}")
        started: list[KeyRefresh] = []
        for key in keys:
            with self._lock:
                self.refreshes.append((dataset, key))
                started.append(KeyRefresh(key=key, run_id=len(self.refreshes), status="started"))
        return _json(202, DatasetRefresh(dataset=dataset, keys=started))


class _HistoryQuery(msgspec.Struct):
    """The history parameters the gateway reads (see the server's history route)."""

    since: datetime | None = None
    until: datetime | None = None
    before_version: int | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    include: Literal["data"] | None = None


def _non_negative_number(text: str) -> bool:
    """Whether a `max_age` is what the gateway accepts: a number of seconds, at least 0."""
    try:
        return float(text) >= 0.0
    except ValueError:
        return False


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return httpx.Response(status, content=_encode(body), headers=all_headers)


def _error(status: int, code: str, message: str) -> httpx.Response:
    assert ERROR_STATUS[code] == status, f"{code} is answered with {ERROR_STATUS[code]}"
    return _json(status, ErrorBody(ErrorDetail(code, message)))
