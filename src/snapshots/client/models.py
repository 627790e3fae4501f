"""What the client returns: snapshots with freshness, history pages, refresh runs, and typed
views of the built-in datasets.

The typed views name the fields integrations use; unknown fields are ignored, so an upstream
adding fields never breaks a client. For every field, `get(...).data` has the raw object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class Freshness(msgspec.Struct, frozen=True):
    """How fresh a snapshot is. On a 304 the client updates `age_seconds`, `verified_at` and
    `stale` from the response headers; the other fields are those of the last full answer."""

    fetched_at: datetime
    verified_at: datetime
    age_seconds: float
    ttl_seconds: float
    stale: bool
    next_refresh_at: datetime | None = None
    last_error: str | None = None


class Snapshot(msgspec.Struct, frozen=True):
    """The latest snapshot of a (dataset, key): the upstream data as JSON and its freshness."""

    dataset: str
    key: str
    data: Any
    freshness: Freshness
    version: int


class Version(msgspec.Struct, frozen=True):
    """One stored version of a key; `data` is set when history was asked with `include_data`."""

    version: int
    content_hash: str
    item_count: int
    fetched_at: datetime
    verified_at: datetime
    data: Any = None


class History(msgspec.Struct, frozen=True):
    """A page of versions, newest first; `next_before_version` continues it (None at the end)."""

    dataset: str
    key: str
    versions: list[Version]
    next: str | None = None

    @property
    def next_before_version(self) -> int | None:
        return self.versions[-1].version if self.next and self.versions else None


class RefreshStarted(msgspec.Struct, frozen=True):
    """A forced refresh that is running (`started`) or was already running (`joined`)."""

    dataset: str
    key: str
    run_id: int
    status: str


class KeyRefresh(msgspec.Struct, frozen=True):
    """One key of a dataset-wide refresh: `started`, `joined`, or `skipped` (with a note)."""

    key: str
    run_id: int | None
    status: str
    note: str | None = None


class Run(msgspec.Struct, frozen=True):
    """A refresh run: `running`, or its outcome (changed, unchanged, failed, rejected)."""

    id: int
    dataset: str
    key: str
    status: str
    trigger: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    upstream_requests: int | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status != "running"


# --- PagerDuty (REST API v2 shapes) ---


class PagerDutyReference(msgspec.Struct, frozen=True):
    """A reference to another PagerDuty object (a user or schedule as an escalation target)."""

    id: str
    type: str
    summary: str | None = None
    html_url: str | None = None


class PagerDutyUser(msgspec.Struct, frozen=True):
    """A user on call in a schedule (GET /schedules/{id}/users)."""

    id: str
    type: str = "user"
    name: str | None = None
    summary: str | None = None
    email: str | None = None
    time_zone: str | None = None
    role: str | None = None
    html_url: str | None = None


class EscalationRule(msgspec.Struct, frozen=True):
    id: str
    escalation_delay_in_minutes: int
    targets: list[PagerDutyReference]


class EscalationPolicy(msgspec.Struct, frozen=True):
    """An escalation policy with its rules (GET /escalation_policies/{id})."""

    id: str
    name: str | None = None
    summary: str | None = None
    description: str | None = None
    num_loops: int = 0
    escalation_rules: list[EscalationRule] = []
    html_url: str | None = None


# --- GitHub (REST API shapes) ---


class GitHubPermissions(msgspec.Struct, frozen=True):
    admin: bool = False
    maintain: bool = False
    push: bool = False
    triage: bool = False
    pull: bool = False


class GitHubAccount(msgspec.Struct, frozen=True):
    login: str
    id: int
    type: str = "User"
    html_url: str | None = None


class GitHubCollaborator(msgspec.Struct, frozen=True):
    """A repository collaborator with permissions (GET /repos/{owner}/{repo}/collaborators)."""

    login: str
    id: int
    type: str = "User"
    site_admin: bool = False
    role_name: str | None = None
    permissions: GitHubPermissions = GitHubPermissions()
    html_url: str | None = None


class GitHubRepo(msgspec.Struct, frozen=True):
    """A repository (GET /repos/{owner}/{repo})."""

    id: int
    name: str
    full_name: str
    private: bool = False
    owner: GitHubAccount | None = None
    description: str | None = None
    html_url: str | None = None
    default_branch: str | None = None
    visibility: str | None = None
    archived: bool = False
    topics: list[str] = []
    open_issues_count: int = 0
    pushed_at: datetime | None = None


# --- Jira (REST API v2 shapes; timestamps stay strings, Jira writes +0000 offsets) ---


class JiraUser(msgspec.Struct, frozen=True, rename="camel"):
    display_name: str | None = None
    account_id: str | None = None
    name: str | None = None
    email_address: str | None = None
    active: bool = True


class JiraNamed(msgspec.Struct, frozen=True):
    """A named Jira object: status, issue type, priority."""

    name: str
    id: str | None = None


class JiraIssueFields(msgspec.Struct, frozen=True):
    summary: str | None = None
    status: JiraNamed | None = None
    issuetype: JiraNamed | None = None
    priority: JiraNamed | None = None
    assignee: JiraUser | None = None
    reporter: JiraUser | None = None
    labels: list[str] = []
    created: str | None = None
    updated: str | None = None


class JiraIssue(msgspec.Struct, frozen=True):
    """An issue of a project (the search API's issue shape)."""

    id: str
    key: str
    fields: JiraIssueFields = JiraIssueFields()


class JiraProject(msgspec.Struct, frozen=True, rename="camel"):
    """A project (GET /rest/api/2/project/{key})."""

    id: str
    key: str
    name: str
    description: str | None = None
    project_type_key: str | None = None
    lead: JiraUser | None = None
    archived: bool = False
