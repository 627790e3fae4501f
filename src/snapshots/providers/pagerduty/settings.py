"""`[providers.<name>] kind = "pagerduty"`: the common settings only."""

from __future__ import annotations

from snapshots.config_types import ProviderSettings


class PagerDutySettings(ProviderSettings, tag="pagerduty"):
    """A PagerDuty account (REST API v2)."""
