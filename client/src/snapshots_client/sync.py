"""SnapshotsClient: the blocking client integrations use in place of direct upstream calls."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import TypeVar, overload

import httpx
import tenacity

from snapshots_client.core import Call, ClientCore, whole
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
    History,
    KeyBody,
    KeyRefresh,
    ProviderBody,
    RefreshStarted,
    Run,
    Snapshot,
)

T = TypeVar("T")


class SnapshotsClient:
    """Reads snapshots from a gateway: pooled connections, bounded timeouts, retries on
    connection errors and 503 (honouring Retry-After), and an ETag cache so an unchanged
    snapshot costs a 304.

    `url` and `token` default to SNAPSHOTS_URL and SNAPSHOTS_TOKEN. `max_age` on a read asks
    for a snapshot verified within that many seconds (the gateway refreshes if needed).
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        max_retry_wait: float = 30.0,
        backoff: float = 0.2,
        cache_entries: int = 256,
        user_agent: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._core = ClientCore(
            url,
            token,
            timeout=timeout,
            retries=retries,
            max_retry_wait=max_retry_wait,
            backoff=backoff,
            cache_entries=cache_entries,
            user_agent=user_agent,
        )
        self._http = httpx.Client(transport=transport, **self._core.http_options())

    def __repr__(self) -> str:
        return repr(self._core)

    def __enter__(self) -> SnapshotsClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: Call[T]) -> T:
        response: httpx.Response | None = None
        try:
            for attempt in tenacity.Retrying(**self._core.retrying(call)):
                with attempt:
                    response = self._http.request(
                        call.method, call.path, **self._core.request_options(call)
                    )
                    self._core.check(response)
        except httpx.TransportError as exc:
            raise self._core.unreachable(exc) from exc
        assert response is not None
        return call.parse(response)

    # --- generic ---

    def get(self, dataset: str, key: str, *, max_age: float | None = None) -> Snapshot:
        """The latest snapshot of a key: its data (upstream JSON) and freshness."""
        return self._run(self._core.snapshot(dataset, key, max_age, whole))

    def history(
        self,
        dataset: str,
        key: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        before_version: int | None = None,
        include_data: bool = False,
    ) -> History:
        """A page of the key's versions, newest first; pass `page.next_before_version` on."""
        call = self._core.history(
            dataset,
            key,
            since=since,
            until=until,
            limit=limit,
            before_version=before_version,
            include_data=include_data,
        )
        return self._run(call)

    @overload
    def refresh(
        self, dataset: str, key: str, *, wait: None = None, accept_shrink: bool = False
    ) -> RefreshStarted: ...
    @overload
    def refresh(
        self, dataset: str, key: str, *, wait: float, accept_shrink: bool = False
    ) -> Snapshot: ...
    def refresh(
        self, dataset: str, key: str, *, wait: float | None = None, accept_shrink: bool = False
    ) -> RefreshStarted | Snapshot:
        """Force a refresh (operator token): the running refresh, or with `wait` seconds the
        new snapshot. Not retried on 503, since the gateway may already have started it."""
        return self._run(self._core.refresh(dataset, key, wait, accept_shrink))

    def refresh_dataset(self, dataset: str, *, accept_shrink: bool = False) -> list[KeyRefresh]:
        """Force a refresh of every registered key of a dataset (operator token)."""
        return self._run(self._core.refresh_dataset(dataset, accept_shrink))

    def run(self, run_id: int) -> Run:
        """A refresh run by id: `running`, or its outcome."""
        return self._run(self._core.run(run_id))

    # --- what operators read ---

    def datasets(self) -> list[DatasetBody]:
        """Every dataset: provider, TTL, enabled (or why not), how its keys stand, its budget."""
        return self._run(self._core.datasets())

    def keys(self, dataset: str) -> list[KeyBody]:
        """The registered keys of a dataset with their freshness and last refresh outcome."""
        return self._run(self._core.keys(dataset))

    def providers(self) -> list[ProviderBody]:
        """Every provider instance with its budget, plan and upstream answers as last published."""
        return self._run(self._core.providers())

    # --- built-in datasets, typed ---

    def pagerduty_schedule_users(
        self, schedule_id: str, *, max_age: float | None = None
    ) -> list[PagerDutyUser]:
        """Users on call in a PagerDuty schedule (`pagerduty.schedule_users`)."""
        return self._run(self._core.pagerduty_schedule_users(schedule_id, max_age))

    def pagerduty_escalation_policy(
        self, policy_id: str, *, max_age: float | None = None
    ) -> EscalationPolicy:
        """A PagerDuty escalation policy with its rules (`pagerduty.escalation_policy`)."""
        return self._run(self._core.pagerduty_escalation_policy(policy_id, max_age))

    def github_repo_collaborators(
        self, repo: str, *, max_age: float | None = None
    ) -> list[GitHubCollaborator]:
        """Collaborators of `owner/repo` with permissions (`github.repo_collaborators`)."""
        return self._run(self._core.github_repo_collaborators(repo, max_age))

    def github_repo(self, repo: str, *, max_age: float | None = None) -> GitHubRepo:
        """The repository `owner/repo` (`github.repo`)."""
        return self._run(self._core.github_repo(repo, max_age))

    def jira_project_issues(self, project: str, *, max_age: float | None = None) -> list[JiraIssue]:
        """Issues of a Jira project (`jira.project_issues`)."""
        return self._run(self._core.jira_project_issues(project, max_age))

    def jira_project(self, project: str, *, max_age: float | None = None) -> JiraProject:
        """A Jira project (`jira.project`)."""
        return self._run(self._core.jira_project(project, max_age))
