"""`mirror = "any"` on GitHub and Jira: with no dataset configured, paths are fetched as they are
through the kind's own client and served as the upstream sent them, `Link` headers rewritten
into the mirror; one upstream fetch per path and sorted query."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import Gateway, Simulator, sim_providers
from snapshots.config import JobsConfig, load_jobs
from snapshots.errors import ConfigError

StartGateway = Callable[[JobsConfig], Gateway]
UPSTREAM_AUTH = {
    "github": {"Authorization": "token sim-github-token"},
    "jira": {"Authorization": "Bearer sim-jira-token"},
}


@pytest.fixture
def gateway(tmp_path: Path, simulator: Simulator, start_gateway: StartGateway) -> Gateway:
    any_path = 'mirror = "any"'
    tables = sim_providers(
        simulator.url, github=any_path, jira=f'deployment = "server"\n{any_path}'
    )
    path = tmp_path / "jobs.toml"
    path.write_text(f'[service]\nread_wait = "30s"\n{tables}\n')
    config = load_jobs(path, env={})
    assert {"github.mirror_any", "jira.mirror_any"} <= set(config.datasets)
    return start_gateway(config)


@pytest.mark.parametrize(
    ("provider", "path", "query"),
    [
        ("github", "/repos/acme/repo-03/collaborators", {"per_page": "10", "page": "2"}),
        ("jira", "/rest/api/2/project/PRJ1", {}),
    ],
)
def test_any_path_is_the_upstream_answer_with_links_into_the_mirror(
    gateway: Gateway,
    simulator: Simulator,
    db: psycopg.Connection[Any],
    provider: str,
    path: str,
    query: dict[str, str],
) -> None:
    direct = simulator.http.get(f"/{provider}{path}", params=query, headers=UPSTREAM_AUTH[provider])
    assert direct.status_code == 200
    mirrored = gateway.http.get(f"/mirror/{provider}{path}", params=query)
    assert mirrored.status_code == 200, mirrored.text
    # The upstream's body, its links to the upstream moved into the mirror.
    upstream_base = f"{simulator.url}/{provider}"
    expected = json.loads(
        direct.text.replace(upstream_base, f"{gateway.server.url}/mirror/{provider}")
    )
    assert mirrored.json() == expected
    assert upstream_base not in mirrored.text
    if provider == "github":
        upstream_link = direct.headers["link"]
        assert f"{simulator.url}/github" in upstream_link
        assert mirrored.headers["link"] == upstream_link.replace(
            f"{simulator.url}/github", f"{gateway.server.url}/mirror/github"
        )
    # The same path with its query in another order is the same key: no second fetch.
    reordered = dict(reversed(list(query.items())))
    assert gateway.http.get(f"/mirror/{provider}{path}", params=reordered).status_code == 200
    runs = db.execute(
        "SELECT count(*) FROM refresh_runs WHERE dataset = %s", (f"{provider}.mirror_any",)
    ).fetchone()
    assert runs == (1,)


@pytest.mark.parametrize(
    ("provider", "path"),
    [("github", "/repos/acme/repo-21/collaborators"), ("pagerduty", "/users?limit=5")],
)
def test_an_empty_page_that_says_more_is_a_truncated_list_never_stored(
    tmp_path: Path,
    simulator: Simulator,
    start_gateway: StartGateway,
    db: psycopg.Connection[Any],
    provider: str,
    path: str,
) -> None:
    """GitHub's Link with rel="next" or PagerDuty's more=true around no items is how a truncated
    list looks: the upstream-shaped 503 with Retry-After, and nothing stored for the path."""
    any_path = 'mirror = "any"'
    tables = sim_providers(
        simulator.url,
        github=any_path if provider == "github" else "",
        pagerduty=any_path if provider == "pagerduty" else "",
    )
    config = tmp_path / "jobs.toml"
    config.write_text(f'[service]\nread_wait = "30s"\n{tables}\n')
    gateway = start_gateway(load_jobs(config, env={}))
    simulator.add_fault(provider, "truncated", count=10, path=path.split("?")[0])
    answer = gateway.http.get(f"/mirror/{provider}{path}")
    assert answer.status_code == 503, answer.text
    assert "Retry-After" in answer.headers
    assert "truncated" in answer.text
    stored = db.execute(
        "SELECT count(*) FROM snapshots WHERE dataset = %s", (f"{provider}.mirror_any",)
    ).fetchone()
    assert stored == (0,)


def test_a_provider_without_token_answers_any_path_as_it_answers_its_routes(
    tmp_path: Path, simulator: Simulator, start_gateway: StartGateway
) -> None:
    """With no upstream token the datasets are disabled: a routed path (its dataset configured)
    and a path cached by mirror = "any" give the same upstream-shaped 503 with Retry-After."""
    tables = sim_providers(simulator.url, github='mirror = "any"', without_token=("github",))
    config = tmp_path / "jobs.toml"
    config.write_text(f'{tables}\n[datasets."github.repo"]\n')
    gateway = start_gateway(load_jobs(config, env={}))
    routed = gateway.http.get("/mirror/github/repos/acme/repo-01")
    cached = gateway.http.get("/mirror/github/users/mona-001/repos")
    for answer in (routed, cached):
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "30"
        assert "no token" in answer.json()["message"]


def test_any_path_bodies_carry_upstream_links_that_the_mirror_moves(
    simulator: Simulator,
) -> None:
    """The rewrite above is not vacuous: the simulator's GitHub bodies link to its own base."""
    body = simulator.http.get(
        "/github/repos/acme/repo-03/collaborators", headers=UPSTREAM_AUTH["github"]
    ).text
    assert f"{simulator.url}/github/" in body


@pytest.mark.parametrize(
    "key", ["//evil.example/x", "/https://evil.example/x", "/a//b", "/host:8080/x", "/a/../b"]
)
def test_any_path_keys_never_leave_the_base_url(
    tmp_path: Path, simulator: Simulator, key: str
) -> None:
    path = tmp_path / "jobs.toml"
    tables = sim_providers(simulator.url, pagerduty='mirror = "any"')
    path.write_text(f'{tables}\n[datasets."pagerduty.mirror_any"]\nkeys = ["{key}"]\n')
    with pytest.raises(ConfigError, match="mirror_any"):
        load_jobs(path, env={})
