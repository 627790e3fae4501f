"""Settings from the environment and jobs.toml, decoded into typed structs with errors that name
the file and the key.

`[providers.<instance>]` tables name provider instances: an instance named like a kind is of
that kind; any other name says its `kind`. Each instance's datasets are
`[datasets."<instance>.<dataset>"]`. Every built-in kind with a public default URL has an
instance of its own name, configured or not, so `SNAPSHOTS_<KIND>_TOKEN` alone enables it.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

import msgspec
import platformdirs

from snapshots.config_decode import TOP_LEVEL, decode, fail, toml_type
from snapshots.config_types import (
    BudgetLimit,
    DatasetSettings,
    Duration,
    ProviderSettings,
    Secret,
    parse_duration,
)
from snapshots.errors import ConfigError, MalformedKey
from snapshots.providers import custom, mirror_any
from snapshots.providers.kind import DatasetDefinition, KeyFormat, ProviderKind
from snapshots.providers.kinds import known_kinds
from snapshots_client.http_caching import DEFAULT_STALE_IF_ERROR_SECONDS

__all__ = [
    "ApiSettings",
    "BudgetLimit",
    "DatasetConfig",
    "DatasetSettings",
    "JobsConfig",
    "ProviderConfig",
    "ProviderSettings",
    "Secret",
    "ServiceSettings",
    "Settings",
    "load_jobs",
    "parse_duration",
]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_INSTANCE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_DATASET = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # after "<instance>."
# An instance's routes live at /api/v1/<instance>/..., beside the API's own.
_RESERVED = {"datasets", "history", "latest", "providers", "refresh", "runs", "snapshots", "worker"}


class ServiceSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`[service]`: how the worker paces itself and keeps history."""

    read_wait: Duration = Duration(10.0)  # a cold read waits this long for its first fetch
    refresh_ahead: Annotated[float, msgspec.Meta(ge=0.1, le=1.0)] = 0.8  # of the TTL
    negative_ttl: Duration = Duration(60.0)  # an upstream 404 is remembered this long
    shutdown_grace: Duration = Duration(10.0)
    maintenance_interval: Duration = Duration(30.0)
    keep_runs: Duration = Duration(30 * 86400.0)  # refresh runs older than this are pruned
    leader_check: Duration = Duration(2.0)  # how often the active worker checks its lock


class JwtSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`[api.jwt]`: also accept HS256 JWTs (claims `sub`, `exp`) signed with a shared secret,
    as qontract-api issues them. The secret comes from a file or an environment variable."""

    secret_file: str | None = None
    secret_env: str | None = None
    role: Literal["reader", "operator"] = "reader"  # what every valid JWT may do
    revoked_subjects: list[str] = []  # `sub` values refused even with a valid signature


class ApiSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`[api]`: who may call the read API, and how it answers caches."""

    tokens_file: str | None = None  # lines of "name role sha256"; none: open on loopback only
    cache_mib: Annotated[int, msgspec.Meta(ge=1, le=65536)] = 64  # pre-encoded latest snapshots
    stale_if_error: Duration = Duration(float(DEFAULT_STALE_IF_ERROR_SECONDS))  # offered to caches
    access_log: bool = True
    fast_path: bool = True  # hot-cache hits answered in front of Litestar's routing
    jwt: JwtSettings | None = None

    @property
    def tokens_path(self) -> Path | None:
        return Path(self.tokens_file) if self.tokens_file else None

    @property
    def stale_if_error_seconds(self) -> int:
        return int(self.stale_if_error)


class _File(msgspec.Struct, forbid_unknown_fields=True):
    """The top level of jobs.toml; provider and dataset tables are decoded per kind."""

    service: ServiceSettings = msgspec.field(default_factory=ServiceSettings)
    api: ApiSettings = msgspec.field(default_factory=ApiSettings)
    providers: dict[str, Any] = {}  # each value is checked where its name can be shown
    datasets: dict[str, Any] = {}


@dataclass(frozen=True)
class ProviderConfig:
    """One provider instance: its name, kind, settings, and where its token is expected."""

    name: str
    kind: ProviderKind
    settings: ProviderSettings
    token_source: str  # for "disabled" messages (never the token)


@dataclass(frozen=True)
class DatasetConfig:
    """One dataset of one instance: the common settings, its definition and its own settings."""

    name: str  # "<instance>.<dataset>"
    provider: str  # the instance
    definition: DatasetDefinition
    settings: DatasetSettings
    options: msgspec.Struct


@dataclass(frozen=True)
class JobsConfig:
    """The parsed jobs.toml with environment overrides applied."""

    path: Path
    providers: Mapping[str, ProviderConfig]
    datasets: Mapping[str, DatasetConfig]
    service: ServiceSettings = field(default_factory=ServiceSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    jwt_secret: Secret | None = None  # `[api.jwt]`'s secret, read at load

    @property
    def read_wait_seconds(self) -> float:
        return float(self.service.read_wait)

    @property
    def refresh_ahead(self) -> float:
        return self.service.refresh_ahead

    @property
    def negative_ttl_seconds(self) -> float:
        return float(self.service.negative_ttl)

    @property
    def shutdown_grace_seconds(self) -> float:
        return float(self.service.shutdown_grace)

    @property
    def maintenance_interval_seconds(self) -> float:
        return float(self.service.maintenance_interval)

    @property
    def keep_runs_seconds(self) -> float:
        return float(self.service.keep_runs)

    @property
    def leader_check_seconds(self) -> float:
        return float(self.service.leader_check)


@dataclass(frozen=True)
class Settings:
    """Process settings from the environment (SNAPSHOTS_*)."""

    database_url: str | None
    data_dir: Path
    config_path: Path = field(default=Path("jobs.toml"))
    embedded_tcp_port: int = 0  # the embedded PostgreSQL also on 127.0.0.1:port; 0: socket only

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = env.get("SNAPSHOTS_DATA_DIR") or platformdirs.user_data_dir("snapshots")
        return cls(
            database_url=env.get("SNAPSHOTS_DATABASE_URL") or None,
            data_dir=Path(data_dir).expanduser(),
            config_path=Path(env.get("SNAPSHOTS_CONFIG") or "jobs.toml"),
            embedded_tcp_port=_tcp_port(env.get("SNAPSHOTS_EMBEDDED_TCP_PORT") or "0"),
        )


def _tcp_port(value: str) -> int:
    """SNAPSHOTS_EMBEDDED_TCP_PORT: 0 (off) or a port from 1 to 65535."""
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(
            f"SNAPSHOTS_EMBEDDED_TCP_PORT: expected a port from 1 to 65535, or 0 for none, got {value!r}"
        )
    return port


def env_prefix(instance: str) -> str:
    """SNAPSHOTS_PD_EU_ for instance pd-eu."""
    return "SNAPSHOTS_" + re.sub(r"[^A-Z0-9]", "_", instance.upper()) + "_"


def _expand_env(value: object, env: Mapping[str, str], file: Path, where: str) -> object:
    """Replace ${VAR} with the environment's value; an empty result counts as unset."""
    if not isinstance(value, str):
        return value
    if "${" in _ENV_REF.sub("", value):
        raise fail(
            file,
            where,
            "has a '${' that is not a reference; write ${NAME} (letters, digits and _)",
        )
    expanded = _ENV_REF.sub(lambda m: env.get(m.group(1), ""), value)
    return expanded or None


def _token_source(table: Mapping[str, Any], name: str) -> str:
    env_name = env_prefix(name) + "TOKEN"
    if isinstance(table.get("token_file"), str):
        return f"token_file {table['token_file']} or {env_name}"
    raw = table.get("token")
    if isinstance(raw, str):
        refs = _ENV_REF.findall(raw)
        if refs:
            return f"{refs[0]} or {env_name}"
    return f"providers.{name}.token or {env_name}"


def _provider_table(
    name: str, raw: object, kinds: Mapping[str, ProviderKind], file: Path, env: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The instance's table with its kind set, env overrides and ${VAR}s applied, the token file
    read; and the environment variable each key's value came from."""
    where = f"providers.{name}"
    if not isinstance(raw, dict):
        raise fail(file, where, f"must be a table, got {toml_type(raw)}")
    table = dict(raw)
    if not _INSTANCE.fullmatch(name):
        raise fail(
            file,
            f"providers.{json.dumps(name)}",  # quoted as in TOML: it may hold any character
            "instance names are lower-case letters, digits, - and _, like 'pd-eu'",
        )
    if name in _RESERVED:
        raise fail(
            file,
            where,
            f"{name!r} is reserved for the API's own routes (/api/v1/{name}); pick another name",
        )
    kind = table.get("kind", name if name in kinds else None)
    if kind is None:
        known = ", ".join(sorted(n for n in kinds if n != "http"))
        raise fail(
            file,
            where,
            f'unknown provider {name!r} (known providers: {known}; or set kind = "http"'
            " or another kind)",
        )
    if not isinstance(kind, str) or kind not in kinds:
        builtin = ", ".join(sorted(n for n in kinds if n != "http"))
        raise fail(
            file, f"{where}.kind", f"must be one of http (a user-defined provider) or {builtin}"
        )
    if name in kinds and kind != name:
        raise fail(
            file,
            f"{where}.kind",
            f"{name} is the name of a kind; give an instance of kind {kind} another name",
        )
    table["kind"] = kind
    if "token" in table and "token_file" in table:
        raise fail(file, f"{where}.token_file", "set token or token_file, not both")
    prefix = env_prefix(name)
    sources: dict[str, str] = {}
    for key in ("base_url", "token", "email"):
        if key in table:
            if isinstance(table[key], str) and _ENV_REF.search(table[key]):
                sources[key] = ", ".join(_ENV_REF.findall(table[key]))
            table[key] = _expand_env(table[key], env, file, f"{where}.{key}")
    raw_url = raw.get("base_url")
    if isinstance(raw_url, str) and not env.get(prefix + "BASE_URL"):
        # Unlike an unset token (the provider is disabled), an unset base_url would silently
        # become the public default: a private deployment's requests sent to the public API.
        unset = [n for n in _ENV_REF.findall(raw_url) if not env.get(n)]
        if unset:
            raise fail(
                file,
                f"{where}.base_url",
                f"${{{unset[0]}}} is not set in the environment; set {unset[0]}"
                f" (or {prefix}BASE_URL)",
            )
    for key in ("base_url", "token", "budget"):
        if env.get(prefix + key.upper()):
            table[key] = env[prefix + key.upper()]
            sources[key] = prefix + key.upper()
    if table.get("token") is None and isinstance(table.get("token_file"), str):
        token_path = (file.parent / Path(table["token_file"]).expanduser()).resolve()
        try:
            table["token"] = token_path.read_text().strip() or None
        except OSError as exc:
            raise fail(
                file, f"{where}.token_file", f"cannot read {token_path}: {exc.strerror}"
            ) from None
    if isinstance(table.get("base_url"), str):
        table["base_url"] = table["base_url"].rstrip("/")
    return {k: v for k, v in table.items() if v is not None}, sources


def _provider(
    name: str, raw: object, kinds: Mapping[str, ProviderKind], file: Path, env: Mapping[str, str]
) -> ProviderConfig:
    table, sources = _provider_table(name, raw, kinds, file, env)

    def where(key: str) -> str:
        """The key, and the environment variable its value came from, if it did."""
        source = f" (from {sources[key]})" if key in sources else ""
        return f"providers.{name}.{key}{source}"

    kind = kinds[table["kind"]]
    union: Any = Union[tuple(k.settings for k in kinds.values())]  # noqa: UP007  tagged on kind
    others = [(k.name, k.settings) for k in kinds.values() if k is not kind]
    try:
        settings: ProviderSettings = decode(
            table, union, file=file, where=f"providers.{name}", others=others, shape=kind.settings
        )
    except ConfigError as exc:
        for key in sources:
            head = f"{file}: providers.{name}.{key}: "
            if exc.message.startswith(head):
                raise fail(file, where(key), exc.message[len(head) :]) from None
        raise
    if settings.base_url is not None and "@" in urlsplit(settings.base_url).netloc:
        # The URL is shown (GET /api/v1/providers, the status page) and logged; a token is not.
        raise fail(
            file,
            where("base_url"),
            "must not hold a user name or password (user:pass@host); put the credential in"
            " token or token_file",
        )
    if settings.base_url is None and kind.default_base_url is not None:
        settings = msgspec.structs.replace(settings, base_url=kind.default_base_url)
    if kind.check_settings is not None and (settings.token is not None or not kind.needs_token):
        problem = kind.check_settings(settings)
        if problem is not None:
            raise fail(file, where(problem.split(":", 1)[0]), problem.split(": ", 1)[1])
    raw_table = raw if isinstance(raw, dict) else {}
    return ProviderConfig(name, kind, settings, _token_source(raw_table, name))


def _definition(
    name: str, settings: DatasetSettings, provider: ProviderConfig, file: Path
) -> DatasetDefinition:
    """The kind's definition of a dataset, or one made from its `fetch` or `url` settings."""
    where = f'datasets."{name}"'
    local = name.split(".", 1)[1]
    own = provider.kind.dataset(local)
    if own is not None:
        if settings.fetch is not None:
            raise fail(
                file,
                f"{where}.fetch",
                f"{local} is a built-in dataset of {provider.kind.name}, fetched by the kind;"
                " remove fetch, or give your dataset a name of its own",
            )
        return own
    if settings.fetch is not None:
        return custom.dataset_definition(local, settings.fetch, file, where)
    if provider.kind.user_dataset is not None:
        return provider.kind.user_dataset(local)
    known = ", ".join(sorted(d.name for d in provider.kind.datasets)) or "none built in"
    raise fail(
        file,
        where,
        f"unknown dataset (known datasets of {provider.name}: {known};"
        " or set fetch = 'package.module:function')",
    )


def _dataset(
    name: str, raw: object, providers: Mapping[str, ProviderConfig], file: Path
) -> DatasetConfig:
    where = f'datasets."{name}"'
    instance, dot, local = name.partition(".")
    if not dot or not local:
        example = next(
            (f"{p}.{d.name}" for p, c in sorted(providers.items()) for d in c.kind.datasets), "a.b"
        )
        raise fail(file, where, f"dataset names are 'provider.dataset', like {example!r}")
    if not _DATASET.fullmatch(local):
        raise fail(
            file,
            f"datasets.{json.dumps(name)}",  # quoted: it may hold any character
            "dataset names after the instance are lower-case letters, digits, - and _,"
            " like 'pd-eu.schedule_users'",
        )
    if instance not in providers:
        known = ", ".join(sorted(providers))
        raise fail(file, where, f"unknown provider {instance!r} (known providers: {known})")
    if not isinstance(raw, dict):
        raise fail(file, where, f"must be a table, got {toml_type(raw)}")
    provider = providers[instance]
    common = set(DatasetSettings.__struct_fields__)
    settings: DatasetSettings = decode(
        {k: v for k, v in raw.items() if k in common}, DatasetSettings, file=file, where=where
    )
    definition = _definition(name, settings, provider, file)
    others = [
        (d.name, d.options)
        for k in {p.kind.name: p.kind for p in providers.values()}.values()
        for d in k.datasets
        if d.options is not definition.options
    ]
    options = decode(
        {k: v for k, v in raw.items() if k not in common},
        definition.options,
        file=file,
        where=where,
        others=others,
        common=common,
    )
    if settings.key_pattern is not None:
        try:
            re.compile(settings.key_pattern)
        except re.error as exc:
            raise fail(
                file, f"{where}.key_pattern", f"is not a valid regular expression: {exc}"
            ) from None
        if provider.kind.dataset(definition.name) is definition:
            # A kind's fetch puts the key into upstream paths: its format is not loosened.
            raise fail(
                file,
                f"{where}.key_pattern",
                f"only for user-defined datasets; {name} keys are {definition.key_format.description}",
            )
        definition = custom.with_key_format(
            definition,
            KeyFormat(
                settings.key_pattern,
                f"a key matching {settings.key_pattern}",
                settings.key_example or definition.key_format.example,
            ),
        )
    if len(set(settings.keys)) != len(settings.keys):
        raise fail(file, f"{where}.keys", "lists a key twice")
    for key in settings.keys:
        try:
            definition.key_format.check(name, key)
        except MalformedKey as exc:
            raise fail(file, f"{where}.keys", exc.message) from None
    if settings.ttl is None and definition.default_ttl_seconds is None:
        raise fail(file, f"{where}.ttl", "required for a user-defined dataset, like '5m'")
    return DatasetConfig(name, instance, definition, settings, options)


def _refuse_clashes(providers: Mapping[str, ProviderConfig], file: Path) -> None:
    """Two instances must not share environment variables or OpenAPI operation ids (pd-eu and
    pd_eu would both read SNAPSHOTS_PD_EU_TOKEN, and the API document could not be built)."""
    seen: dict[str, str] = {}
    for name, provider in sorted(providers.items()):
        claims = [(env_prefix(name) + "*", "environment variables")]
        claims += [(r.operation_id(name), "OpenAPI operation id") for r in provider.kind.routes]
        for claim, what in claims:
            other = seen.setdefault(claim, name)
            if other != name:
                raise fail(
                    file,
                    f"providers.{name}",
                    f"clashes with providers.{other}: both would use the {what} {claim};"
                    " rename one of them",
                )
    kinds = {p.kind.name: p.kind for p in providers.values()}
    for kind_name, kind in sorted(kinds.items()):
        if kind.check_instances is None:
            continue
        settings = {n: p.settings for n, p in sorted(providers.items()) if p.kind.name == kind_name}
        problem = kind.check_instances(settings)
        if problem is not None:
            raise ConfigError(f"{file}: {problem}")


def load_jobs(
    path: Path,
    env: Mapping[str, str] | None = None,
    *,
    kinds: tuple[ProviderKind, ...] | None = None,
) -> JobsConfig:
    """Read and validate jobs.toml. `kinds`: the provider kinds to know (the built-ins and any
    installed under the `snapshots.provider_kinds` entry point by default)."""
    env = os.environ if env is None else env
    known = {k.name: k for k in (kinds if kinds is not None else known_kinds())}
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found (pass --config PATH or set SNAPSHOTS_CONFIG)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    top: _File = decode(raw, _File, file=path, where=TOP_LEVEL)
    api = top.api
    tokens_file = env.get("SNAPSHOTS_TOKENS_FILE")  # a mounted secret in a container
    if tokens_file:
        api = msgspec.structs.replace(
            api, tokens_file=str(Path(tokens_file).expanduser().resolve())
        )
    elif api.tokens_file:
        resolved = (path.parent / Path(api.tokens_file).expanduser()).resolve()
        api = msgspec.structs.replace(api, tokens_file=str(resolved))
    tables: dict[str, object] = dict(top.providers)
    for kind in known.values():
        # Every kind with a public default URL has an instance of its own name.
        if kind.default_base_url is not None and kind.name not in tables:
            tables[kind.name] = {}
    providers = {n: _provider(n, t, known, path, env) for n, t in sorted(tables.items())}
    _refuse_clashes(providers, path)
    datasets = {n: _dataset(n, t, providers, path) for n, t in top.datasets.items()}
    for name, provider in sorted(providers.items()):
        if provider.settings.mirror != "any":
            continue
        if provider.kind.dataset(mirror_any.NAME) is None:
            raise fail(
                path,
                f"providers.{name}.mirror",
                f'kind {provider.kind.name} cannot mirror any path; use mirror = "paths"',
            )
        datasets.setdefault(
            f"{name}.{mirror_any.NAME}", _dataset(f"{name}.{mirror_any.NAME}", {}, providers, path)
        )
    jwt_secret = _jwt_secret(api.jwt, env, path) if api.jwt is not None else None
    return JobsConfig(path, providers, datasets, top.service, api, jwt_secret)


def _jwt_secret(settings: JwtSettings, env: Mapping[str, str], path: Path) -> Secret:
    """The shared JWT secret, from `secret_env` or `secret_file` (relative to jobs.toml)."""
    where = "api.jwt"
    if (settings.secret_env is None) == (settings.secret_file is None):
        raise fail(path, where, "set one of secret_env (a variable name) or secret_file (a path)")
    if settings.secret_env is not None:
        value = env.get(settings.secret_env, "")
        if not value:
            raise fail(
                path,
                f"{where}.secret_env",
                f"the environment variable {settings.secret_env} is not set",
            )
        return Secret(value)
    assert settings.secret_file is not None
    file = (path.parent / Path(settings.secret_file).expanduser()).resolve()
    try:
        value = file.read_text().strip()
    except OSError as exc:
        raise fail(path, f"{where}.secret_file", f"cannot read {file}: {exc.strerror}") from None
    if not value:
        raise fail(path, f"{where}.secret_file", f"{file} is empty")
    return Secret(value)
