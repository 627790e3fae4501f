"""The one interface between the shared machinery and a provider kind.

A kind (`providers/<kind>/`) declares its settings struct, default base URL and budget, how to
build its client on the gated transport, how to read its throttle headers, its datasets (key
format, fetch, the schema a payload must match, their own settings) and its routes. Budget,
gate, refresher, store and API know providers only through `ProviderKind`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from snapshots.config_types import BudgetLimit, NoOptions, ProviderSettings
from snapshots.errors import MalformedKey, UpstreamError
from snapshots.providers.throttle import ReadThrottle, standard
from snapshots.providers.transport import UpstreamGate

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
        # Keys go into upstream URL paths, where '.' and '..' segments would climb out of the
        # resource (acme/.. is GET /repos/acme/.. = GET /repos): refused whatever the pattern.
        if any(segment in (".", "..") for segment in key.split("/")):
            raise MalformedKey(
                f"key {key[:80]!r} is not a valid {dataset} key: it has a '.' or '..' path"
                f" segment; expected {self.description} without them, like {self.example!r}"
            )


@dataclass(frozen=True)
class FetchContext:
    """What a fetch may know besides the key: the time, the dataset's TTL, its own settings and
    the provider instance's settings."""

    now: datetime
    ttl_seconds: float
    options: Any = field(default_factory=NoOptions)  # the dataset's own settings struct
    provider: ProviderSettings | None = None


Fetch = Callable[[Any, str, FetchContext], JSONValue]


@dataclass(frozen=True)
class DatasetDefinition:
    """A kind of data of one provider kind. `fetch(client, key, ctx)` returns the JSON payload,
    which must decode as `schema` (when set) to be stored.

    `name` is local to the kind ("schedule_users"); an instance serves it as
    "<instance>.<name>".
    """

    name: str
    key_format: KeyFormat
    default_ttl_seconds: float | None
    fetch: Fetch
    description: str
    options: type[msgspec.Struct] = NoOptions  # the dataset's own settings in jobs.toml
    schema: Any = None  # a msgspec type the payload must match, None for any JSON

    def validate(self, dataset: str, key: str, payload: JSONValue) -> None:
        """Refuse a payload that does not match the schema: it is not stored."""
        if self.schema is None:
            return
        try:
            msgspec.convert(payload, self.schema)
        except msgspec.ValidationError as exc:
            raise UpstreamError(
                f"{dataset} {key}: the upstream answer does not match the expected shape ({exc})"
            ) from None


@dataclass(frozen=True)
class BareRoute:
    """A route in the shape integrations already call: the dataset's data as the body, freshness
    in headers. `path` is below `/api/v1/<instance>`; `key` builds the key from its path
    parameters, like "{owner}/{repo}"."""

    path: str
    dataset: str
    key: str
    summary: str

    def key_from(self, params: Mapping[str, Any]) -> str:
        return self.key.format_map({k: str(v) for k, v in params.items()})

    def operation_id(self, instance: str) -> str:
        """The route's OpenAPI operation id on `instance` (unique across instances)."""
        return re.sub(r"\W", "_", f"{instance}_{self.dataset}")


@dataclass(frozen=True)
class MirrorRequest:
    """What a mirror route is given: the path's named groups, the query (the last value of each
    parameter, as GitHub reads it; `queries` has them all), this instance's mirror root URL
    (for links that must point back into the mirror), and `read(dataset, key)`: the data of one
    of the instance's datasets (local name), read as a snapshot (cold miss within the read wait,
    stale-if-error)."""

    instance: str
    params: Mapping[str, str]
    query: Mapping[str, str]
    mirror_url: str
    read: Callable[[str, str], Awaitable[Any]]
    upstream_url: str  # the instance's base_url: links to it in bodies are rewritten to mirror_url
    settings: Any = None  # the instance's settings struct (answers made from configuration)
    # A dataset's own settings struct (local name), None when it is not configured: what the
    # snapshot holds (a filter, the fields kept) decides which requests it can answer exactly.
    options: Callable[[str], Any] = field(default=lambda _dataset: None)
    # Every value of each query parameter (Jira repeats `fields=`), where `query` has the first.
    queries: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class MirrorAnswer:
    """A mirror route's answer in the upstream's shape; freshness headers are added to it."""

    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int = 200  # anything else is an upstream-shaped error, sent without freshness


@dataclass(frozen=True)
class MirrorRoute:
    """A GET path the mirror answers: `pattern` is a full-match regex over the path below
    `/mirror/<instance>` (named groups become `params`); `shows` is how errors list it."""

    pattern: str
    shows: str
    answer: Callable[[MirrorRequest], Awaitable[MirrorAnswer]]


@dataclass(frozen=True)
class Mirror:
    """A kind's upstream-shaped mirror: its routes, how its library sends a token (the
    Authorization header to the gateway token it carries, or None), and its error body."""

    routes: tuple[MirrorRoute, ...]
    token: Callable[[str], str | None]
    error: Callable[[int, str], Any]


@dataclass(frozen=True)
class ProviderKind:
    """A provider kind: everything the shared machinery may ask of it.

    `make_client(settings, gate)` receives settings whose `base_url` is resolved and must route
    every HTTP request of the client through `gate`. `user_dataset`, when set, makes a dataset
    from a name the kind does not define (the generic http kind's `url` datasets).
    """

    name: str
    settings: type[ProviderSettings]
    default_base_url: str | None
    default_budget: BudgetLimit
    make_client: Callable[[Any, UpstreamGate], Any]
    datasets: tuple[DatasetDefinition, ...]
    read_throttle: ReadThrottle = standard
    routes: tuple[BareRoute, ...] = ()
    # Routes served once for the kind, in consumers' shapes (qontract-api's): given the
    # Registry, the Litestar route handlers (which raise ConfigError for settings that clash).
    api_routes: Callable[[Any], Sequence[Any]] | None = None
    mirror: Mirror | None = None  # `/mirror/<instance>/...` in the upstream's own shapes
    check_settings: Callable[[Any], str | None] | None = None  # "key: problem", or None
    # Across the kind's instances (settings by instance name): "key: problem", or None.
    check_instances: Callable[[Mapping[str, Any]], str | None] | None = None
    needs_token: bool = True  # without one its datasets are disabled
    free_not_modified: bool = False  # 304 answers do not count against the upstream's limit
    user_dataset: Callable[[str], DatasetDefinition] | None = None
    docs: Path | None = None  # the analyst-view documentation (README.md in the package)

    def dataset(self, name: str) -> DatasetDefinition | None:
        for definition in self.datasets:
            if definition.name == name:
                return definition
        return None
