"""GitHub (REST API, through PyGithub): repository collaborators, repositories, users,
organisations and their members, on github.com or GitHub Enterprise Server."""

from __future__ import annotations

from pathlib import Path

from snapshots.config_types import BudgetLimit
from snapshots.providers.github.client import make_client, read_throttle
from snapshots.providers.github.datasets import DATASETS
from snapshots.providers.github.mirror import MIRROR
from snapshots.providers.github.settings import GithubSettings
from snapshots.providers.kind import BareRoute, ProviderKind

KIND = ProviderKind(
    name="github",
    settings=GithubSettings,
    default_base_url="https://api.github.com",
    # GitHub allows 5,000 requests an hour per token; leave some for people using the same token.
    default_budget=BudgetLimit(4500, 3600.0),
    make_client=make_client,
    read_throttle=read_throttle,
    datasets=DATASETS,
    # Conditional requests answered 304 do not count against GitHub's rate limit.
    free_not_modified=True,
    routes=(
        BareRoute(
            "/repos/{owner:str}/{repo:str}/collaborators",
            "repo_collaborators",
            "{owner}/{repo}",
            "Collaborators of a repository with permissions.",
        ),
        BareRoute("/repos/{owner:str}/{repo:str}", "repo", "{owner}/{repo}", "A repository."),
    ),
    mirror=MIRROR,
    docs=Path(__file__).with_name("README.md"),
)
