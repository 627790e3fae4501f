"""Jira (Cloud and Server/DC, through the `jira` library): a project's issues and projects."""

from __future__ import annotations

from pathlib import Path

from snapshots.config_types import BudgetLimit
from snapshots.providers.jira.client import check_settings, make_client
from snapshots.providers.jira.datasets import DATASETS
from snapshots.providers.jira.mirror import MIRROR
from snapshots.providers.jira.settings import JiraSettings
from snapshots.providers.kind import BareRoute, ProviderKind

KIND = ProviderKind(
    name="jira",
    settings=JiraSettings,
    default_base_url="https://your-site.atlassian.net",
    # Jira Cloud's limits are cost-based and undisclosed; one request a second stays well clear.
    default_budget=BudgetLimit(1, 1.0),
    make_client=make_client,
    check_settings=check_settings,
    datasets=DATASETS,
    routes=(
        BareRoute("/projects/{project:str}", "project", "{project}", "A project."),
        BareRoute(
            "/projects/{project:str}/issues",
            "project_issues",
            "{project}",
            "Every issue of a project.",
        ),
    ),
    mirror=MIRROR,
    docs=Path(__file__).with_name("README.md"),
)
