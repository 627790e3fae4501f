"""Settings from the environment and jobs.toml, validated with errors that name the file and key."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from snapshots.errors import ConfigError
from snapshots.shrink import ShrinkGuard

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BUDGET = re.compile(r"^\s*(\d+)\s*/\s*(.+)$")


def parse_duration(text: str) -> float:
    """Parse "30s", "5m", "1h", "2d" or "250ms" into seconds; raise ValueError saying the format."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"bad duration {text!r}: use a number and a unit, like '30s', '5m', '1h'")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"bad duration {text!r}: it must be greater than zero")
    return seconds


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


@dataclass(frozen=True)
class BudgetLimit:
    """At most `requests` upstream requests per `period_seconds` for one provider."""

    requests: int
    period_seconds: float

    @classmethod
    def parse(cls, text: str) -> BudgetLimit:
        match = _BUDGET.match(text)
        if not match:
            raise ValueError(f"bad budget {text!r}: use 'N/period', like '900/60s'")
        requests = int(match.group(1))
        if requests <= 0:
            raise ValueError(f"bad budget {text!r}: the request count must be at least 1")
        return cls(requests, parse_duration(match.group(2)))

    def __str__(self) -> str:
        return f"{self.requests}/{self.period_seconds:g}s"


@dataclass(frozen=True)
class ProviderSettings:
    """One upstream service as configured: where it is, how to authenticate, how much to spend."""

    name: str
    base_url: str | None
    token: Secret | None
    budget: BudgetLimit | None
    timeout_seconds: float
    token_source: str  # where the token is expected, for "disabled" messages (never the token)
    kind: str = "builtin"  # "http" for a user-defined provider on the generic HTTP client
    concurrency: int = 4
    max_retries: int = 3
    max_throttle_wait_seconds: float = 60.0
    options: Mapping[str, Any] = field(default_factory=dict)  # email, deployment, auth_*, headers


@dataclass(frozen=True)
class DatasetSettings:
    """One registered dataset as configured; the registry fills defaults from the dataset's definition."""

    name: str
    ttl_seconds: float | None
    keys: tuple[str, ...]
    fetch: str | None = None  # "package.module:function" for a user-defined dataset
    negative_ttl_seconds: float | None = None
    key_pattern: str | None = None
    key_example: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # url, items, paginate, jql, fields...
    max_keys: int = 1000  # keys registered on demand (first reads) at most
    idle_retire_seconds: float = 7 * 86400.0  # on-demand keys unread this long are retired
    min_refresh_interval_seconds: float = 10.0  # forced refreshes of one key at most this often
    shrink_guard: ShrinkGuard = field(default_factory=ShrinkGuard)
    keep_seconds: float = 90 * 86400.0  # versions superseded longer ago are pruned


@dataclass(frozen=True)
class ApiSettings:
    """The read API: who may call it, and how it answers caches."""

    tokens_file: Path | None = None  # lines of "name role sha256"; none: open on loopback only
    cache_mib: int = 64  # memory for pre-encoded latest snapshots
    stale_if_error_seconds: int = 86400  # what Cache-Control offers caches when we fail
    access_log: bool = True


@dataclass(frozen=True)
class JobsConfig:
    """The parsed jobs.toml with environment overrides applied."""

    path: Path
    providers: Mapping[str, ProviderSettings]
    datasets: Mapping[str, DatasetSettings]
    read_wait_seconds: float = 10.0
    refresh_ahead: float = 0.8
    negative_ttl_seconds: float = 60.0
    shutdown_grace_seconds: float = 10.0
    maintenance_interval_seconds: float = 30.0
    keep_runs_seconds: float = 30 * 86400.0  # refresh runs older than this are pruned
    leader_check_seconds: float = 2.0  # how often the active worker checks its lock
    api: ApiSettings = field(default_factory=ApiSettings)


@dataclass(frozen=True)
class Settings:
    """Process settings from the environment (SNAPSHOTS_*)."""

    database_url: str | None
    data_dir: Path
    config_path: Path = field(default=Path("jobs.toml"))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = env.get("SNAPSHOTS_DATA_DIR") or platformdirs.user_data_dir("snapshots")
        return cls(
            database_url=env.get("SNAPSHOTS_DATABASE_URL") or None,
            data_dir=Path(data_dir).expanduser(),
            config_path=Path(env.get("SNAPSHOTS_CONFIG") or "jobs.toml"),
        )


_TOP_KEYS = {"service", "api", "providers", "datasets"}
_API_KEYS = {"tokens_file", "cache_mib", "stale_if_error", "access_log"}
_SERVICE_KEYS = {
    "read_wait",
    "refresh_ahead",
    "negative_ttl",
    "shutdown_grace",
    "maintenance_interval",
    "keep_runs",
    "leader_check",
}
_PROVIDER_OPTIONS = {"email", "deployment", "auth_header", "auth_template", "headers", "page_size"}
_PROVIDER_KEYS = {
    "base_url", "token", "token_file", "budget", "timeout", "kind", "concurrency",
    "max_retries", "max_throttle_wait", *_PROVIDER_OPTIONS,
}  # fmt: skip
_DATASET_OPTIONS = {"url", "items", "paginate", "page_size", "params", "jql", "fields"}
_DATASET_KEYS = {
    "ttl", "keys", "fetch", "negative_ttl", "key_pattern", "key_example", "max_keys",
    "idle_retire", "min_refresh_interval", "shrink_guard", "keep", *_DATASET_OPTIONS,
}  # fmt: skip
_SHRINK_KEYS = {"enabled", "empty_from", "below", "min_items", "accept_after"}
_CHOICES = {
    "kind": {"http"},
    "deployment": {"cloud", "server"},
    "paginate": {"none", "link", "page", "offset"},
}
_FETCH_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_DEFAULT_TIMEOUT = 30.0


class _Reader:
    """Walks the TOML tree and raises ConfigError naming the file and the dotted key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, what: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {what}")

    def table(self, value: object, where: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a table, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            known = ", ".join(sorted(allowed))
            raise self.fail(where, f"unknown key {unknown[0]!r} (known keys: {known})")
        return value

    def string(self, table: Mapping[str, Any], name: str, where: str) -> str | None:
        value = table.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{where}.{name}", f"must be a string, got {type(value).__name__}")
        return value

    def integer(
        self, table: Mapping[str, Any], name: str, where: str, low: int, high: int
    ) -> int | None:
        value = table.get(name)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(f"{where}.{name}", f"must be a whole number from {low} to {high}")
        return value

    def choice(self, table: Mapping[str, Any], name: str, where: str) -> str | None:
        value = self.string(table, name, where)
        if value is not None and value not in _CHOICES[name]:
            raise self.fail(
                f"{where}.{name}", f"must be one of {', '.join(sorted(_CHOICES[name]))}"
            )
        return value

    def string_list(
        self, table: Mapping[str, Any], name: str, where: str
    ) -> tuple[str, ...] | None:
        value = table.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{where}.{name}", "must be a list of non-empty strings")
        return tuple(value)

    def string_table(
        self, table: Mapping[str, Any], name: str, where: str
    ) -> dict[str, str] | None:
        value = table.get(name)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.fail(f"{where}.{name}", "must be a table of strings")
        return dict(value)

    def boolean(self, table: Mapping[str, Any], name: str, where: str) -> bool | None:
        value = table.get(name)
        if value is not None and not isinstance(value, bool):
            raise self.fail(f"{where}.{name}", "must be true or false")
        return value

    def fraction(self, table: Mapping[str, Any], name: str, where: str) -> float | None:
        value = table.get(name)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < 1:
            raise self.fail(f"{where}.{name}", "must be a number between 0 and 1, like 0.5")
        return float(value)

    def duration(self, table: Mapping[str, Any], name: str, where: str) -> float | None:
        value = self.string(table, name, where)
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.fail(f"{where}.{name}", str(exc)) from None


def _expand_env(value: str | None, env: Mapping[str, str]) -> str | None:
    """Replace ${VAR} with the environment's value; an empty result counts as unset."""
    if value is None:
        return None
    expanded = _ENV_REF.sub(lambda m: env.get(m.group(1), ""), value)
    return expanded or None


def _token_source(table: Mapping[str, Any], name: str) -> str:
    env_name = f"SNAPSHOTS_{name.upper()}_TOKEN"
    if isinstance(table.get("token_file"), str):
        return f"token_file {table['token_file']} or {env_name}"
    raw = table.get("token")
    if isinstance(raw, str):
        refs = _ENV_REF.findall(raw)
        if refs:
            return f"{refs[0]} or {env_name}"
    return f"providers.{name}.token or {env_name}"


def _provider(reader: _Reader, name: str, raw: object, env: Mapping[str, str]) -> ProviderSettings:
    where = f"providers.{name}"
    table = reader.table(raw, where, _PROVIDER_KEYS)
    prefix = f"SNAPSHOTS_{name.upper()}_"
    base_url = env.get(prefix + "BASE_URL") or _expand_env(
        reader.string(table, "base_url", where), env
    )
    if base_url is not None and not re.match(r"^https?://[^/\s]+", base_url):
        raise reader.fail(
            f"{where}.base_url", f"must be an http:// or https:// URL, got {base_url!r}"
        )
    token = env.get(prefix + "TOKEN") or _expand_env(reader.string(table, "token", where), env)
    token_file = reader.string(table, "token_file", where)
    if token is None and token_file is not None:
        token_path = (reader.path.parent / Path(token_file).expanduser()).resolve()
        try:
            token = token_path.read_text().strip() or None
        except OSError as exc:
            raise reader.fail(
                f"{where}.token_file", f"cannot read {token_path}: {exc.strerror}"
            ) from None
    budget_text = env.get(prefix + "BUDGET") or reader.string(table, "budget", where)
    try:
        budget = BudgetLimit.parse(budget_text) if budget_text else None
    except ValueError as exc:
        raise reader.fail(f"{where}.budget", str(exc)) from None
    timeout = reader.duration(table, "timeout", where) or _DEFAULT_TIMEOUT
    options: dict[str, Any] = {
        "email": _expand_env(reader.string(table, "email", where), env),
        "deployment": reader.choice(table, "deployment", where),
        "auth_header": reader.string(table, "auth_header", where),
        "auth_template": reader.string(table, "auth_template", where),
        "page_size": reader.integer(table, "page_size", where, 1, 100),
        "headers": reader.string_table(table, "headers", where),
    }
    return ProviderSettings(
        name=name,
        base_url=base_url.rstrip("/") if base_url else None,
        token=Secret(token) if token else None,
        budget=budget,
        timeout_seconds=timeout,
        token_source=_token_source(table, name),
        kind=reader.choice(table, "kind", where) or "builtin",
        concurrency=reader.integer(table, "concurrency", where, 1, 64) or 4,
        max_retries=_or(reader.integer(table, "max_retries", where, 0, 10), 3),
        max_throttle_wait_seconds=reader.duration(table, "max_throttle_wait", where) or 60.0,
        options={k: v for k, v in options.items() if v is not None},
    )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _or_bool(value: bool | None, default: bool) -> bool:
    return default if value is None else value


def _or_float(value: float | None, default: float) -> float:
    return default if value is None else value


def _dataset(reader: _Reader, name: str, raw: object) -> DatasetSettings:
    where = f'datasets."{name}"'
    table = reader.table(raw, where, _DATASET_KEYS)
    keys = table.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise reader.fail(f"{where}.keys", "must be a list of non-empty strings")
    if len(set(keys)) != len(keys):
        raise reader.fail(f"{where}.keys", "lists a key twice")
    fetch = reader.string(table, "fetch", where)
    if fetch is not None and not _FETCH_REF.match(fetch):
        raise reader.fail(f"{where}.fetch", f"must be 'package.module:function', got {fetch!r}")
    key_pattern = reader.string(table, "key_pattern", where)
    if key_pattern is not None:
        try:
            re.compile(key_pattern)
        except re.error as exc:
            raise reader.fail(
                f"{where}.key_pattern", f"is not a valid regular expression: {exc}"
            ) from None
    options: dict[str, Any] = {
        "url": reader.string(table, "url", where),
        "items": reader.string(table, "items", where),
        "paginate": reader.choice(table, "paginate", where),
        "page_size": reader.integer(table, "page_size", where, 1, 1000),
        "params": reader.string_table(table, "params", where),
        "jql": reader.string(table, "jql", where),
        "fields": reader.string_list(table, "fields", where),
    }
    guard_where = f"{where}.shrink_guard"
    guard = reader.table(table.get("shrink_guard", {}), guard_where, _SHRINK_KEYS)
    defaults = ShrinkGuard()
    shrink_guard = ShrinkGuard(
        enabled=_or_bool(reader.boolean(guard, "enabled", guard_where), defaults.enabled),
        empty_from=_or(
            reader.integer(guard, "empty_from", guard_where, 0, 10**6), defaults.empty_from
        ),
        below=reader.fraction(guard, "below", guard_where) or defaults.below,
        min_items=_or(
            reader.integer(guard, "min_items", guard_where, 0, 10**6), defaults.min_items
        ),
        accept_after=_or(
            reader.integer(guard, "accept_after", guard_where, 1, 100), defaults.accept_after
        ),
    )
    return DatasetSettings(
        max_keys=_or(reader.integer(table, "max_keys", where, 0, 10**6), 1000),
        idle_retire_seconds=reader.duration(table, "idle_retire", where) or 7 * 86400.0,
        min_refresh_interval_seconds=_or_float(
            reader.duration(table, "min_refresh_interval", where), 10.0
        ),
        shrink_guard=shrink_guard,
        keep_seconds=reader.duration(table, "keep", where) or 90 * 86400.0,
        name=name,
        ttl_seconds=reader.duration(table, "ttl", where),
        keys=tuple(keys),
        fetch=fetch,
        negative_ttl_seconds=reader.duration(table, "negative_ttl", where),
        key_pattern=key_pattern,
        key_example=reader.string(table, "key_example", where),
        options={k: v for k, v in options.items() if v is not None},
    )


def load_jobs(
    path: Path, env: Mapping[str, str] | None = None, *, providers: tuple[str, ...] = ()
) -> JobsConfig:
    """Read and validate jobs.toml; `providers` are the built-in names that env overrides apply to."""
    env = os.environ if env is None else env
    reader = _Reader(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found (pass --config PATH or set SNAPSHOTS_CONFIG)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    top = reader.table(raw, "top level", _TOP_KEYS)
    service = reader.table(top.get("service", {}), "service", _SERVICE_KEYS)
    api_table = reader.table(top.get("api", {}), "api", _API_KEYS)
    tokens_file = reader.string(api_table, "tokens_file", "api")
    tokens_path = (path.parent / Path(tokens_file).expanduser()).resolve() if tokens_file else None
    if env.get("SNAPSHOTS_TOKENS_FILE"):  # a mounted secret in a container
        tokens_path = Path(env["SNAPSHOTS_TOKENS_FILE"]).expanduser().resolve()
    api = ApiSettings(
        tokens_file=tokens_path,
        cache_mib=_or(reader.integer(api_table, "cache_mib", "api", 1, 65536), 64),
        stale_if_error_seconds=int(reader.duration(api_table, "stale_if_error", "api") or 86400),
        access_log=_or_bool(reader.boolean(api_table, "access_log", "api"), True),
    )
    read_wait = reader.duration(service, "read_wait", "service") or 10.0
    negative_ttl = reader.duration(service, "negative_ttl", "service") or 60.0
    shutdown_grace = reader.duration(service, "shutdown_grace", "service") or 10.0
    maintenance = reader.duration(service, "maintenance_interval", "service") or 30.0
    keep_runs = reader.duration(service, "keep_runs", "service") or 30 * 86400.0
    leader_check = reader.duration(service, "leader_check", "service") or 2.0
    refresh_ahead = service.get("refresh_ahead", 0.8)
    if not isinstance(refresh_ahead, int | float) or not 0.1 <= refresh_ahead <= 1.0:
        raise reader.fail("service.refresh_ahead", "must be a number between 0.1 and 1.0")

    raw_providers = reader.table(
        top.get("providers", {}), "providers", set(top.get("providers", {}))
    )
    names = sorted(set(raw_providers) | {p for p in providers if _env_mentions(env, p)})
    provider_settings = {n: _provider(reader, n, raw_providers.get(n, {}), env) for n in names}
    raw_datasets = reader.table(top.get("datasets", {}), "datasets", set(top.get("datasets", {})))
    dataset_settings = {n: _dataset(reader, n, v) for n, v in raw_datasets.items()}
    return JobsConfig(
        path=path,
        providers=provider_settings,
        datasets=dataset_settings,
        read_wait_seconds=read_wait,
        refresh_ahead=float(refresh_ahead),
        negative_ttl_seconds=negative_ttl,
        shutdown_grace_seconds=shutdown_grace,
        maintenance_interval_seconds=maintenance,
        keep_runs_seconds=keep_runs,
        leader_check_seconds=leader_check,
        api=api,
    )


def _env_mentions(env: Mapping[str, str], provider: str) -> bool:
    prefix = f"SNAPSHOTS_{provider.upper()}_"
    return any(k.startswith(prefix) and env[k] for k in env)
