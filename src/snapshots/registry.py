"""The provider instances and datasets this process serves, from the decoded jobs.toml.

Definitions only: budgets, gates and clients are the worker side's (`snapshots.upstreams`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from snapshots.config import DatasetSettings, JobsConfig, ProviderConfig
from snapshots.config_types import BudgetLimit, ProviderSettings
from snapshots.errors import DatasetDisabled, UnknownDataset
from snapshots.providers.kind import DatasetDefinition, ProviderKind


@dataclass(frozen=True)
class RegisteredProvider:
    """A provider instance with its resolved settings."""

    config: ProviderConfig

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def kind(self) -> ProviderKind:
        return self.config.kind

    @property
    def settings(self) -> ProviderSettings:
        return self.config.settings

    @property
    def budget_limit(self) -> BudgetLimit:
        """Requests per period: the configured budget, else the kind's default."""
        return self.settings.budget or self.kind.default_budget

    @property
    def disabled_reason(self) -> str | None:
        if self.settings.token is None and self.kind.needs_token:
            return f"provider {self.name} has no token: set {self.config.token_source}"
        return None


@dataclass(frozen=True)
class RegisteredDataset:
    """A dataset this process serves: its full name, definition, effective TTLs, own settings
    and provider instance."""

    name: str  # "<instance>.<dataset>"
    definition: DatasetDefinition
    provider: RegisteredProvider
    ttl_seconds: float
    negative_ttl_seconds: float
    settings: DatasetSettings
    options: Any  # the definition's own settings struct

    @property
    def keys(self) -> tuple[str, ...]:
        return self.settings.keys

    @property
    def enabled(self) -> bool:
        return self.provider.disabled_reason is None

    def check_key(self, key: str) -> None:
        self.definition.key_format.check(self.name, key)


class Registry:
    """Looks up provider instances and datasets by name."""

    def __init__(
        self, providers: Mapping[str, RegisteredProvider], datasets: Mapping[str, RegisteredDataset]
    ) -> None:
        self.providers = dict(providers)
        self.datasets = dict(datasets)

    @classmethod
    def from_config(cls, config: JobsConfig) -> Registry:
        providers = {name: RegisteredProvider(p) for name, p in config.providers.items()}
        datasets: dict[str, RegisteredDataset] = {}
        for name, ds in config.datasets.items():
            definition = ds.definition
            ttl = ds.settings.ttl or definition.default_ttl_seconds
            assert ttl is not None  # the config refuses a dataset with neither
            datasets[name] = RegisteredDataset(
                name=name,
                definition=definition,
                provider=providers[ds.provider],
                ttl_seconds=float(ttl),
                negative_ttl_seconds=float(ds.settings.negative_ttl or config.negative_ttl_seconds),
                settings=ds.settings,
                options=ds.options,
            )
        return cls(providers, datasets)

    def dataset(self, name: str) -> RegisteredDataset:
        """The registered dataset `name`, or UnknownDataset listing the ones that exist."""
        try:
            return self.datasets[name]
        except KeyError:
            known = ", ".join(sorted(self.datasets)) or "none registered"
            raise UnknownDataset(
                f"unknown dataset {name[:80]!r} (registered datasets: {known})"
            ) from None

    def enabled_dataset(self, name: str) -> RegisteredDataset:
        """Like `dataset`, but DatasetDisabled (saying which setting is missing) when it cannot fetch."""
        dataset = self.dataset(name)
        reason = dataset.provider.disabled_reason
        if reason is not None:
            raise DatasetDisabled(f"dataset {name} is disabled: {reason}")
        return dataset
