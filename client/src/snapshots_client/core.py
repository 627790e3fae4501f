"""What the sync and async clients share: settings, request building, the ETag cache, answer
parsing and the retry policy. The two clients differ only in how they send and sleep.
"""

from __future__ import annotations

import os
import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import msgspec
import tenacity

from snapshots_client.errors import ClientConfigError, Unavailable, error_from
from snapshots_client.models import (
    EscalationPolicy,
    GitHubCollaborator,
    GitHubRepo,
    JiraIssue,
    JiraProject,
    PagerDutyUser,
)
from snapshots_client.wire import (
    DatasetBody,
    DatasetRefresh,
    History,
    KeyBody,
    KeyRefresh,
    ProviderBody,
    RefreshStarted,
    Run,
    Snapshot,
)

T = TypeVar("T")

USER_AGENT = "snapshots-client/0.1"
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and how to read its answer (`parse` sees only 2xx and 304 answers)."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool = True  # GETs may be retried after a read error or a 503
    timeout: float | None = None  # overrides the client's read timeout (a refresh with `wait`)


class EtagCache:
    """The last full answer per URL with its ETag, so an unchanged snapshot costs a 304.

    Bounded by entries and bytes, least recently used first out; safe across threads.
    """

    def __init__(self, max_entries: int = 256, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, url: str) -> tuple[str, bytes] | None:
        with self._lock:
            entry = self._entries.get(url)
            if entry is not None:
                self._entries.move_to_end(url)
            return entry

    def put(self, url: str, etag: str, content: bytes) -> None:
        if self.max_entries <= 0 or len(content) > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(url, None)
            if old is not None:
                self._bytes -= len(old[1])
            self._entries[url] = (etag, content)
            self._bytes += len(content)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= len(evicted)

    def __len__(self) -> int:
        return len(self._entries)


class _RetryWait(tenacity.wait.wait_base):
    """The gateway's Retry-After when it sent one, else exponential backoff with full jitter."""

    def __init__(self, backoff: float, max_backoff: float) -> None:
        self.backoff = backoff
        self.max_backoff = max_backoff

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        if isinstance(failure, Unavailable) and failure.retry_after is not None:
            return failure.retry_after
        ceiling = min(self.max_backoff, self.backoff * 2 ** (retry_state.attempt_number - 1))
        return random.uniform(0, ceiling)


class ClientCore:
    """Settings and request/answer logic of a client (no I/O)."""

    def __init__(
        self,
        url: str | None,
        token: str | None,
        *,
        timeout: float,
        retries: int,
        max_retry_wait: float,
        backoff: float,
        cache_entries: int,
        user_agent: str | None,
    ) -> None:
        base = url or os.environ.get("SNAPSHOTS_URL")
        if not base:
            raise ClientConfigError(
                "no gateway URL: pass url= (e.g. http://snapshots:8000) or set SNAPSHOTS_URL"
            )
        if not base.startswith(("http://", "https://")):
            raise ClientConfigError(f"gateway URL {base!r} must start with http:// or https://")
        self.base_url = base.rstrip("/")
        secret = token if token is not None else os.environ.get("SNAPSHOTS_TOKEN")
        self._token = secret or None
        self.timeout = timeout
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self.backoff = backoff
        self.cache = EtagCache(cache_entries)
        self.user_agent = f"{user_agent} {USER_AGENT}" if user_agent else USER_AGENT

    def __repr__(self) -> str:
        return f"<snapshots client {self.base_url} token={'set' if self._token else 'unset'}>"

    def http_options(self) -> dict[str, Any]:
        """Keyword arguments for the httpx client (pooled connections, bounded timeouts)."""
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return {
            "base_url": self.base_url,
            "headers": headers,
            "timeout": httpx.Timeout(self.timeout, connect=min(5.0, self.timeout)),
            "limits": httpx.Limits(max_connections=100, max_keepalive_connections=20),
            "follow_redirects": False,
        }

    def retrying(self, call: Call[Any]) -> dict[str, Any]:
        """tenacity settings for one call: connection errors and 503s, Retry-After honoured."""

        def worth_retrying(exc: BaseException) -> bool:
            if isinstance(exc, _CONNECT_ERRORS):
                return True  # the request never reached the gateway
            if isinstance(exc, httpx.TransportError):
                return call.idempotent
            if isinstance(exc, Unavailable) and exc.status == 503 and call.idempotent:
                return exc.retry_after is None or exc.retry_after <= self.max_retry_wait
            return False

        return {
            "retry": tenacity.retry_if_exception(worth_retrying),
            "wait": _RetryWait(self.backoff, self.max_retry_wait),
            "stop": tenacity.stop_after_attempt(self.retries + 1),
            "reraise": True,
        }

    def request_options(self, call: Call[Any]) -> dict[str, Any]:
        options: dict[str, Any] = {"params": call.params, "headers": call.headers}
        if call.timeout is not None:
            options["timeout"] = httpx.Timeout(call.timeout, connect=min(5.0, self.timeout))
        return options

    def check(self, response: httpx.Response) -> None:
        """Raise the client exception for an error answer."""
        if response.status_code >= 400:
            raise error_from(
                response.status_code, response.content, response.headers.get("Retry-After")
            )

    def unreachable(self, exc: httpx.TransportError) -> Unavailable:
        return Unavailable(f"cannot reach the gateway at {self.base_url}: {type(exc).__name__}")

    # --- calls ---

    def snapshot(
        self, dataset: str, key: str, max_age: float | None, convert: Callable[[Snapshot], T]
    ) -> Call[T]:
        path = snapshot_path(dataset, key)
        params = {} if max_age is None else {"max_age": f"{max_age:g}"}
        cache_key = path + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")
        cached = self.cache.get(cache_key)

        def parse(response: httpx.Response) -> T:
            if response.status_code == 304 and cached is not None:
                snapshot = _revalidated(msgspec.json.decode(cached[1], type=Snapshot), response)
                return convert(snapshot)
            snapshot = msgspec.json.decode(response.content, type=Snapshot)
            etag = response.headers.get("ETag")
            if etag:
                self.cache.put(cache_key, etag, response.content)
            return convert(snapshot)

        headers = {"If-None-Match": cached[0]} if cached is not None else {}
        return Call("GET", path, parse, params, headers)

    # --- built-in datasets, typed ---

    def pagerduty_schedule_users(
        self, schedule_id: str, max_age: float | None
    ) -> Call[list[PagerDutyUser]]:
        return self.snapshot(
            "pagerduty.schedule_users", schedule_id, max_age, typed(list[PagerDutyUser])
        )

    def pagerduty_escalation_policy(
        self, policy_id: str, max_age: float | None
    ) -> Call[EscalationPolicy]:
        return self.snapshot(
            "pagerduty.escalation_policy", policy_id, max_age, typed(EscalationPolicy)
        )

    def github_repo_collaborators(
        self, repo: str, max_age: float | None
    ) -> Call[list[GitHubCollaborator]]:
        return self.snapshot(
            "github.repo_collaborators", repo, max_age, typed(list[GitHubCollaborator])
        )

    def github_repo(self, repo: str, max_age: float | None) -> Call[GitHubRepo]:
        return self.snapshot("github.repo", repo, max_age, typed(GitHubRepo))

    def jira_project_issues(self, project: str, max_age: float | None) -> Call[list[JiraIssue]]:
        return self.snapshot("jira.project_issues", project, max_age, typed(list[JiraIssue]))

    def jira_project(self, project: str, max_age: float | None) -> Call[JiraProject]:
        return self.snapshot("jira.project", project, max_age, typed(JiraProject))

    def history(
        self,
        dataset: str,
        key: str,
        *,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        before_version: int | None,
        include_data: bool,
    ) -> Call[History]:
        params: dict[str, str] = {"limit": str(limit)}
        for name, moment in (("since", since), ("until", until)):
            if moment is not None:
                params[name] = moment.isoformat()
        if before_version is not None:
            params["before_version"] = str(before_version)
        if include_data:
            params["include"] = "data"
        return Call("GET", key_path("history", dataset, key), _decoder(History), params)

    def refresh(
        self, dataset: str, key: str, wait: float | None, accept_shrink: bool
    ) -> Call[RefreshStarted | Snapshot]:
        params: dict[str, str] = {}
        if accept_shrink:
            params["accept_shrink"] = "true"
        if wait is not None:
            params["wait"] = f"{wait:g}"

        def parse(response: httpx.Response) -> RefreshStarted | Snapshot:
            if response.status_code == 202:
                return msgspec.json.decode(response.content, type=RefreshStarted)
            return msgspec.json.decode(response.content, type=Snapshot)

        timeout = None if wait is None else wait + self.timeout
        path = key_path("refresh", dataset, key)
        return Call("POST", path, parse, params, idempotent=False, timeout=timeout)

    def refresh_dataset(self, dataset: str, accept_shrink: bool) -> Call[list[KeyRefresh]]:
        params = {"accept_shrink": "true"} if accept_shrink else {}

        def parse(response: httpx.Response) -> list[KeyRefresh]:
            return msgspec.json.decode(response.content, type=DatasetRefresh).keys

        path = f"/api/v1/datasets/{quote(dataset, safe='')}/refresh"
        return Call("POST", path, parse, params, idempotent=False)

    def run(self, run_id: int) -> Call[Run]:
        return Call("GET", f"/api/v1/runs/{int(run_id)}", _decoder(Run))

    # --- what operators read ---

    def datasets(self) -> Call[list[DatasetBody]]:
        return Call("GET", "/api/v1/datasets", _list_decoder(DatasetBody))

    def keys(self, dataset: str) -> Call[list[KeyBody]]:
        path = f"/api/v1/datasets/{quote(dataset, safe='')}/keys"
        return Call("GET", path, _list_decoder(KeyBody))

    def providers(self) -> Call[list[ProviderBody]]:
        return Call("GET", "/api/v1/providers", _list_decoder(ProviderBody))


def snapshot_path(dataset: str, key: str) -> str:
    """The snapshot route of a key; `/` in keys (owner/repo) stays a path separator."""
    return f"/api/v1/snapshots/{quote(dataset, safe='')}/{quote(key, safe='/')}"


def key_path(action: str, dataset: str, key: str) -> str:
    """`/api/v1/{action}/{dataset}/{key}` (history, refresh): unambiguous whatever the key
    ends in, unlike the `.../{key}/history` suffix form."""
    return f"/api/v1/{action}/{quote(dataset, safe='')}/{quote(key, safe='/')}"


def typed(kind: type[T]) -> Callable[[Snapshot], T]:
    """Converts a snapshot's data to `kind` (a model or a list of models)."""

    def convert(snapshot: Snapshot) -> T:
        try:
            return msgspec.convert(snapshot.data, type=kind)
        except msgspec.ValidationError as exc:
            raise ValueError(
                f"{snapshot.dataset} {snapshot.key} does not have the expected shape: {exc}"
            ) from None

    return convert


def whole(snapshot: Snapshot) -> Snapshot:
    return snapshot


def _decoder(kind: type[T]) -> Callable[[httpx.Response], T]:
    def parse(response: httpx.Response) -> T:
        return msgspec.json.decode(response.content, type=kind)

    return parse


def _list_decoder(kind: type[T]) -> Callable[[httpx.Response], list[T]]:
    def parse(response: httpx.Response) -> list[T]:
        return msgspec.json.decode(response.content, type=list[kind])  # type: ignore[valid-type]

    return parse


def _revalidated(snapshot: Snapshot, response: httpx.Response) -> Snapshot:
    """The cached snapshot with the age and staleness a 304 reports in its headers."""
    old = snapshot.freshness
    try:
        age = float(response.headers.get("Age", old.age_seconds))
    except ValueError:
        age = old.age_seconds
    stale = response.headers.get("X-Snapshot-Stale", "false") == "true"
    verified = datetime.now(UTC) - timedelta(seconds=age)
    freshness = msgspec.structs.replace(
        old, age_seconds=age, stale=stale, verified_at=max(verified, old.verified_at)
    )
    return msgspec.structs.replace(snapshot, freshness=freshness)
