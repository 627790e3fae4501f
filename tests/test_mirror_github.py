"""The GitHub mirror: the real PyGithub, pointed at `/mirror/github` with a gateway token, gets
what it gets from the simulator directly (eager and lazy), its objects' URLs lead back into the
mirror, ten such consumers cost one upstream fetch per key, and errors and auth come in GitHub's
own shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import github
import psycopg
import pytest
import requests
from github import Auth, Github

from helpers import Gateway, Simulator, access_lines, sim_providers
from snapshots.api.auth import create_token
from snapshots.config import JobsConfig, load_jobs
from snapshots.simulator import github_data

StartGateway = Callable[[JobsConfig], Gateway]
DATASETS = ("repo", "repo_collaborators", "user", "org", "org_members")
SIM_GITHUB_TOKEN = "sim-github-token"
DOCS = "https://docs.github.com/rest"
REPO = "acme/repo-03"  # 75 collaborators: three pages of 30
LOGIN = "mona-041"
REPO_FIELDS = (
    "id",
    "full_name",
    "name",
    "private",
    "description",
    "default_branch",
    "visibility",
    "archived",
    "topics",
    "pushed_at",
    "open_issues_count",
    "stargazers_count",
)


@pytest.fixture
def setup(tmp_path: Path, simulator: Simulator, start_gateway: StartGateway) -> tuple[Gateway, str]:
    tokens = tmp_path / "tokens"
    reader = create_token(tokens, "repo-bot", "reader")
    tables = "\n".join(f'[datasets."github.{name}"]' for name in DATASETS)
    path = tmp_path / "jobs.toml"
    path.write_text(
        f'[service]\nread_wait = "30s"\n[api]\ntokens_file = "{tokens}"\n'
        f"{sim_providers(simulator.url)}\n{tables}\n"
    )
    return start_gateway(load_jobs(path, env={})), reader


def _github(base_url: str, token: str, lazy: bool = False) -> Github:
    # retry=None: PyGithub's default retry would sleep on errors the tests provoke.
    return Github(
        base_url=base_url,
        auth=Auth.Token(token),
        lazy=lazy,
        retry=None,
        seconds_between_requests=None,
    )


def _direct(simulator: Simulator) -> Github:
    return _github(f"{simulator.url}/github", SIM_GITHUB_TOKEN)


def _mirrored(gateway: Gateway, token: str, lazy: bool = False) -> Github:
    return _github(f"{gateway.server.url}/mirror/github", token, lazy)


def _read_everything(gh: Github) -> dict[str, Any]:
    """What a consumer reads: a repository, all its collaborators, a user, the organisation and
    all its members (pages followed by PyGithub through Link)."""
    repo = gh.get_repo(REPO)
    collaborators = list(repo.get_collaborators())
    user = gh.get_user(LOGIN)
    org = gh.get_organization("acme")
    members = list(org.get_members())
    return {
        "repo": {field: getattr(repo, field) for field in REPO_FIELDS},
        "repo_owner": (repo.owner.login, repo.owner.type),
        "repo_raw": repo.raw_data,
        "collaborators": [
            (
                u.login,
                u.id,
                u.role_name,
                u.permissions.admin,
                u.permissions.maintain,
                u.permissions.push,
                u.permissions.triage,
                u.permissions.pull,
            )
            for u in collaborators
        ],
        "user": (user.login, user.name, user.company, user.followers, user.created_at),
        "user_raw": user.raw_data,
        "org": (org.login, org.name, org.public_repos, org.blog, org.created_at),
        "org_raw": org.raw_data,
        "members": [(u.login, u.id) for u in members],
        "urls": [repo.url, collaborators[0].url, user.url, org.url, members[-1].url],
    }


def _as_upstream(result: dict[str, Any], mirror: str, upstream: str) -> dict[str, Any]:
    """`result` with the mirror's URLs written back to the upstream's, to compare with what
    the upstream itself answered."""
    text = json.dumps(result, default=str)
    assert upstream not in text  # nothing through the mirror points at the upstream
    restored: dict[str, Any] = json.loads(text.replace(mirror, upstream))
    return restored


def test_pygithub_gets_what_the_upstream_gives_eager_and_lazy_and_ten_consumers_cost_one_fetch_per_key(
    setup: tuple[Gateway, str], simulator: Simulator, db: psycopg.Connection[Any]
) -> None:
    gateway, reader = setup
    mirror, upstream = f"{gateway.server.url}/mirror/github", f"{simulator.url}/github"
    expected = json.loads(json.dumps(_read_everything(_direct(simulator)), default=str))
    assert len(expected["collaborators"]) == 75  # three pages of 30: pagination is exercised
    assert len(expected["members"]) == 198  # seven pages of 30
    before = simulator.requests("github")

    got = _read_everything(_mirrored(gateway, reader))

    assert all(url.startswith(f"{mirror}/") for url in got["urls"])
    assert _as_upstream(got, mirror, upstream) == expected
    # One upstream fetch per key: repo, collaborators (one page of 100), user, org, members
    # (two pages of 100).
    assert simulator.requests("github") - before == 6
    upstream_requests = simulator.requests("github")
    for consumer in range(9):
        lazy = consumer % 2 == 0
        again = _read_everything(_mirrored(gateway, reader, lazy=lazy))
        assert _as_upstream(again, mirror, upstream) == expected
    assert simulator.requests("github") == upstream_requests  # every key from its snapshot
    runs = db.execute(
        "SELECT dataset, key, count(*) FROM refresh_runs GROUP BY dataset, key ORDER BY 1, 2"
    ).fetchall()
    assert runs == [
        ("github.org", "acme", 1),
        ("github.org_members", "acme", 1),
        ("github.repo", REPO, 1),
        ("github.repo_collaborators", REPO, 1),
        ("github.user", LOGIN, 1),
    ]


def test_lazy_objects_complete_through_the_mirror_not_upstream(
    setup: tuple[Gateway, str], simulator: Simulator
) -> None:
    gateway, reader = setup
    mirror = f"{gateway.server.url}/mirror/github"
    _read_everything(_mirrored(gateway, reader))  # the snapshots exist
    gh = _mirrored(gateway, reader, lazy=True)
    repo = gh.get_repo(REPO)  # lazy: nothing fetched yet
    upstream_requests = simulator.requests("github")

    assert repo.description == "Acme service number 03"  # completed from the mirror's snapshot
    first = next(iter(repo.get_collaborators()))
    assert first.url == f"{mirror}/users/{first.login}"
    assert simulator.requests("github") == upstream_requests

    name = first.name  # not in the listing: PyGithub completes the user from its (mirror) url
    assert name == github_data.profile("", github_data.user_number(first.login) or 0)["name"]
    assert simulator.requests("github") == upstream_requests + 1  # the user's first fetch

    other = next(iter(_mirrored(gateway, reader, lazy=True).get_repo(REPO).get_collaborators()))
    assert (other.login, other.name) == (first.login, name)
    assert simulator.requests("github") == upstream_requests + 1  # now from its snapshot


def _links(header: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """A Link header as (rel, URL without query, query parameters in any order), in order."""
    links = []
    for link in requests.utils.parse_header_links(header) if header else []:
        url = urlsplit(link["url"])
        links.append((link["rel"], url._replace(query="").geturl(), sorted(parse_qsl(url.query))))
    return links


def test_pages_link_back_into_the_mirror_as_github_links_them(
    setup: tuple[Gateway, str], simulator: Simulator
) -> None:
    gateway, reader = setup
    auth = {"Authorization": f"token {reader}"}
    sim_auth = {"Authorization": f"token {SIM_GITHUB_TOKEN}"}
    mirror, upstream = f"{gateway.server.url}/mirror/github", f"{simulator.url}/github"
    for path in (
        f"/repos/{REPO}/collaborators?per_page=20&page=2",
        f"/repos/{REPO}/collaborators?per_page=20&page=4",
        f"/repos/{REPO}/collaborators?permission=admin&per_page=5&page=2",
        f"/repos/{REPO}/collaborators",
        "/orgs/acme/members?page=3",
        "/orgs/acme/members?per_page=500",  # capped at 100
        "/orgs/acme/members?per_page=100&page=9",  # past the end: [] with prev and first
    ):
        direct = simulator.http.get(f"/github{path}", headers=sim_auth)
        mirrored = gateway.http.get(f"/mirror/github{path}", headers=auth)
        assert mirrored.status_code == 200, mirrored.text
        assert _links(mirrored.headers.get("link", "").replace(mirror, upstream)) == _links(
            direct.headers.get("link", "")
        )
        assert upstream not in mirrored.text
        assert json.loads(mirrored.text.replace(mirror, upstream)) == direct.json()
    first = gateway.http.get(f"/mirror/github/repos/{REPO}/collaborators", headers=auth)
    assert first.headers["link"].startswith(f"<{mirror}/repos/{REPO}/collaborators?page=2>")


def test_unusable_page_numbers_are_ignored_as_github_ignores_them_not_a_500(
    setup: tuple[Gateway, str],
) -> None:
    """ "²" passes str.isdigit() but not int(), and int() refuses 5000 digits: GitHub ignores an
    unusable per_page, and a page number that long is past the end."""
    gateway, reader = setup
    auth = {"Authorization": f"token {reader}"}
    path = f"/mirror/github/repos/{REPO}/collaborators"
    default = gateway.http.get(path, headers=auth)
    odd = gateway.http.get(path, params={"per_page": "\u00b2"}, headers=auth)
    assert odd.status_code == 200, odd.text
    assert odd.json() == default.json()
    past = gateway.http.get(path, params={"page": "9" * 5000}, headers=auth)
    assert past.status_code == 200, past.text
    assert past.json() == []
    assert 'rel="first"' in past.headers["link"]


def test_answers_carry_freshness_and_etags_and_errors_are_githubs(
    setup: tuple[Gateway, str], caplog: pytest.LogCaptureFixture
) -> None:
    gateway, reader = setup
    path = f"/mirror/github/repos/{REPO}/collaborators?per_page=10&page=3"
    auth = {"Authorization": f"token {reader}"}
    first = gateway.http.get(path, headers=auth)
    assert first.status_code == 200, first.text
    assert len(first.json()) == 10
    assert first.headers["x-snapshot-stale"] == "false"
    assert first.headers["cache-control"].startswith("max-age=")
    again = gateway.http.get(path, headers={**auth, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    # Same items, different Link (an ignored parameter is carried into it): another ETag, so
    # a 304 never keeps a Link that no longer holds.
    members = "/mirror/github/orgs/acme/members?per_page=100"
    plain, carried = (gateway.http.get(p, headers=auth) for p in (members, f"{members}&x=1"))
    assert plain.content == carried.content
    assert plain.headers["link"] != carried.headers["link"]
    assert plain.headers["etag"] != carried.headers["etag"]

    bearer = gateway.http.get(path, headers={"Authorization": f"Bearer {reader}"})
    assert bearer.status_code == 200

    bad_credentials = {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
    for sent in ({}, {"Authorization": f"token {SIM_GITHUB_TOKEN}"}, {"Authorization": reader}):
        refused = gateway.http.get(path, headers=sent)
        body = refused.json()
        assert "gateway token" in body.pop("detail")  # the gateway's explanation, beside GitHub's
        assert (refused.status_code, body) == (401, bad_credentials)
    access_lines(caplog, refused.headers["x-request-id"])  # the last request's line is written
    assert SIM_GITHUB_TOKEN not in caplog.text
    assert reader not in caplog.text

    not_found = {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
    for missing in ("/repos/acme/repo-99", "/users/nobody-999", "/orgs/other", "/gists"):
        answer = gateway.http.get(f"/mirror/github{missing}", headers=auth)
        body = answer.json()
        body.pop("detail", None)
        assert (answer.status_code, body) == (404, not_found), missing

    outside = gateway.http.get(
        f"/mirror/github/repos/{REPO}/collaborators?affiliation=outside", headers=auth
    )
    assert outside.status_code == 422
    assert "affiliation=all" in outside.json()["message"]
    assert outside.json()["documentation_url"] == DOCS


def test_pygithub_raises_its_own_exceptions_through_the_mirror(
    setup: tuple[Gateway, str], simulator: Simulator
) -> None:
    gateway, reader = setup
    with pytest.raises(github.BadCredentialsException):
        _mirrored(gateway, SIM_GITHUB_TOKEN).get_repo(REPO)  # the upstream token, by mistake
    with pytest.raises(github.UnknownObjectException):
        _mirrored(gateway, reader).get_repo("acme/repo-99")
    with pytest.raises(github.UnknownObjectException):
        _mirrored(gateway, reader).get_user("nobody-999")


def test_an_unserved_path_is_githubs_404_with_the_served_paths_in_detail(
    tmp_path: Path, simulator: Simulator, start_gateway: Callable[[JobsConfig], Gateway]
) -> None:
    path = tmp_path / "jobs.toml"
    path.write_text(f"{sim_providers(simulator.url)}\n")
    gateway = start_gateway(load_jobs(path, env={}))
    answer = gateway.http.get("/mirror/github/repos/acme/repo-01/pulls")
    assert answer.status_code == 404
    body = answer.json()
    assert body["message"] == "Not Found"  # what PyGithub maps to UnknownObjectException
    assert "/orgs/{org}/members" in body["detail"]
