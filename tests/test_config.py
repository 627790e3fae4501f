"""jobs.toml parsing: environment overrides, ${VAR} references, token files, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapshots.api.auth import TokenStore, create_token
from snapshots.config import BudgetLimit, Secret, load_jobs, parse_duration
from snapshots.errors import ConfigError, MalformedKey
from snapshots.registry import Registry

PROVIDERS = ("pagerduty",)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobs.toml"
    path.write_text(text)
    return path


def _registry(path: Path, env: dict[str, str] | None = None) -> Registry:
    return Registry.from_config(load_jobs(path, env=env or {}))


def test_repository_jobs_toml_is_valid_and_disabled_without_a_token() -> None:
    path = Path(__file__).resolve().parents[1] / "jobs.toml"

    registry = _registry(path)

    dataset = registry.dataset("pagerduty.schedule_users")
    assert dataset.ttl_seconds == 300
    assert not dataset.enabled
    assert "PAGERDUTY_TOKEN" in (dataset.provider.disabled_reason or "")


def test_env_reference_in_token_is_read_from_the_environment(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[providers.pagerduty]\ntoken = "${PD_TOKEN}"\n[datasets."pagerduty.schedule_users"]\n',
    )

    registry = _registry(path, {"PD_TOKEN": "from-env"})

    token = registry.providers["pagerduty"].settings.token
    assert token is not None
    assert token.reveal() == "from-env"
    assert registry.dataset("pagerduty.schedule_users").enabled


def test_snapshots_provider_env_overrides_the_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[providers.pagerduty]\nbase_url = "https://file.example"\ntoken = "file"\nbudget = "10/1s"\n',
    )
    env = {
        "SNAPSHOTS_PAGERDUTY_BASE_URL": "http://proxy.internal:8080/pd/",
        "SNAPSHOTS_PAGERDUTY_TOKEN": "env-token",
        "SNAPSHOTS_PAGERDUTY_BUDGET": "60/1m",
    }

    settings = _registry(path, env).providers["pagerduty"].settings

    assert settings.base_url == "http://proxy.internal:8080/pd"
    assert settings.token is not None
    assert settings.token.reveal() == "env-token"
    assert settings.budget == BudgetLimit(60, 60.0)


def test_env_overrides_apply_to_a_provider_missing_from_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, '[datasets."pagerduty.schedule_users"]\nkeys = ["PABC123"]\n')

    registry = _registry(path, {"SNAPSHOTS_PAGERDUTY_TOKEN": "env-token"})

    assert registry.dataset("pagerduty.schedule_users").enabled
    assert registry.providers["pagerduty"].settings.base_url == "https://api.pagerduty.com"


def test_unset_variable_in_base_url_is_an_error_not_the_public_default(tmp_path: Path) -> None:
    path = _write(tmp_path, '[providers.pd-eu]\nkind = "pagerduty"\nbase_url = "${PD_EU_URL}"\n')

    with pytest.raises(ConfigError) as raised:
        _registry(path, {"SNAPSHOTS_PD_EU_TOKEN": "t"})

    assert raised.value.message == (
        f"{path}: providers.pd-eu.base_url: ${{PD_EU_URL}} is not set in the environment;"
        " set PD_EU_URL (or SNAPSHOTS_PD_EU_BASE_URL)"
    )
    for env in (
        {"PD_EU_URL": "https://pd.internal"},
        {"SNAPSHOTS_PD_EU_BASE_URL": "https://pd.internal"},
    ):
        assert _registry(path, env).providers["pd-eu"].settings.base_url == "https://pd.internal"


@pytest.mark.parametrize(
    ("text", "env"),
    [
        ('[providers.pd-eu]\nkind = "pagerduty"\nbase_url = "https://u:hunter2@pd.example"\n', {}),
        (
            '[providers.pd-eu]\nkind = "pagerduty"\n',
            {"SNAPSHOTS_PD_EU_BASE_URL": "https://u:hunter2@pd.example/api"},
        ),
    ],
)
def test_credentials_in_base_url_are_refused_and_not_shown(
    tmp_path: Path, text: str, env: dict[str, str]
) -> None:
    """base_url is shown by GET /api/v1/providers and the status page; a token is a Secret."""
    path = _write(tmp_path, text)

    with pytest.raises(ConfigError) as raised:
        _registry(path, env)

    message = raised.value.message
    assert message.startswith(f"{path}: providers.pd-eu.base_url")
    assert "must not hold a user name" in message
    assert "put the credential in token" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        (
            '[providers.pagerduty]\ntoken = "t"\ntoken_file = "pd.token"\n',
            {},
            "providers.pagerduty.token_file: set token or token_file, not both",
        ),
        (
            '[providers.pagerduty]\ntoken = "${PD_TOKEN"\n',
            {"PD_TOKEN": "t"},
            "providers.pagerduty.token: has a '${' that is not a reference; write ${NAME}",
        ),
        (
            '[providers.pagerduty]\nbase_url = "https://${HOST/api"\n',
            {"HOST": "h"},
            "providers.pagerduty.base_url: has a '${' that is not a reference",
        ),
        (
            "[providers.pagerduty]\n",
            {"SNAPSHOTS_PAGERDUTY_BUDGET": "lots"},
            "providers.pagerduty.budget (from SNAPSHOTS_PAGERDUTY_BUDGET): bad budget 'lots'",
        ),
        (
            '[providers.pagerduty]\nbase_url = "${PD_URL}"\n',
            {"PD_URL": "pd.internal"},
            "providers.pagerduty.base_url (from PD_URL): must be an http:// or https:// URL",
        ),
        (
            '[providers.jira]\nemail = "${JIRA_EMAIL}"\n',
            {"SNAPSHOTS_JIRA_BASE_URL": "https://acme.atlassian.net", "SNAPSHOTS_JIRA_TOKEN": "t"},
            "providers.jira.email (from JIRA_EMAIL): required for Jira Cloud",
        ),
    ],
)
def test_token_sources_and_env_values_are_checked_and_named(
    tmp_path: Path, text: str, env: dict[str, str], expected: str
) -> None:
    (tmp_path / "pd.token").write_text("from-file\n")
    path = _write(tmp_path, text)

    with pytest.raises(ConfigError) as raised:
        _registry(path, env)

    assert raised.value.message.startswith(f"{path}: {expected}")


def test_token_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "pd.token").write_text("from-file\n")
    path = _write(tmp_path, '[providers.pagerduty]\ntoken_file = "pd.token"\n')

    token = _registry(path).providers["pagerduty"].settings.token

    assert token is not None
    assert token.reveal() == "from-file"


def test_secret_never_shows_in_repr_or_str() -> None:
    secret = Secret("hunter2-token")

    assert "hunter2" not in repr(secret)
    assert "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2-token"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bogus = 1\n", "top level: unknown key 'bogus'"),
        ('[providers.pagerduty]\ntokn = "x"\n', "providers.pagerduty: unknown key 'tokn'"),
        ('[providers.slack]\ntoken = "x"\n', "providers.slack: unknown provider 'slack'"),
        ('[datasets."slack.users"]\n', "unknown provider 'slack'"),
        ('[datasets."pagerduty.nope"]\n', 'datasets."pagerduty.nope": unknown dataset'),
        (
            '[datasets."pagerduty.schedule_users"]\nttl = "5 minutes"\n',
            "ttl: bad duration '5 minutes'",
        ),
        ('[datasets."pagerduty.schedule_users"]\nttl = 300\n', "ttl: must be a string"),
        (
            '[datasets."pagerduty.schedule_users"]\nkeys = ["lower"]\n',
            "keys: key 'lower' is not a valid",
        ),
        ('[datasets."pagerduty.schedule_users"]\nkeys = "PABC123"\n', "keys: must be a list"),
        ('[providers.pagerduty]\nbudget = "lots"\n', "budget: bad budget 'lots'"),
        (
            '[providers.pagerduty]\nbase_url = "api.pagerduty.com"\n',
            "base_url: must be an http:// or https:// URL",
        ),
        ('[providers.pagerduty]\ntoken_file = "missing.token"\n', "token_file: cannot read"),
        ("[service]\nrefresh_ahead = 2\n", ": service.refresh_ahead: must be a number between"),
        ("[providers]\npd-eu = 5\n", ": providers.pd-eu: must be a table, got integer"),
        (
            '[datasets]\n"pagerduty.x" = 5\n',
            ': datasets."pagerduty.x": must be a table, got integer',
        ),
        (
            '[datasets."pagerduty.schedule_users"]\nkeys = [""]\n',
            'datasets."pagerduty.schedule_users".keys: must be a list of non-empty strings',
        ),
        (
            "[providers.pagerduty]\ntoken_file = 5\n",
            "providers.pagerduty.token_file: must be a string, got integer",
        ),
        ("[api]\ntokens_file = 5\n", ": api.tokens_file: must be a string, got integer"),
        (
            '[providers.jira]\ndeployment = "dc"\n',
            "providers.jira.deployment: must be one of cloud, server",
        ),
        ("[providers.jira]\ndeployment = 5\n", "deployment: must be one of cloud, server"),
        (
            '[providers.s]\nkind = "http"\nbase_url = "https://s.example"\nheaders = { X = 1 }\n',
            "providers.s.headers: must be a table of strings",
        ),
        ("[providers\n", "not valid TOML"),
        (
            '[datasets."pagerduty.schedule_users"]\nfetch = "json:dumps"\n',
            'datasets."pagerduty.schedule_users".fetch: schedule_users is a built-in dataset of'
            " pagerduty, fetched by the kind; remove fetch",
        ),
        (
            '[datasets."pagerduty.schedule_users"]\ntll = "5m"\n',
            "unknown key 'tll' (known keys: fetch, idle_retire, keep, key_example, key_pattern,"
            " keys, max_keys, min_refresh_interval, negative_ttl, shrink_guard, ttl)",
        ),
        (
            '[datasets."pagerduty.schedule_users"]\njql = "x"\n',
            "jql: not a setting of pagerduty.schedule_users (its own settings: none)",
        ),
        # $ in a pattern lets a trailing newline through; these are matched in full.
        ('[providers."pd-eu\\n"]\nkind = "pagerduty"\n', "instance names are lower-case"),
        (
            '[datasets."github.mine"]\nfetch = "json:dumps\\n"\nttl = "1m"\n',
            "fetch: must be 'package.module:function'",
        ),
        (
            '[providers.pagerduty]\nbase_url = "https://api.pagerduty.com\\n"\n',
            "base_url: must be an http:// or https:// URL",
        ),
        (
            '[datasets."pagerduty.schedule_users"]\nttl = "100000000d"\n',
            "ttl: bad duration '100000000d': it must be at most 365d",
        ),
        ('[service]\nkeep_runs = "366d"\n', "keep_runs: bad duration '366d': it must be at most"),
        ('[providers.pagerduty]\nbudget = "1/9999d"\n', "budget: bad duration '9999d'"),
        (
            '[providers.status]\nkind = "http"\n',
            "providers.status.base_url: required for a provider of kind http",
        ),
        ('[providers.status]\nkind = "grpc"\n', "providers.status.kind: must be one of http"),
        (
            '[providers.pagerduty]\nemail = "a@b.c"\n',
            "providers.pagerduty.email: not a setting of pagerduty",
        ),
        (
            '[providers.jira]\nbase_url = "https://acme.atlassian.net"\ntoken = "t"\n',
            "providers.jira.email: required for Jira Cloud",
        ),
        (
            '[datasets."github.mine"]\nfetch = "no_such_module_xyz:fetch"\nttl = "1m"\n',
            "cannot import module 'no_such_module_xyz'",
        ),
        (
            '[datasets."github.mine"]\nfetch = "json:no_such_function"\nttl = "1m"\n',
            "module 'json' has no function 'no_such_function'",
        ),
        (
            '[datasets."github.mine"]\nfetch = "json.dumps"\n',
            "fetch: must be 'package.module:function'",
        ),
        (
            '[datasets."github.mine"]\nfetch = "json:dumps"\n',
            "ttl: required for a user-defined dataset",
        ),
        (
            '[datasets."github.repo"]\njql = "x"\n',
            'datasets."github.repo".jql: not a setting of github.repo',
        ),
        (
            '[datasets."jira.project_issues"]\nfields = "summary"\n',
            "fields: must be a list of non-empty strings",
        ),
        (
            '[providers.status]\nkind = "http"\nbase_url = "https://s.example"\n[datasets."status.c"]\nurl = "/c"\npaginate = "cursor"\nttl = "1m"\n',
            "paginate: must be one of link, none, offset, page",
        ),
        (
            '[datasets."jira.project_issues"]\nkey_pattern = "[a-"\n',
            "key_pattern: is not a valid regular expression",
        ),
        ('[datasets."nodot"]\n', "dataset names are 'provider.dataset'"),
        ('[datasets."github.a/b"]\n', 'datasets."github.a/b": dataset names after the instance'),
        ('[datasets."github.my repo"]\n', "dataset names after the instance are lower-case"),
        ('[datasets."github.repo.x"]\n', "dataset names after the instance are lower-case"),
        ('[datasets."github.Repo"]\n', "dataset names after the instance are lower-case"),
        (
            '[providers.s]\nkind = "http"\nbase_url = "https://s.example"\n'
            '[datasets."s.my/list"]\nurl = "/l"\nttl = "1m"\n',
            'datasets."s.my/list": dataset names after the instance are lower-case',
        ),
        ('[datasets."github.x\\n"]\n', 'datasets."github.x\\n": dataset names after'),
    ],
)
def test_broken_config_fails_with_the_file_key_and_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, text)

    with pytest.raises(ConfigError) as raised:
        _registry(path)

    message = raised.value.message
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_missing_config_file_says_how_to_pick_another(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--config"):
        load_jobs(tmp_path / "absent.toml", env={})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("2d", 172800.0), ("250ms", 0.25)],
)
def test_durations_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m", "-1s", "0s", "1w"])
def test_bad_durations_say_the_format(text: str) -> None:
    with pytest.raises(ValueError, match=r"like '30s'|greater than zero"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["366d", "8785h", "1" + "0" * 400 + "s"])
def test_durations_past_a_year_are_refused(text: str) -> None:
    """A huge ttl used to pass and raise OverflowError in datetime arithmetic at runtime."""
    assert parse_duration("365d") == 365 * 86400.0
    with pytest.raises(ValueError, match="at most 365d"):
        parse_duration(text)


def test_user_defined_http_provider_and_dataset_resolve(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[providers.statuspage]
kind = "http"
base_url = "https://status.example/api/v2"
token = "${STATUS_TOKEN}"
auth_template = "OAuth {token}"
budget = "30/1m"

[datasets."statuspage.components"]
url = "/pages/{key}/components"
items = "components"
paginate = "page"
page_size = 50
key_pattern = "[a-z0-9]{4,12}"
key_example = "abcd1234"
ttl = "2m"
""",
    )

    registry = _registry(path, {"STATUS_TOKEN": "s3cret"})

    dataset = registry.dataset("statuspage.components")
    assert dataset.enabled
    assert dataset.ttl_seconds == 120
    assert dataset.options.paginate == "page"
    assert registry.providers["statuspage"].budget_limit == BudgetLimit(30, 60.0)
    dataset.check_key("abcd1234")
    with pytest.raises(MalformedKey, match="abcd1234"):
        dataset.check_key("UPPER")


def test_default_budget_applies_when_none_is_configured(tmp_path: Path) -> None:
    registry = _registry(_write(tmp_path, ""))

    assert registry.providers["github"].budget_limit == BudgetLimit(4500, 3600.0)
    assert registry.providers["jira"].budget_limit == BudgetLimit(1, 1.0)


_HTTP = '[providers.status]\nkind = "http"\nbase_url = "https://s.example"\n'
_URL = _HTTP + '[datasets."status.c"]\nurl = "/c/{key}"\nttl = "1m"\n'
_LOOSE = _URL + 'key_pattern = ".*"\n'


@pytest.mark.parametrize(
    ("dataset", "table", "key"),
    [
        ("github.repo", '[datasets."github.repo"]\n', "acme/.."),
        ("github.repo_collaborators", '[datasets."github.repo_collaborators"]\n', "acme/."),
        ("status.c", _URL, "a/../b"),
        ("status.c", _URL, "a/./b"),
        ("status.c", _URL, "a/.."),
        ("status.c", _LOOSE, ".."),
        ("status.c", _LOOSE, "../etc"),
        ("github.mine", '[datasets."github.mine"]\nfetch = "json:dumps"\nttl = "1m"\n', "a/.."),
    ],
)
def test_keys_with_dot_segments_are_refused_for_every_kind(
    tmp_path: Path, dataset: str, table: str, key: str
) -> None:
    """'.' and '..' segments would climb out of the upstream path the key is put in, whatever
    the dataset's key pattern admits: refused in `keys` and on reads."""
    header = f'[datasets."{dataset}"]\n'
    path = _write(tmp_path, table.replace(header, f'{header}keys = ["{key}"]\n'))

    with pytest.raises(ConfigError) as raised:
        _registry(path)

    message = raised.value.message
    assert message.startswith(f'{path}: datasets."{dataset}".keys: key {key!r} is not a valid')
    assert "'.' or '..' path segment" in message
    assert "\n" not in message
    registered = _registry(_write(tmp_path, table)).dataset(dataset)
    with pytest.raises(MalformedKey, match=r"'\.' or '\.\.' path segment"):
        registered.check_key(key)
    registered.check_key(key.replace(".", "x"))  # the same shape without dot segments is fine


def test_a_token_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    """It would split its line of the tokens file in two, and no token would load again."""
    tokens = tmp_path / "tokens"
    create_token(tokens, "bot", "reader")

    with pytest.raises(ConfigError, match="token name 'bot2\\\\n'"):
        create_token(tokens, "bot2\n", "reader")
    assert len(TokenStore.load(tokens)._entries) == 1
