"""User-defined datasets whose fetch is a function of the operator's: `fetch = "pkg.module:function"`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from snapshots.config import DatasetSettings
from snapshots.errors import ConfigError
from snapshots.providers.base import DatasetDefinition, FetchContext, JSONValue, KeyFormat


def load_function(reference: str, where: str) -> Callable[[Any, str], JSONValue]:
    """Import `package.module:function`, with an error naming what could not be found."""
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{where}.fetch: cannot import module {module_name!r} ({exc.msg})"
        ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError(f"{where}.fetch: module {module_name!r} has no function {attribute!r}")
    return function  # type: ignore[no-any-return]


def dataset_definition(
    provider: str, settings: DatasetSettings, key_format: KeyFormat, where: str
) -> DatasetDefinition:
    """A dataset fetched by `function(client, key)`, where client is the provider's gated client."""
    assert settings.fetch is not None
    function = load_function(settings.fetch, where)

    def fetch(client: Any, key: str, ctx: FetchContext) -> JSONValue:
        return function(client, key)

    return DatasetDefinition(
        name=settings.name,
        provider=provider,
        key_format=key_format,
        default_ttl_seconds=None,
        fetch=fetch,
        description=f"user-defined: {settings.fetch}",
    )
