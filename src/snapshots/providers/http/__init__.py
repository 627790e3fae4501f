"""The generic http kind: any JSON API the operator describes in jobs.toml (a `url` per dataset,
its pagination, the auth header)."""

from __future__ import annotations

from pathlib import Path

from snapshots.config_types import BudgetLimit
from snapshots.providers.http.client import check_settings, make_client
from snapshots.providers.http.datasets import url_dataset
from snapshots.providers.http.settings import HttpSettings
from snapshots.providers.kind import ProviderKind

KIND = ProviderKind(
    name="http",
    settings=HttpSettings,
    default_base_url=None,
    default_budget=BudgetLimit(60, 60.0),
    make_client=make_client,
    check_settings=check_settings,
    datasets=(),
    needs_token=False,
    user_dataset=url_dataset,
    docs=Path(__file__).with_name("README.md"),
)
