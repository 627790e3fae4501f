"""The typed settings every provider kind and dataset shares, and the value types of jobs.toml.

Each setting is a field of a msgspec struct with its one default and its bounds; a provider
kind's own settings subclass `ProviderSettings` (tagged by `kind`), a dataset's own settings
are the struct its definition names. `snapshots.config` reads the file into these.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

from snapshots.shrink import ShrinkGuard

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_DURATION_SECONDS = 365 * 86400.0  # longer ones overflow datetime arithmetic, or are typos
_BUDGET = re.compile(r"\s*(\d+)\s*/\s*(.+?)\s*")


def parse_duration(text: str) -> float:
    """Parse "30s", "5m", "1h", "2d" or "250ms" into seconds; raise ValueError saying the format."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"bad duration {text!r}: use a number and a unit, like '30s', '5m', '1h'")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"bad duration {text!r}: it must be greater than zero")
    if not seconds <= MAX_DURATION_SECONDS:
        raise ValueError(f"bad duration {text!r}: it must be at most 365d")
    return seconds


class Duration(float):
    """Seconds, written in jobs.toml as a number and a unit ("30s", "5m", "250ms")."""

    @classmethod
    def decode(cls, value: object) -> Duration:
        if not isinstance(value, str):
            raise TypeError(f"must be a string, like '30s', got {type(value).__name__}")
        return cls(parse_duration(value))


class Secret:
    """A credential that never shows itself in repr, str or logs; `reveal()` is the only way out."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class BudgetLimit:
    """At most `requests` upstream requests per `period_seconds` for one provider.

    A plain class, not a dataclass: msgspec would decode a dataclass from a table, and
    jobs.toml writes a budget as one string ("900/60s")."""

    __slots__ = ("period_seconds", "requests")

    def __init__(self, requests: int, period_seconds: float) -> None:
        self.requests = requests
        self.period_seconds = period_seconds

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BudgetLimit) and (other.requests, other.period_seconds) == (
            self.requests,
            self.period_seconds,
        )

    def __hash__(self) -> int:
        return hash((self.requests, self.period_seconds))

    def __repr__(self) -> str:
        return f"BudgetLimit({self.requests}, {self.period_seconds})"

    @classmethod
    def parse(cls, text: str) -> BudgetLimit:
        match = _BUDGET.fullmatch(text)
        if not match:
            raise ValueError(f"bad budget {text!r}: use 'N/period', like '900/60s'")
        requests = int(match.group(1))
        if requests <= 0:
            raise ValueError(f"bad budget {text!r}: the request count must be at least 1")
        return cls(requests, parse_duration(match.group(2)))

    @classmethod
    def decode(cls, value: object) -> BudgetLimit:
        if not isinstance(value, str):
            raise TypeError(f"must be a string like '900/60s', got {type(value).__name__}")
        return cls.parse(value)

    def __str__(self) -> str:
        return f"{self.requests}/{self.period_seconds:g}s"


# msgspec searches these; \Z, unlike $, does not let a trailing newline through.
_FETCH_REFERENCE = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*\Z"
_HTTP_URL = r"^https?://[^/\s]+(?:/\S*)?\Z"
PATTERN_HINTS = {
    _FETCH_REFERENCE: "must be 'package.module:function'",
    _HTTP_URL: "must be an http:// or https:// URL (without spaces)",
}
"""What to write instead, for each string pattern a setting must match."""

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
FetchReference = Annotated[str, msgspec.Meta(pattern=_FETCH_REFERENCE)]
HttpUrl = Annotated[str, msgspec.Meta(pattern=_HTTP_URL)]


class ProviderSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="kind"):
    """What every provider instance accepts in `[providers.<name>]`; kinds add their own."""

    base_url: HttpUrl | None = None  # the kind's default when unset
    token: Secret | None = None  # or token_file, or SNAPSHOTS_<NAME>_TOKEN
    token_file: str | None = None
    budget: BudgetLimit | None = None  # the kind's default when unset
    timeout: Duration = Duration(30.0)
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 3
    max_throttle_wait: Duration = Duration(60.0)
    # The mirror answers its kind's paths only ("paths"), or caches any GET path too ("any",
    # in the dataset <instance>.mirror_any, which is then registered with its defaults).
    mirror: Literal["paths", "any"] = "paths"


class DatasetSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What every dataset accepts in `[datasets."<instance>.<dataset>"]`; its own settings
    (a search filter, an http `url`) are the struct its definition names."""

    ttl: Duration | None = None  # the definition's default; required for user-defined datasets
    keys: tuple[NonEmpty, ...] = ()  # registered at start, refreshed whether read or not
    fetch: FetchReference | None = None  # "package.module:function" for a user-defined dataset
    negative_ttl: Duration | None = None  # the service's negative_ttl when unset
    key_pattern: str | None = None
    key_example: str | None = None
    max_keys: Annotated[int, msgspec.Meta(ge=0, le=10**6)] = 1000  # on-demand keys at most
    idle_retire: Duration = Duration(7 * 86400.0)  # on-demand keys unread this long are retired
    min_refresh_interval: Duration = Duration(
        10.0
    )  # forced refreshes of one key at most this often
    shrink_guard: ShrinkGuard = msgspec.field(default_factory=ShrinkGuard)
    keep: Duration = Duration(90 * 86400.0)  # versions superseded longer ago are pruned


class NoOptions(msgspec.Struct, forbid_unknown_fields=True):
    """The own settings of a dataset that has none."""
