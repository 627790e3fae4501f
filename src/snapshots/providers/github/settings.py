"""`[providers.<name>] kind = "github"`: github.com or a GitHub Enterprise Server."""

from __future__ import annotations

from typing import Annotated

import msgspec

from snapshots.config_types import ProviderSettings


class GithubSettings(ProviderSettings, tag="github"):
    """A GitHub API (`base_url` https://ghe.example/api/v3 for Enterprise Server)."""

    page_size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 100  # items per list page
