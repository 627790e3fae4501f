"""PagerDuty (REST API v2, through the `pagerduty` package): schedules' on-call users,
escalation policies and users, and qontract-api's PagerDuty routes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from snapshots.config_types import BudgetLimit
from snapshots.providers.kind import BareRoute, ProviderKind
from snapshots.providers.pagerduty.client import make_client, read_throttle
from snapshots.providers.pagerduty.datasets import DATASETS
from snapshots.providers.pagerduty.mirror import MIRROR
from snapshots.providers.pagerduty.settings import PagerDutySettings, check_instances


def _qontract_api_routes(registry: Any) -> Sequence[Any]:
    """qontract-api's routes; imported when the app is built (they import the API layer)."""
    from snapshots.providers.pagerduty import qontract_api

    return qontract_api.api_routes(registry)


KIND = ProviderKind(
    name="pagerduty",
    settings=PagerDutySettings,
    default_base_url="https://api.pagerduty.com",
    # PagerDuty allows 960 REST requests per minute per account; keep headroom for other users.
    default_budget=BudgetLimit(900, 60.0),
    make_client=make_client,
    read_throttle=read_throttle,
    datasets=DATASETS,
    routes=(
        BareRoute(
            "/schedules/{schedule_id:str}/users",
            "schedule_users",
            "{schedule_id}",
            "Users on call in a schedule, as a JSON list.",
        ),
        BareRoute(
            "/escalation_policies/{policy_id:str}",
            "escalation_policy",
            "{policy_id}",
            "An escalation policy.",
        ),
    ),
    api_routes=_qontract_api_routes,
    mirror=MIRROR,
    check_instances=check_instances,
    docs=Path(__file__).with_name("README.md"),
)
