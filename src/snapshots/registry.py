"""The providers and datasets known to this process, resolved from jobs.toml and the built-ins."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from snapshots.config import JobsConfig, ProviderSettings
from snapshots.errors import ConfigError, DatasetDisabled, MalformedKey, UnknownDataset
from snapshots.providers import BUILT_IN
from snapshots.providers.base import DatasetDefinition, ProviderDefinition


@dataclass(frozen=True)
class RegisteredProvider:
    """A provider with its resolved settings; disabled (with the reason) when it lacks a token."""

    definition: ProviderDefinition
    settings: ProviderSettings

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def disabled_reason(self) -> str | None:
        if self.settings.token is None:
            return f"provider {self.name} has no token: set {self.settings.token_source}"
        return None


@dataclass(frozen=True)
class RegisteredDataset:
    """A dataset this process serves: definition, effective TTL, keys kept warm, its provider."""

    definition: DatasetDefinition
    provider: RegisteredProvider
    ttl_seconds: float
    keys: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def enabled(self) -> bool:
        return self.provider.disabled_reason is None

    def check_key(self, key: str) -> None:
        self.definition.key_format.check(self.name, key)


class Registry:
    """Looks up datasets by name and hands out one client per provider, built on first use."""

    def __init__(
        self, providers: Mapping[str, RegisteredProvider], datasets: Mapping[str, RegisteredDataset]
    ) -> None:
        self.providers = dict(providers)
        self.datasets = dict(datasets)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls, config: JobsConfig, built_in: tuple[ProviderDefinition, ...] = BUILT_IN
    ) -> Registry:
        definitions = {p.name: p for p in built_in}
        known_providers = ", ".join(sorted(definitions))
        for name in config.providers:
            if name not in definitions:
                raise ConfigError(
                    f"{config.path}: providers.{name}: unknown provider {name!r} (known providers: {known_providers})"
                )
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
            resolved = dataclasses.replace(
                settings, base_url=settings.base_url or definition.default_base_url
            )
            providers[name] = RegisteredProvider(definition, resolved)

        datasets: dict[str, RegisteredDataset] = {}
        for name, ds in config.datasets.items():
            where = f'{config.path}: datasets."{name}"'
            provider_name, _, _ = name.partition(".")
            if provider_name not in definitions:
                raise ConfigError(
                    f"{where}: unknown provider {provider_name!r} (known providers: {known_providers}); "
                    "dataset names are 'provider.dataset'"
                )
            by_name = {d.name: d for d in definitions[provider_name].datasets}
            if name not in by_name:
                known = ", ".join(sorted(by_name))
                raise ConfigError(f"{where}: unknown dataset (known datasets: {known})")
            dataset_definition = by_name[name]
            for key in ds.keys:
                try:
                    dataset_definition.key_format.check(name, key)
                except MalformedKey as exc:
                    raise ConfigError(f"{where}.keys: {exc.message}") from None
            datasets[name] = RegisteredDataset(
                definition=dataset_definition,
                provider=providers[provider_name],
                ttl_seconds=ds.ttl_seconds or dataset_definition.default_ttl_seconds,
                keys=ds.keys,
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

    def client(self, provider: str) -> Any:
        """The shared client of `provider`, built once so connections and metering are shared."""
        with self._lock:
            if provider not in self._clients:
                registered = self.providers[provider]
                self._clients[provider] = registered.definition.make_client(registered.settings)
            return self._clients[provider]

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
