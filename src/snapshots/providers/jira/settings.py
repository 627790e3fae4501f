"""`[providers.<name>] kind = "jira"` and the own settings of `project_issues`."""

from __future__ import annotations

from typing import Literal

import msgspec

from snapshots.config_types import NonEmpty, ProviderSettings

DEFAULT_FIELDS = (
    "summary",
    "status",
    "assignee",
    "reporter",
    "issuetype",
    "priority",
    "created",
    "updated",
)


class JiraSettings(ProviderSettings, tag="jira"):
    """A Jira site: Cloud (API token with the account's email) or Server/DC (personal token)."""

    email: str | None = None  # required for Cloud
    deployment: Literal["cloud", "server"] | None = None  # guessed from the host when unset


class ProjectIssuesOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`[datasets."<instance>.project_issues"]`: which issues and fields to keep."""

    jql: str | None = None  # narrows `project = KEY`
    fields: tuple[NonEmpty, ...] = DEFAULT_FIELDS
