"""What a provider module declares: its datasets (key format, TTL, fetch) and its client factory."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from snapshots.config import ProviderSettings
from snapshots.errors import MalformedKey

JSONValue = Any
"""A JSON-compatible value (dicts, lists, strings, numbers, booleans, None)."""


@dataclass(frozen=True)
class KeyFormat:
    """The shape of a dataset's key, checked before any upstream call."""

    pattern: str
    description: str
    example: str

    def check(self, dataset: str, key: str) -> None:
        if len(key) > 200 or not re.fullmatch(self.pattern, key):
            raise MalformedKey(
                f"key {key[:80]!r} is not a valid {dataset} key: "
                f"expected {self.description}, like {self.example!r}"
            )


@dataclass(frozen=True)
class FetchContext:
    """What a fetch may know besides the key: the time it runs and the dataset's TTL."""

    now: datetime
    ttl_seconds: float


@dataclass(frozen=True)
class DatasetDefinition:
    """A kind of data of one provider. `fetch(client, key, ctx)` returns the JSON payload."""

    name: str
    provider: str
    key_format: KeyFormat
    default_ttl_seconds: float
    fetch: Callable[[Any, str, FetchContext], JSONValue]
    description: str


@dataclass(frozen=True)
class ProviderDefinition:
    """An upstream service: its default base URL and how to build its (metered) client.

    `make_client` receives settings whose `base_url` is already resolved (never None).
    """

    name: str
    default_base_url: str
    make_client: Callable[[ProviderSettings], Any]
    datasets: tuple[DatasetDefinition, ...]
