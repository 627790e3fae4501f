"""`[providers.<name>] kind = "pagerduty"`: the common settings, and the secret references
qontract-api's consumers send that select this instance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from snapshots.config_types import ProviderSettings


class PagerDutySettings(ProviderSettings, tag="pagerduty"):
    """A PagerDuty account (REST API v2)."""

    # The `path` query parameter (the Vault path of the PagerDuty token) of qontract-api's
    # routes that this instance answers. With one PagerDuty instance any path selects it.
    secret_paths: list[str] = msgspec.field(default_factory=list)


def check_instances(instances: Mapping[str, Any]) -> str | None:
    """A secret path must select one instance: listed by two, it is a configuration error."""
    owners: dict[str, str] = {}
    for name, settings in instances.items():
        for secret_path in getattr(settings, "secret_paths", []):
            other = owners.setdefault(secret_path, name)
            if other != name:
                return (
                    f"providers.{name}.secret_paths: {secret_path!r} is also listed by "
                    f"providers.{other}; a secret path must select one PagerDuty instance"
                )
    return None
