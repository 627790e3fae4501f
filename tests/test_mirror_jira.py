"""The Jira mirror: the real `jira` library, pointed at `/mirror/jira` with a gateway token, gets
what it gets from the simulator directly, on Server (`search`, startAt) and Cloud (`search/jql`,
page tokens); ten such consumers cost one upstream fetch per key; errors and auth come in Jira's
own shapes, and searches the snapshot cannot answer exactly are refused."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jira
import psycopg
import pytest

from helpers import Gateway, Simulator, access_lines, sim_providers
from snapshots.api.auth import create_token
from snapshots.config import JobsConfig, load_jobs

StartGateway = Callable[[JobsConfig], Gateway]
SIM_JIRA_TOKEN = "sim-jira-token"
KEPT = ("summary", "status", "assignee", "created")
# The deployment, and the REST version its consumers use (Cloud's current one is 3).
DEPLOYMENTS = {"server": "2", "cloud": "3"}


def _setup(
    tmp_path: Path,
    simulator: Simulator,
    start_gateway: StartGateway,
    deployment: str,
    issues_table: str = f"fields = {json.dumps(list(KEPT))}\n",
) -> tuple[Gateway, str]:
    tokens = tmp_path / "tokens"
    reader = create_token(tokens, "tracker-bot", "reader")
    email = 'email = "bot@example.com"\n' if deployment == "cloud" else ""
    providers = sim_providers(
        simulator.url, jira=f'deployment = "{deployment}"\n{email}budget = "100/1s"\n'
    )
    path = tmp_path / "jobs.toml"
    path.write_text(
        f'[service]\nread_wait = "30s"\n[api]\ntokens_file = "{tokens}"\n{providers}\n'
        f'[datasets."jira.project"]\n[datasets."jira.project_issues"]\n{issues_table}'
    )
    simulator.set_jira_deployment("Cloud" if deployment == "cloud" else "Server")
    return start_gateway(load_jobs(path, env={})), reader


@pytest.fixture(params=list(DEPLOYMENTS))
def deployment(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def setup(
    tmp_path: Path, simulator: Simulator, start_gateway: StartGateway, deployment: str
) -> tuple[Gateway, str]:
    return _setup(tmp_path, simulator, start_gateway, deployment)


def _client(server: str, deployment: str, **auth: Any) -> jira.JIRA:
    options: dict[str, Any] = {"rest_api_version": DEPLOYMENTS[deployment]}
    return jira.JIRA(server=server, options=options, max_retries=0, timeout=30, **auth)


def _direct(simulator: Simulator, deployment: str) -> jira.JIRA:
    return _client(f"{simulator.url}/jira", deployment, token_auth=SIM_JIRA_TOKEN)


def _mirrored(gateway: Gateway, reader: str, deployment: str, basic: bool = False) -> jira.JIRA:
    server = f"{gateway.server.url}/mirror/jira"
    if basic:  # Cloud's scheme: the account email as the user, the gateway token as password
        return _client(server, deployment, basic_auth=("bot@example.com", reader))
    return _client(server, deployment, token_auth=reader)


def _first_page(client: jira.JIRA, jql: str) -> Any:
    """The raw first page: on Cloud without its opaque token (the mirror issues its own)."""
    page = dict(client.search_issues(jql, maxResults=50, fields=list(KEPT), json_result=True))
    if page.pop("nextPageToken", None) is not None:
        page["nextPageToken"] = "<opaque>"
    return page


def _read_everything(client: jira.JIRA) -> dict[str, Any]:
    everything: dict[str, Any] = {
        "deployment": client.deploymentType,
        "project": client.project("PRJ3").raw,
        "lower_case_key": client.project("prj2").raw,
        # All of PRJ3's 130 issues, several pages: startAt on Server, page tokens on Cloud.
        "issues": [
            i.raw
            for i in client.search_issues("project = PRJ3", maxResults=False, fields=list(KEPT))
        ],
        "ordered": [
            i.raw
            for i in client.search_issues(
                'project = "PRJ8" ORDER BY key ASC', maxResults=False, fields=["summary", "status"]
            )
        ],
        "first_page": _first_page(client, "project = PRJ3"),
    }
    if client.deploymentType == "Cloud":
        everything["enhanced"] = [
            i.raw
            for i in client.enhanced_search_issues(
                "project = PRJ8", maxResults=False, fields="assignee,created"
            )
        ]
    return everything


def _as_mirrored(value: Any, simulator: Simulator, gateway: Gateway) -> Any:
    """`value` read from the simulator with its links into the Jira API pointing at the mirror."""
    text = json.dumps(value).replace(f"{simulator.url}/jira/", f"{gateway.server.url}/mirror/jira/")
    return json.loads(text)


def test_the_library_gets_what_the_upstream_gives_and_ten_consumers_cost_one_fetch_per_key(
    setup: tuple[Gateway, str],
    simulator: Simulator,
    deployment: str,
    db: psycopg.Connection[Any],
) -> None:
    gateway, reader = setup
    expected = _as_mirrored(_read_everything(_direct(simulator, deployment)), simulator, gateway)
    assert len(expected["issues"]) == 130 == len({i["key"] for i in expected["issues"]})
    assert len(expected["ordered"]) == 101
    assert set(expected["issues"][0]["fields"]) == set(KEPT)
    assert expected["deployment"] == ("Cloud" if deployment == "cloud" else "Server")

    got = _read_everything(_mirrored(gateway, reader, deployment))
    assert got == expected

    upstream = simulator.requests("jira")
    for n in range(9):
        consumer = _mirrored(gateway, reader, deployment, basic=n % 2 == 1)
        assert _read_everything(consumer) == expected
    assert simulator.requests("jira") == upstream  # every key came from its snapshot
    runs = db.execute(
        "SELECT dataset, key, count(*) FROM refresh_runs GROUP BY dataset, key ORDER BY 1, 2"
    ).fetchall()
    assert runs == [
        ("jira.project", "PRJ2", 1),
        ("jira.project", "PRJ3", 1),
        ("jira.project_issues", "PRJ3", 1),
        ("jira.project_issues", "PRJ8", 1),
    ]


def _basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def test_answers_carry_freshness_and_etags_and_errors_are_jiras(
    setup: tuple[Gateway, str], deployment: str, caplog: pytest.LogCaptureFixture
) -> None:
    gateway, reader = setup
    version = DEPLOYMENTS[deployment]
    api = f"/mirror/jira/rest/api/{version}"
    auth = {"Authorization": f"Bearer {reader}"}
    first = gateway.http.get(f"{api}/project/PRJ1", headers=auth)
    assert first.status_code == 200, first.text
    assert first.json()["key"] == "PRJ1"
    assert first.json()["self"].startswith(f"{gateway.server.url}{api}/project/")
    assert first.headers["x-snapshot-stale"] == "false"
    assert first.headers["cache-control"].startswith("max-age=")
    again = gateway.http.get(
        f"{api}/project/PRJ1", headers={**auth, "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304

    info = gateway.http.get(f"{api}/serverInfo", headers=_basic("anyone", reader))
    assert info.status_code == 200
    assert info.json()["deploymentType"] == ("Cloud" if deployment == "cloud" else "Server")

    missing = gateway.http.get(f"{api}/project/PRJ999", headers=auth)
    assert missing.status_code == 404
    assert missing.json() == {
        "errorMessages": ["No project could be found with key 'PRJ999'."],
        "errors": {},
    }

    unserved = gateway.http.get(f"{api}/issue/PRJ1-1", headers=auth)
    assert unserved.status_code == 404
    assert "/rest/api/2/search" in unserved.json()["errorMessages"][0]

    for sent in (
        {},
        {"Authorization": f"Bearer {SIM_JIRA_TOKEN}"},  # the upstream's token, sent by mistake
        _basic("bot@example.com", SIM_JIRA_TOKEN),
        _basic(reader, "x"),  # the gateway token in the user part is not the password
    ):
        refused = gateway.http.get(f"{api}/project/PRJ1", headers=sent)
        assert refused.status_code == 401
        assert refused.json()["errors"] == {}
        assert "gateway token" in refused.json()["errorMessages"][0]
    access_lines(caplog, refused.headers["x-request-id"])  # the last request's line is written
    assert SIM_JIRA_TOKEN not in caplog.text
    assert reader not in caplog.text


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"jql": "project = PRJ3 AND status = Done"}, "project = KEY, optionally followed by"),
        ({"jql": "project = PRJ3 ORDER BY updated"}, "project = KEY, optionally followed by"),
        ({"jql": "project = 10003"}, "where KEY is a project key"),
        ({"jql": "project = PRJ3", "fields": "*all"}, "fields its snapshot keeps"),
        ({"jql": "project = PRJ3", "fields": "summary,labels"}, "not labels"),
        ({"jql": "project = PRJ3"}, "name their fields"),
        ({"jql": "project = PRJ3", "fields": "summary", "expand": "changelog"}, "with expand"),
        ({"jql": "project = PRJ3", "fields": "summary", "maxResults": "x"}, "non-negative"),
        # Unicode digits pass str.isdigit() but not int(); so do 5000 ASCII ones: a 400, not 500.
        ({"jql": "project = PRJ3", "fields": "summary", "maxResults": "\u00b2"}, "non-negative"),
        ({"jql": "project = PRJ3", "fields": "summary", "maxResults": "9" * 5000}, "non-negative"),
        (
            {"jql": "project = PRJ3", "fields": "summary", "maxResults": "2147483648"},
            "non-negative",
        ),
    ],
)
def test_searches_the_snapshot_cannot_answer_exactly_are_refused(
    setup: tuple[Gateway, str], deployment: str, query: dict[str, str], says: str
) -> None:
    gateway, reader = setup
    path = "search/jql" if deployment == "cloud" else "search"
    answer = gateway.http.get(
        f"/mirror/jira/rest/api/{DEPLOYMENTS[deployment]}/{path}",
        params=query,
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["errors"] == {}
    assert says in body["errorMessages"][0]


def test_odd_page_positions_are_jiras_400_not_a_500(
    setup: tuple[Gateway, str], deployment: str
) -> None:
    """startAt (Server) and a page token's offset (Cloud) in Unicode digits, or too long for
    int(), are refused as Jira refuses them; the token's digest is the real list's, so only its
    offset is odd."""
    gateway, reader = setup
    version = DEPLOYMENTS[deployment]
    auth = {"Authorization": f"Bearer {reader}"}
    query = {"jql": "project = PRJ3", "fields": "summary"}
    if deployment == "server":
        path, oddities = "search", [{"startAt": "\u00b2"}, {"startAt": "9" * 5000}]
    else:
        whole = gateway.http.get(
            f"/mirror/jira/rest/api/{version}/search",
            params={**query, "maxResults": "100"},
            headers=auth,
        )
        assert whole.status_code == 200, whole.text
        keys = [issue["key"] for issue in whole.json()["issues"]]
        whole = gateway.http.get(
            f"/mirror/jira/rest/api/{version}/search",
            params={**query, "maxResults": "100", "startAt": "100"},
            headers=auth,
        )
        keys += [issue["key"] for issue in whole.json()["issues"]]
        digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
        path = "search/jql"
        oddities = [
            {
                "nextPageToken": base64.urlsafe_b64encode(
                    f"mirror:{offset}:{digest}".encode()
                ).decode()
            }
            for offset in ("\u00b2", "9" * 5000)
        ]
    for odd in oddities:
        answer = gateway.http.get(
            f"/mirror/jira/rest/api/{version}/{path}", params={**query, **odd}, headers=auth
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["errors"] == {}


def test_the_library_raises_its_own_error_for_refusals_and_unknown_tokens(
    setup: tuple[Gateway, str], deployment: str
) -> None:
    gateway, reader = setup
    consumer = _mirrored(gateway, reader, deployment)
    with pytest.raises(jira.JIRAError) as refused:
        consumer.search_issues("project = PRJ3 AND status = Done", fields=["summary"])
    assert refused.value.status_code == 400
    assert "project = KEY" in str(refused.value.text)
    with pytest.raises(jira.JIRAError) as unknown:
        _client(f"{gateway.server.url}/mirror/jira", deployment, token_auth="not-a-gateway-token")
    assert unknown.value.status_code == 401


def test_a_narrowed_dataset_answers_only_its_own_query(
    tmp_path: Path, simulator: Simulator, start_gateway: StartGateway
) -> None:
    """With `jql` set, the snapshot holds only the narrowed issues: `project = KEY` alone would be
    answered wrongly, so only the dataset's own query is answered (and exactly as Jira does)."""
    table = 'jql = "status = Done"\nfields = ["summary", "status"]\n'
    gateway, reader = _setup(tmp_path, simulator, start_gateway, "server", table)
    jql = 'project = "PRJ3" AND (status = Done) ORDER BY key ASC'
    direct = _direct(simulator, "server").search_issues(
        jql, maxResults=False, fields=["summary", "status"]
    )
    mirrored = _mirrored(gateway, reader, "server")

    got = mirrored.search_issues(jql, maxResults=False, fields=["summary", "status"])

    expected = _as_mirrored([i.raw for i in direct], simulator, gateway)
    assert 0 < len(expected) < 130
    assert [i.raw for i in got] == expected
    with pytest.raises(jira.JIRAError) as refused:
        mirrored.search_issues("project = PRJ3", fields=["summary"])
    assert refused.value.status_code == 400
    assert "(status = Done)" in str(refused.value.text)


def test_rich_text_fields_only_on_version_2_and_unknown_projects_as_jira_says(
    tmp_path: Path, simulator: Simulator, start_gateway: StartGateway
) -> None:
    """Version 3 sends description as an Atlassian document; the snapshot keeps version 2's
    string, so /rest/api/3 refuses it rather than answering in the wrong shape."""
    table = 'fields = ["summary", "description"]\n'
    gateway, reader = _setup(tmp_path, simulator, start_gateway, "cloud", table)
    auth = {"Authorization": f"Bearer {reader}"}
    query = {"jql": "project = PRJ1", "fields": "summary,description"}

    v2 = gateway.http.get("/mirror/jira/rest/api/2/search/jql", params=query, headers=auth)
    v3 = gateway.http.get("/mirror/jira/rest/api/3/search/jql", params=query, headers=auth)
    unknown = gateway.http.get(
        "/mirror/jira/rest/api/2/search", params={**query, "jql": "project = PRJ999"}, headers=auth
    )

    assert v2.status_code == 200, v2.text
    assert v2.json()["isLast"] is True
    assert v3.status_code == 400
    assert "description only on /rest/api/2" in v3.json()["errorMessages"][0]
    assert unknown.status_code == 400, unknown.text
    bare = gateway.http.get("/api/v1/jira/projects/PRJ999/issues", headers=auth)
    assert bare.status_code == 404  # an unknown project is not a failed refresh
    assert unknown.json()["errorMessages"] == [
        "The value 'PRJ999' does not exist for the field 'project'."
    ]
