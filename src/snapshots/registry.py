"""The providers and datasets known to this process, resolved from jobs.toml and the built-ins.

Definitions only: budgets, gates and clients are the worker side's (`snapshots.upstreams`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from snapshots.config import BudgetLimit, DatasetSettings, JobsConfig, ProviderSettings
from snapshots.errors import ConfigError, DatasetDisabled, MalformedKey, UnknownDataset
from snapshots.providers import BUILT_IN, custom, http
from snapshots.providers.base import DatasetDefinition, KeyFormat, ProviderDefinition


@dataclass(frozen=True)
class RegisteredProvider:
    """A provider with its resolved settings."""

    definition: ProviderDefinition
    settings: ProviderSettings

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def budget_limit(self) -> BudgetLimit | None:
        """Requests per period: the configured budget, else the provider's default."""
        return self.settings.budget or self.definition.default_budget

    @property
    def disabled_reason(self) -> str | None:
        if self.settings.token is None and self.settings.kind != "http":
            return f"provider {self.name} has no token: set {self.settings.token_source}"
        return None


@dataclass(frozen=True)
class RegisteredDataset:
    """A dataset this process serves: definition, effective TTLs and options, its provider."""

    definition: DatasetDefinition
    provider: RegisteredProvider
    ttl_seconds: float
    negative_ttl_seconds: float
    keys: tuple[str, ...]
    options: Mapping[str, Any]
    settings: DatasetSettings

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def enabled(self) -> bool:
        return self.provider.disabled_reason is None

    def check_key(self, key: str) -> None:
        self.definition.key_format.check(self.name, key)


def _provider(
    definition: ProviderDefinition, settings: ProviderSettings, where: str
) -> RegisteredProvider:
    unknown = sorted(set(settings.options) - definition.options)
    if unknown:
        accepted = ", ".join(sorted(definition.options)) or "none"
        raise ConfigError(
            f"{where}.{unknown[0]}: not a setting of {definition.name} (its own settings: {accepted})"
        )
    resolved = dataclasses.replace(
        settings, base_url=settings.base_url or definition.default_base_url
    )
    problem = (
        definition.check_settings(resolved)
        if definition.check_settings and resolved.token
        else None
    )
    if problem is not None:
        raise ConfigError(f"{where}.{problem}")
    return RegisteredProvider(definition, resolved)


def _providers(
    config: JobsConfig, built_in: tuple[ProviderDefinition, ...]
) -> dict[str, RegisteredProvider]:
    definitions = {p.name: p for p in built_in}
    known = ", ".join(sorted(definitions))
    for name, settings in config.providers.items():
        where = f"{config.path}: providers.{name}"
        if name in definitions and settings.kind == "http":
            raise ConfigError(
                f"{where}.kind: {name} is built in; give a user-defined provider another name"
            )
        if name not in definitions and settings.kind != "http":
            raise ConfigError(
                f'{where}: unknown provider {name!r} (known providers: {known}; or set kind = "http")'
            )
        if settings.kind == "http" and settings.base_url is None:
            raise ConfigError(f"{where}.base_url: required for a provider of kind http")
    providers: dict[str, RegisteredProvider] = {}
    for name, definition in definitions.items():
        settings = config.providers.get(name) or ProviderSettings(
            name=name,
            base_url=None,
            token=None,
            budget=None,
            timeout_seconds=30.0,
            token_source=f"SNAPSHOTS_{name.upper()}_TOKEN",
        )
        providers[name] = _provider(definition, settings, f"{config.path}: providers.{name}")
    for name, settings in config.providers.items():
        if settings.kind == "http":
            providers[name] = _provider(
                http.provider_definition(settings), settings, f"{config.path}: providers.{name}"
            )
    return providers


def _definition(
    settings: DatasetSettings, provider: RegisteredProvider, where: str
) -> DatasetDefinition:
    """The built-in definition of a dataset, or one made from its `fetch` or `url` settings."""
    by_name = {d.name: d for d in provider.definition.datasets}
    key_format = KeyFormat(
        pattern=settings.key_pattern or http.GENERIC_KEY.pattern,
        description=f"a key matching {settings.key_pattern}"
        if settings.key_pattern
        else http.GENERIC_KEY.description,
        example=settings.key_example or http.GENERIC_KEY.example,
    )
    if settings.name in by_name:
        definition = by_name[settings.name]
    elif settings.fetch is not None:
        definition = custom.dataset_definition(provider.name, settings, key_format, where)
    elif provider.settings.kind == "http" and "url" in settings.options:
        definition = http.dataset_definition(provider.name, settings, key_format)
    else:
        known = ", ".join(sorted(by_name)) or "none built in"
        hint = (
            "set url"
            if provider.settings.kind == "http"
            else "or set fetch = 'package.module:function'"
        )
        raise ConfigError(
            f"{where}: unknown dataset (known datasets of {provider.name}: {known}; {hint})"
        )
    unknown = sorted(set(settings.options) - definition.options)
    if unknown:
        accepted = ", ".join(sorted(definition.options)) or "none"
        raise ConfigError(
            f"{where}.{unknown[0]}: not a setting of {settings.name} (its own settings: {accepted})"
        )
    return definition


class Registry:
    """Looks up providers and datasets by name."""

    def __init__(
        self, providers: Mapping[str, RegisteredProvider], datasets: Mapping[str, RegisteredDataset]
    ) -> None:
        self.providers = dict(providers)
        self.datasets = dict(datasets)

    @classmethod
    def from_config(
        cls, config: JobsConfig, built_in: tuple[ProviderDefinition, ...] = BUILT_IN
    ) -> Registry:
        providers = _providers(config, built_in)
        known_providers = ", ".join(sorted(providers))
        datasets: dict[str, RegisteredDataset] = {}
        for name, ds in config.datasets.items():
            where = f'{config.path}: datasets."{name}"'
            provider_name, dot, rest = name.partition(".")
            if not dot or not rest:
                raise ConfigError(
                    f"{where}: dataset names are 'provider.dataset', like 'pagerduty.schedule_users'"
                )
            if provider_name not in providers:
                raise ConfigError(
                    f"{where}: unknown provider {provider_name!r} (known providers: {known_providers})"
                )
            provider = providers[provider_name]
            definition = _definition(ds, provider, where)
            ttl = ds.ttl_seconds or definition.default_ttl_seconds
            if ttl is None:
                raise ConfigError(f"{where}.ttl: required for a user-defined dataset, like '5m'")
            for key in ds.keys:
                try:
                    definition.key_format.check(name, key)
                except MalformedKey as exc:
                    raise ConfigError(f"{where}.keys: {exc.message}") from None
            datasets[name] = RegisteredDataset(
                definition=definition,
                provider=provider,
                ttl_seconds=ttl,
                negative_ttl_seconds=ds.negative_ttl_seconds or config.negative_ttl_seconds,
                keys=ds.keys,
                options=ds.options,
                settings=ds,
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
