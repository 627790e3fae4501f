"""Typed views of the built-in datasets' data (the API's own shapes are in `snapshots_client.wire`).

The typed views name the fields integrations use; unknown fields are ignored, so an upstream
adding fields never breaks a client. For every field, `get(...).data` has the raw object.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

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
