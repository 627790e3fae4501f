"""User-defined datasets whose fetch is a function of the operator's: `fetch = "pkg.module:function"`,
on any provider instance's gated client."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snapshots.errors import ConfigError
from snapshots.providers.kind import DatasetDefinition, FetchContext, JSONValue, KeyFormat

ANY_KEY = KeyFormat(
    pattern=r"[A-Za-z0-9][A-Za-z0-9._/:-]{0,199}",
    description="letters, digits and . _ / : - (set key_pattern to be stricter)",
    example="acme/repo-01",
)


def load_function(reference: str, file: Path, where: str) -> Callable[[Any, str], JSONValue]:
    """Import `package.module:function`, with an error naming what could not be found."""
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{file}: {where}.fetch: cannot import module {module_name!r} ({exc.msg})"
        ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError(
            f"{file}: {where}.fetch: module {module_name!r} has no function {attribute!r}"
        )
    return function  # type: ignore[no-any-return]


def dataset_definition(name: str, reference: str, file: Path, where: str) -> DatasetDefinition:
    """A dataset fetched by `function(client, key)`, where client is the provider's gated client."""
    function = load_function(reference, file, where)

    def fetch(client: Any, key: str, ctx: FetchContext) -> JSONValue:
        return function(client, key)

    return DatasetDefinition(
        name=name,
        key_format=ANY_KEY,
        default_ttl_seconds=None,
        fetch=fetch,
        description=f"user-defined: {reference}",
    )


def with_key_format(definition: DatasetDefinition, key_format: KeyFormat) -> DatasetDefinition:
    """The definition with the key format the operator set (`key_pattern`, `key_example`)."""
    return dataclasses.replace(definition, key_format=key_format)
