"""The simulator speaks PagerDuty, GitHub and Jira as the real client libraries expect them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from github import (
    Auth,
    BadCredentialsException,
    Github,
    RateLimitExceededException,
    UnknownObjectException,
)
from github.Requester import HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass, Requester
from jira import JIRA, Issue, JIRAError

from helpers import SIM_TOKEN, Simulator
from snapshots.simulator import github_data, jira_data, pagerduty_data

# --- The fake upstreams, driven by the real client libraries and raw HTTP -----------------------
# These tests use the libraries directly, not the project's provider modules.

GITHUB_TOKEN = "sim-github-token"
JIRA_TOKEN = "sim-jira-token"
PD_AUTH = {"Authorization": f"Token token={SIM_TOKEN}"}
GITHUB_AUTH = {"Authorization": f"token {GITHUB_TOKEN}"}
JIRA_AUTH = {"Authorization": f"Bearer {JIRA_TOKEN}"}


@pytest.fixture
def pygithub(simulator: Simulator) -> Iterator[Callable[..., Github]]:
    """A factory of bare PyGithub clients on the simulator.

    Importing the project's GitHub provider injects gated connection classes into PyGithub for
    the whole process (they refuse hosts no provider owns); while a test runs this puts back
    PyGithub's own, then restores whatever was injected.
    """
    injected = tuple(vars(Requester)[f"_Requester__{s}ConnectionClass"] for s in ("http", "https"))
    Requester.resetConnectionClasses()

    def make(token: str = GITHUB_TOKEN) -> Github:
        # retry=None: PyGithub's default retry would sleep until a throttled window resets.
        return Github(
            base_url=f"{simulator.url}/github",
            auth=Auth.Token(token),
            retry=None,
            seconds_between_requests=None,
        )

    yield make
    if injected != (HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass):
        Requester.injectConnectionClasses(*injected)


def _jira(simulator: Simulator, token: str = JIRA_TOKEN, server_info: bool = False) -> JIRA:
    return JIRA(
        server=f"{simulator.url}/jira",
        token_auth=token,
        get_server_info=server_info,
        max_retries=0,
    )


def _keys(issues: Iterable[Issue]) -> list[str]:
    return [issue.key for issue in issues]


# PagerDuty (pagerduty.RestApiV2Client insists on https://, so these speak raw HTTP)


def test_pagerduty_users_pages_by_offset_until_more_is_false(simulator: Simulator) -> None:
    ids: list[str] = []
    offset, pages = 0, []
    while True:
        page = simulator.http.get(f"/pagerduty/users?offset={offset}", headers=PD_AUTH).json()
        pages.append(page)
        ids += [u["id"] for u in page["users"]]
        if not page["more"]:
            break
        offset += page["limit"]

    assert [(p["offset"], p["limit"], len(p["users"])) for p in pages] == [
        (0, 25, 25),
        (25, 25, 25),
    ]
    assert ids == [pagerduty_data.user_id(n) for n in range(1, 51)]
    assert pages[0]["total"] is None


def test_pagerduty_users_limit_is_capped_at_100_and_total_is_on_request(
    simulator: Simulator,
) -> None:
    page = simulator.http.get("/pagerduty/users?limit=500&total=true", headers=PD_AUTH).json()

    assert (page["limit"], len(page["users"]), page["more"], page["total"]) == (100, 50, False, 50)


def test_pagerduty_escalation_policy_has_rules_of_schedule_and_user_targets(
    simulator: Simulator,
) -> None:
    response = simulator.http.get("/pagerduty/escalation_policies/PPOL002", headers=PD_AUTH)

    policy = response.json()["escalation_policy"]
    assert response.status_code == 200
    assert policy["id"] == "PPOL002"
    assert policy["type"] == "escalation_policy"
    assert policy["on_call_handoff_notifications"] == "if_has_services"
    assert policy["escalation_rules"]
    targets = {t["type"] for rule in policy["escalation_rules"] for t in rule["targets"]}
    assert targets == {"schedule_reference", "user_reference"}


def test_pagerduty_unknown_policy_and_wrong_token_answer_in_pagerduty_shape(
    simulator: Simulator,
) -> None:
    missing = simulator.http.get("/pagerduty/escalation_policies/PPOL404", headers=PD_AUTH)
    wrong = simulator.http.get("/pagerduty/users", headers={"Authorization": "Token token=wrong"})

    assert (missing.status_code, missing.json()) == (
        404,
        {"error": {"message": "Not Found", "code": 2100}},
    )
    assert (wrong.status_code, wrong.json()) == (
        401,
        {"error": {"message": "Invalid Credentials", "code": 2006}},
    )


def test_mutating_a_policy_changes_its_rules(simulator: Simulator) -> None:
    url = "/pagerduty/escalation_policies/PPOL002"
    before = simulator.http.get(url, headers=PD_AUTH).json()["escalation_policy"]
    simulator.mutate("pagerduty", "PPOL002")

    after = simulator.http.get(url, headers=PD_AUTH).json()["escalation_policy"]

    assert after["escalation_rules"] != before["escalation_rules"]
    assert after["escalation_rules"] == pagerduty_data.escalation_rules(2, mutation=1)


def test_rotate_alias_still_changes_who_is_on_call(simulator: Simulator) -> None:
    url = "/pagerduty/schedules/PSCH005/users"
    before = simulator.http.get(url, headers=PD_AUTH).json()["users"]

    rotated = simulator.http.post("/_sim/pagerduty/schedules/PSCH005/rotate")

    assert rotated.json() == {"schedule": "PSCH005", "rotation": 1}
    assert simulator.http.get(url, headers=PD_AUTH).json()["users"] != before


def test_pagerduty_over_its_limit_answers_429_with_ratelimit_headers(
    simulator: Simulator,
) -> None:
    simulator.set_limit("pagerduty", requests=2, period_seconds=60)

    statuses = [
        simulator.http.get("/pagerduty/schedules/PSCH001", headers=PD_AUTH).status_code
        for _ in range(2)
    ]
    throttled = simulator.http.get("/pagerduty/schedules/PSCH001", headers=PD_AUTH)

    assert statuses == [200, 200]
    assert throttled.status_code == 429
    assert throttled.json() == {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
    assert throttled.headers["ratelimit-limit"] == "2"
    assert throttled.headers["ratelimit-remaining"] == "0"
    assert 55 <= int(throttled.headers["ratelimit-reset"]) <= 60
    assert simulator.counters()["pagerduty"] == {
        "requests": 3,
        "by_status": {"200": 2, "429": 1},
        "by_instance": {"": 3},  # untagged: not sent by a gateway
        "by_account": {"main": 3},  # every one carried the main token
        "violations": 1,
    }


def test_throttled_answers_do_not_use_up_the_window(simulator: Simulator) -> None:
    simulator.set_limit("pagerduty", requests=1, period_seconds=1.0)
    url = "/pagerduty/schedules/PSCH001"

    first = simulator.http.get(url, headers=PD_AUTH).status_code
    time.sleep(0.6)
    second = simulator.http.get(url, headers=PD_AUTH).status_code  # throttled at t=0.6
    time.sleep(0.6)
    # The first left the window at t=1.0; had the throttled one entered, it would block until 1.6.
    third = simulator.http.get(url, headers=PD_AUTH).status_code

    assert (first, second, third) == (200, 429, 200)


def test_removing_a_limit_stops_throttling(simulator: Simulator) -> None:
    simulator.set_limit("pagerduty", requests=1, period_seconds=60)
    simulator.http.get("/pagerduty/users", headers=PD_AUTH)
    simulator.clear_limit("pagerduty")

    assert simulator.http.get("/pagerduty/users", headers=PD_AUTH).status_code == 200


# GitHub, through PyGithub


def test_pygithub_reads_a_repository(pygithub: Callable[..., Github]) -> None:
    repo = pygithub().get_repo("acme/repo-03")

    assert repo.full_name == "acme/repo-03"
    assert repo.owner.login == "acme"
    assert repo.owner.type == "Organization"
    assert repo.default_branch == "main"
    assert repo.visibility == "public"


def test_pygithub_follows_link_headers_to_every_collaborator(
    simulator: Simulator, pygithub: Callable[..., Github]
) -> None:
    repo = pygithub().get_repo("acme/repo-03")

    collaborators = list(repo.get_collaborators())

    assert len(collaborators) == 75
    assert [u.login for u in collaborators] == [
        u["login"] for u in github_data.collaborators("", 3, mutation=0)
    ]
    assert collaborators[0].permissions.pull is True
    assert simulator.counters()["github"]["requests"] == 1 + 3  # the repo, then three pages


def test_pygithub_completes_a_lazy_collaborator_from_its_profile(
    simulator: Simulator, pygithub: Callable[..., Github]
) -> None:
    first = next(iter(pygithub().get_repo("acme/repo-03").get_collaborators()))

    name = first.name  # not in the collaborator listing: PyGithub fetches first.url

    assert name == github_data.profile("", github_data.user_number(first.login) or 0)["name"]
    assert simulator.counters()["github"]["by_status"] == {"200": 3}


def test_pygithub_reads_the_organisation_and_pages_through_its_members(
    simulator: Simulator, pygithub: Callable[..., Github]
) -> None:
    org = pygithub().get_organization("acme")

    members = [u.login for u in org.get_members()]

    assert (org.login, org.type, org.public_repos) == ("acme", "Organization", 23)
    assert org.url == f"{simulator.url}/github/orgs/acme"
    assert len(members) == len(set(members)) > 100  # several pages of 30
    collaborators = {u.login for u in pygithub().get_repo("acme/repo-03").get_collaborators()}
    outside = {u.login for u in pygithub().get_repo("acme/repo-03").get_collaborators("outside")}
    assert collaborators - outside <= set(members)  # members are its repos' inside collaborators
    assert not outside & set(members)


def test_github_members_link_header_pages_like_collaborators(simulator: Simulator) -> None:
    response = simulator.http.get("/github/orgs/acme/members?per_page=100", headers=GITHUB_AUTH)
    last = simulator.http.get("/github/orgs/acme/members?per_page=100&page=2", headers=GITHUB_AUTH)

    base = f"{simulator.url}/github/orgs/acme/members"
    assert len(response.json()) == 100
    assert response.headers["link"] == ", ".join(
        [f'<{base}?per_page=100&page=2>; rel="next"', f'<{base}?per_page=100&page=2>; rel="last"']
    )
    assert 0 < len(last.json()) < 100
    assert last.headers["link"] == ", ".join(
        [f'<{base}?per_page=100&page=1>; rel="prev"', f'<{base}?per_page=100&page=1>; rel="first"']
    )
    missing = simulator.http.get("/github/orgs/other/members", headers=GITHUB_AUTH)
    assert (missing.status_code, missing.json()["message"]) == (404, "Not Found")


def test_pygithub_unknown_repo_raises_unknown_object(pygithub: Callable[..., Github]) -> None:
    with pytest.raises(UnknownObjectException):
        pygithub().get_repo("acme/repo-99")


def test_pygithub_wrong_token_raises_bad_credentials(pygithub: Callable[..., Github]) -> None:
    with pytest.raises(BadCredentialsException):
        pygithub("wrong").get_repo("acme/repo-03")


def test_pygithub_over_the_limit_raises_rate_limit_exceeded(
    simulator: Simulator, pygithub: Callable[..., Github]
) -> None:
    simulator.set_limit("github", requests=1, period_seconds=60)
    gh = pygithub()
    gh.get_repo("acme/repo-01")

    with pytest.raises(RateLimitExceededException) as raised:
        gh.get_repo("acme/repo-02")

    headers = raised.value.headers or {}
    assert raised.value.status == 403
    assert headers["x-ratelimit-remaining"] == "0"
    assert 55 <= int(headers["x-ratelimit-reset"]) - time.time() <= 61
    assert simulator.counters()["github"]["violations"] == 1


def test_github_link_header_has_prev_next_last_first_on_the_host_used(
    simulator: Simulator,
) -> None:
    response = simulator.http.get(
        "/github/repos/acme/repo-03/collaborators?per_page=20&page=2", headers=GITHUB_AUTH
    )

    base = f"{simulator.url}/github/repos/acme/repo-03/collaborators"
    assert len(response.json()) == 20
    assert response.headers["link"] == ", ".join(
        [
            f'<{base}?per_page=20&page=1>; rel="prev"',
            f'<{base}?per_page=20&page=3>; rel="next"',
            f'<{base}?per_page=20&page=4>; rel="last"',
            f'<{base}?per_page=20&page=1>; rel="first"',
        ]
    )


def test_github_rate_headers_count_down_without_a_limit(simulator: Simulator) -> None:
    first = simulator.http.get("/github/repos/acme/repo-01", headers=GITHUB_AUTH)
    second = simulator.http.get("/github/repos/acme/repo-01", headers=GITHUB_AUTH)

    assert first.headers["x-ratelimit-limit"] == "5000"
    assert first.headers["x-ratelimit-resource"] == "core"
    assert [r.headers["x-ratelimit-remaining"] for r in (first, second)] == ["4999", "4998"]
    assert second.headers["x-ratelimit-used"] == "2"
    assert int(first.headers["x-ratelimit-reset"]) > time.time()


def test_github_matching_etag_gets_304_that_skips_the_rate_limit(simulator: Simulator) -> None:
    simulator.set_limit("github", requests=1, period_seconds=60)
    url = "/github/repos/acme/repo-03/collaborators"
    first = simulator.http.get(url, headers=GITHUB_AUTH)

    revalidated = simulator.http.get(
        url, headers={**GITHUB_AUTH, "If-None-Match": first.headers["etag"]}
    )
    stale = simulator.http.get(url, headers={**GITHUB_AUTH, "If-None-Match": 'W/"old"'})

    assert first.headers["etag"].startswith('W/"')
    assert (revalidated.status_code, revalidated.content) == (304, b"")
    assert revalidated.headers["etag"] == first.headers["etag"]
    assert stale.status_code == 403  # a changed answer is a normal request: over the limit
    assert simulator.counters()["github"] == {
        "requests": 3,
        "by_status": {"200": 1, "304": 1, "403": 1},
        "by_instance": {"": 3},
        "by_account": {"main": 3},
        "violations": 1,
    }


def test_mutating_a_repo_swaps_one_collaborator_and_demotes_one_admin(
    simulator: Simulator, pygithub: Callable[..., Github]
) -> None:
    repo = pygithub().get_repo("acme/repo-03")
    before = {u.login: u.role_name for u in repo.get_collaborators()}
    simulator.mutate("github", "acme/repo-03")

    after = {u.login: u.role_name for u in repo.get_collaborators()}

    assert len(set(before) - set(after)) == 1
    assert len(set(after) - set(before)) == 1
    demoted = [k for k in set(before) & set(after) if before[k] != after[k]]
    assert [(before[k], after[k]) for k in demoted] == [("admin", "write")]


# Jira, through the jira library


def test_jira_server_search_fetches_every_page(simulator: Simulator) -> None:
    issues = _jira(simulator).search_issues("project = PRJ3", maxResults=False)

    assert len(issues) == 130
    assert _keys(issues) == [f"PRJ3-{i}" for i in range(1, 131)]
    assert issues[0].fields.status.name in jira_data.status_names()
    # /field (the library maps field names first), then pages of 100 and 30
    assert simulator.counters()["jira"]["requests"] == 3


def test_jira_cloud_enhanced_search_follows_next_page_tokens(simulator: Simulator) -> None:
    simulator.set_jira_deployment("Cloud")
    client = _jira(simulator, server_info=True)

    issues = client.enhanced_search_issues("project = PRJ3", maxResults=0)

    assert client.deploymentType == "Cloud"
    assert isinstance(issues, list)
    assert _keys(issues) == [f"PRJ3-{i}" for i in range(1, 131)]


def test_jira_cloud_search_issues_goes_through_search_jql(simulator: Simulator) -> None:
    simulator.set_jira_deployment("Cloud")

    issues = _jira(simulator, server_info=True).search_issues(
        'project = "PRJ8" ORDER BY key DESC', maxResults=False
    )

    assert _keys(issues) == [f"PRJ8-{i}" for i in range(101, 0, -1)]


def test_jira_library_reads_a_project(simulator: Simulator) -> None:
    project = _jira(simulator).project("PRJ3")

    assert project.key == "PRJ3"
    assert project.projectTypeKey == "software"
    assert project.lead.displayName
    assert project.archived is False


def test_jira_basic_auth_with_the_token_as_password_is_accepted(simulator: Simulator) -> None:
    client = JIRA(
        server=f"{simulator.url}/jira",
        basic_auth=("someone@example.com", JIRA_TOKEN),
        get_server_info=False,
        max_retries=0,
    )

    assert client.project("PRJ1").key == "PRJ1"


def test_jira_wrong_token_is_401_in_jira_shape(simulator: Simulator) -> None:
    with pytest.raises(JIRAError) as raised:
        _jira(simulator, token="wrong").project("PRJ3")

    assert raised.value.status_code == 401
    assert "You are not authenticated" in str(raised.value.text)


def test_jira_unknown_project_is_404_in_jira_shape(simulator: Simulator) -> None:
    response = simulator.http.get("/jira/rest/api/2/project/NOPE", headers=JIRA_AUTH)

    assert response.status_code == 404
    assert response.json() == {
        "errorMessages": ["No project could be found with key 'NOPE'."],
        "errors": {},
    }


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("assignee = currentUser()", "Error in the JQL Query"),
        ("project = PRJ99", "The value 'PRJ99' does not exist for the field 'project'."),
        ('project = PRJ3 AND status = "Nope"', "does not exist for the field 'status'"),
    ],
)
def test_jira_rejects_queries_it_cannot_answer_with_400(
    simulator: Simulator, jql: str, message: str
) -> None:
    with pytest.raises(JIRAError) as raised:
        _jira(simulator).search_issues(jql)

    assert raised.value.status_code == 400
    assert message in str(raised.value.text)


def test_jira_status_filter_and_fields_selection(simulator: Simulator) -> None:
    body = {"jql": 'PROJECT = prj3 and STATUS != "Done"', "fields": ["status"], "maxResults": 100}
    response = simulator.http.post("/jira/rest/api/2/search", json=body, headers=JIRA_AUTH)

    page = response.json()
    assert page["total"] == sum(
        1 for i in jira_data.issues("", 3, mutation=0) if i["fields"]["status"]["name"] != "Done"
    )
    assert {s["fields"]["status"]["name"] for s in page["issues"]} == {"To Do", "In Progress"}
    assert {tuple(i["fields"]) for i in page["issues"]} == {("status",)}
    assert set(page["issues"][0]) >= {"id", "key", "self"}


def test_jira_v3_search_jql_pages_with_tokens_and_marks_the_last(simulator: Simulator) -> None:
    url = "/jira/rest/api/3/search/jql"
    first = simulator.http.get(url, params={"jql": "project = PRJ3"}, headers=JIRA_AUTH).json()
    token = first["nextPageToken"]
    params = {"jql": "project = PRJ3", "nextPageToken": token, "maxResults": "100"}
    last = simulator.http.get(url, params=params, headers=JIRA_AUTH).json()

    assert (len(first["issues"]), first["isLast"]) == (50, False)
    assert (len(last["issues"]), last["isLast"]) == (80, True)
    assert "nextPageToken" not in last


def test_jira_over_its_limit_answers_429_with_retry_after(simulator: Simulator) -> None:
    simulator.set_limit("jira", requests=1, period_seconds=30)
    client = _jira(simulator)
    client.project("PRJ1")

    with pytest.raises(JIRAError) as raised:
        client.project("PRJ1")

    assert raised.value.status_code == 429
    assert raised.value.response is not None
    assert 25 <= int(raised.value.response.headers["Retry-After"]) <= 30
    assert raised.value.response.json() == {"errorMessages": ["Rate limit exceeded."], "errors": {}}


def test_mutating_a_project_changes_some_issues_only(simulator: Simulator) -> None:
    client = _jira(simulator)
    before = {
        i.key: i.raw["fields"] for i in client.search_issues("project = PRJ3", maxResults=False)
    }
    simulator.mutate("jira", "PRJ3")

    after = {
        i.key: i.raw["fields"] for i in client.search_issues("project = PRJ3", maxResults=False)
    }

    changed = [k for k in before if before[k] != after[k]]
    assert 0 < len(changed) < len(before)
    for key in changed:
        assert before[key]["updated"] < after[key]["updated"]
        assert before[key]["status"] != after[key]["status"]


# Faults, mutations and counters through the control API


def test_error_fault_answers_before_auth_then_clears(simulator: Simulator) -> None:
    simulator.add_fault("pagerduty", "error", status=503, retry_after="7")
    wrong_token = {"Authorization": "Token token=wrong"}

    faulted = simulator.http.get("/pagerduty/schedules/PSCH001", headers=wrong_token)
    after = simulator.http.get("/pagerduty/schedules/PSCH001", headers=wrong_token)

    assert faulted.status_code == 503
    assert faulted.headers["retry-after"] == "7"
    assert faulted.json()["error"]["message"] == "Service Unavailable"
    assert after.status_code == 401
    assert simulator.counters()["pagerduty"] == {
        "requests": 2,
        "by_status": {"401": 1, "503": 1},
        "by_instance": {"": 2},
        "by_account": {},  # a wrong token is no account's
        "violations": 0,
    }


def test_fault_applies_only_to_matching_paths_for_its_count(simulator: Simulator) -> None:
    simulator.add_fault("github", "error", status=500, count=2, path="repo-03")

    statuses = [
        simulator.http.get(f"/github/repos/acme/{name}", headers=GITHUB_AUTH).status_code
        for name in ("repo-04", "repo-03", "repo-03", "repo-03")
    ]

    assert statuses == [200, 500, 500, 200]


def test_timeout_fault_outlasts_a_short_client_timeout(simulator: Simulator) -> None:
    simulator.add_fault("pagerduty", "timeout", seconds=1.0)

    with pytest.raises(httpx.ReadTimeout):
        simulator.http.get("/pagerduty/users", headers=PD_AUTH, timeout=0.2)
    assert simulator.http.get("/pagerduty/users", headers=PD_AUTH).status_code == 200


def test_malformed_fault_sends_200_that_is_not_json(
    simulator: Simulator, pygithub: Callable[..., Github]
) -> None:
    simulator.add_fault("github", "malformed")

    # PyGithub lets the decoder's error through (json.JSONDecodeError, a ValueError).
    with pytest.raises(ValueError, match="Unterminated string"):
        pygithub().get_repo("acme/repo-03")
    assert simulator.counters()["github"]["by_status"] == {"200": 1}


@pytest.mark.parametrize(
    ("provider", "path", "headers", "expected"),
    [
        (
            "pagerduty",
            "/pagerduty/users?offset=25",
            PD_AUTH,
            {"users": [], "offset": 25, "limit": 25, "more": False, "total": None},
        ),
        ("pagerduty", "/pagerduty/schedules/PSCH001/users", PD_AUTH, {"users": []}),
        ("github", "/github/repos/acme/repo-03/collaborators", GITHUB_AUTH, []),
        (
            "jira",
            "/jira/rest/api/2/search?jql=project%3DPRJ3",
            JIRA_AUTH,
            {"expand": "schema,names", "startAt": 0, "maxResults": 50, "total": 0, "issues": []},
        ),
        (
            "jira",
            "/jira/rest/api/3/search/jql?jql=project%3DPRJ3",
            JIRA_AUTH,
            {"issues": [], "isLast": True},
        ),
    ],
)
def test_empty_fault_keeps_the_envelope_without_items(
    simulator: Simulator, provider: str, path: str, headers: dict[str, str], expected: object
) -> None:
    simulator.add_fault(provider, "empty")

    response = simulator.http.get(path, headers=headers)

    assert (response.status_code, response.json()) == (200, expected)


def _rels(response: httpx.Response) -> dict[str, str]:
    """rel -> page number of each Link the response carries."""
    return {
        str(rel): str(link["url"]).rsplit("page=", 1)[1] for rel, link in response.links.items()
    }


def test_truncated_fault_empties_a_github_page_but_keeps_its_link(simulator: Simulator) -> None:
    simulator.add_fault("github", "truncated", path="&page=2")
    url = "/github/repos/acme/repo-03/collaborators?per_page=30"

    first = simulator.http.get(url, headers=GITHUB_AUTH)
    second = simulator.http.get(f"{url}&page=2", headers=GITHUB_AUTH)
    again = simulator.http.get(f"{url}&page=2", headers=GITHUB_AUTH)

    assert (len(first.json()), _rels(first)) == (30, {"next": "2", "last": "3"})
    assert (second.status_code, second.json()) == (200, [])
    assert _rels(second) == {"prev": "1", "next": "3", "last": "3", "first": "1"}
    assert len(again.json()) == 30  # one use only


@pytest.mark.parametrize(
    ("provider", "path", "headers", "expected"),
    [
        (
            "jira",
            "/jira/rest/api/2/search?jql=project%3DPRJ3&startAt=100&maxResults=100",
            JIRA_AUTH,
            {"startAt": 100, "maxResults": 100, "total": 130, "issues": []},
        ),
        (
            "jira",
            "/jira/rest/api/3/search/jql?jql=project%3DPRJ3&maxResults=100",
            JIRA_AUTH,
            {"issues": [], "isLast": False},
        ),
        (
            "pagerduty",
            "/pagerduty/users?offset=20&limit=20&total=true",
            PD_AUTH,
            {"users": [], "offset": 20, "limit": 20, "more": True, "total": 50},
        ),
    ],
)
def test_truncated_fault_empties_a_page_but_keeps_total_more_and_tokens(
    simulator: Simulator,
    provider: str,
    path: str,
    headers: dict[str, str],
    expected: dict[str, object],
) -> None:
    simulator.add_fault(provider, "truncated")

    body = simulator.http.get(path, headers=headers).json()

    assert {k: body[k] for k in expected} == expected
    if "isLast" in body:
        assert body["nextPageToken"]  # still leads to the next page


def test_overstated_fault_links_github_to_a_page_past_the_last(simulator: Simulator) -> None:
    simulator.add_fault("github", "overstated", path="&page=3")
    url = "/github/repos/acme/repo-03/collaborators?per_page=30"

    third = simulator.http.get(f"{url}&page=3", headers=GITHUB_AUTH)
    fourth = simulator.http.get(f"{third.links['next']['url']}", headers=GITHUB_AUTH)

    assert (len(third.json()), _rels(third)["next"], _rels(third)["last"]) == (15, "4", "4")
    assert (fourth.status_code, fourth.json()) == (200, [])


@pytest.mark.parametrize(
    ("provider", "path", "headers", "expected"),
    [
        (
            "jira",
            "/jira/rest/api/2/search?jql=project%3DPRJ3&startAt=100&maxResults=100",
            JIRA_AUTH,
            {"startAt": 100, "total": 230, "issues": 30},
        ),
        (
            "jira",
            "/jira/rest/api/3/search/jql?jql=project%3DPRJ3&maxResults=100",
            JIRA_AUTH,
            {"isLast": False, "nextPageToken": None, "issues": 100},
        ),
        (
            "pagerduty",
            "/pagerduty/users?offset=40&limit=20&total=true",
            PD_AUTH,
            {"more": True, "total": 70, "users": 10},
        ),
        (
            "pagerduty",
            "/pagerduty/schedules/PSCH001/users",
            PD_AUTH,
            {"more": True, "offset": 0, "total": None},
        ),
    ],
)
def test_overstated_fault_announces_more_than_there_is(
    simulator: Simulator,
    provider: str,
    path: str,
    headers: dict[str, str],
    expected: dict[str, object],
) -> None:
    simulator.add_fault(provider, "overstated")

    body = simulator.http.get(path, headers=headers).json()

    got = {k: len(body[k]) if isinstance(body.get(k), list) else body.get(k) for k in expected}
    assert got == expected


def test_paging_faults_still_check_the_token(simulator: Simulator) -> None:
    simulator.add_fault("github", "truncated", count=2)
    wrong = {"Authorization": "token wrong"}

    refused = simulator.http.get("/github/repos/acme/repo-03/collaborators", headers=wrong)
    emptied = simulator.http.get("/github/repos/acme/repo-03/collaborators", headers=GITHUB_AUTH)

    assert (refused.status_code, emptied.status_code, emptied.json()) == (401, 200, [])


def test_pygithub_stops_without_a_word_at_a_truncated_page(
    simulator: Simulator, pygithub: Callable[..., Github]
) -> None:
    simulator.add_fault("github", "truncated", path="collaborators?page=2")

    collaborators = list(pygithub().get_repo("acme/repo-03").get_collaborators())

    # The library ends the list at the empty page though its Link announced page 3: the
    # gateway's own check is what keeps such a list from being stored.
    assert len(collaborators) == 30


def test_jira_library_stops_at_an_overstated_cloud_page(simulator: Simulator) -> None:
    simulator.set_jira_deployment("Cloud")
    simulator.add_fault("jira", "overstated", path="search/jql")
    client = _jira(simulator, server_info=True)

    issues = client.enhanced_search_issues("project = PRJ3", maxResults=0)

    assert len(issues) == 100  # isLast=false, but no nextPageToken to follow


def test_throttle_fault_answers_as_each_provider_throttles(simulator: Simulator) -> None:
    for provider in ("pagerduty", "github", "jira"):
        simulator.add_fault(provider, "throttle", retry_after="3")

    pd = simulator.http.get("/pagerduty/users", headers=PD_AUTH)
    gh = simulator.http.get("/github/repos/acme/repo-01", headers=GITHUB_AUTH)
    jr = simulator.http.get("/jira/rest/api/2/project/PRJ1", headers=JIRA_AUTH)

    assert (pd.status_code, pd.headers["retry-after"], pd.headers["ratelimit-reset"]) == (
        429,
        "3",
        "3",
    )
    assert pd.headers["ratelimit-remaining"] == "0"
    assert (gh.status_code, gh.headers["retry-after"]) == (403, "3")
    assert gh.json()["message"] == "API rate limit exceeded for user ID 1."
    assert gh.headers["x-ratelimit-remaining"] == "0"
    assert 0 < int(gh.headers["x-ratelimit-reset"]) - time.time() <= 4
    assert (jr.status_code, jr.headers["retry-after"]) == (429, "3")
    assert jr.json()["errorMessages"] == ["Rate limit exceeded."]
    counters = simulator.counters()
    assert [counters[p]["violations"] for p in ("pagerduty", "github", "jira")] == [0, 0, 0]


def test_throttle_fault_passes_an_http_date_retry_after_through_verbatim(
    simulator: Simulator,
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    simulator.add_fault("pagerduty", "throttle", retry_after=when)

    response = simulator.http.get("/pagerduty/users", headers=PD_AUTH)

    assert response.status_code == 429
    assert response.headers["retry-after"] == when
    assert 3 <= int(response.headers["ratelimit-reset"]) <= 6


def test_cleared_faults_no_longer_apply(simulator: Simulator) -> None:
    simulator.add_fault("jira", "error", count=5)
    simulator.clear_faults("jira")

    assert simulator.http.get("/jira/rest/api/2/project/PRJ1", headers=JIRA_AUTH).status_code == 200


def test_mutating_an_unknown_object_is_404(simulator: Simulator) -> None:
    responses = [
        simulator.http.post(f"/_sim/mutate/{provider}/{object_id}")
        for provider, object_id in (
            ("pagerduty", "PSCH999"),
            ("github", "acme/repo-99"),
            ("jira", "PRJ99"),
            ("nope", "x"),
        )
    ]

    assert [r.status_code for r in responses] == [404, 404, 404, 404]


def test_counters_cover_every_provider_and_reset_restores_defaults(simulator: Simulator) -> None:
    simulator.set_token("github", "rotated")
    simulator.set_limit("jira", requests=1, period_seconds=60)
    simulator.add_fault("pagerduty", "error", count=3)
    simulator.mutate("github", "acme/repo-03")
    simulator.http.get("/pagerduty/users", headers=PD_AUTH)
    simulator.http.get("/github/repos/acme/repo-03", headers=GITHUB_AUTH)
    for _ in range(2):
        simulator.http.get("/jira/rest/api/2/project/PRJ1", headers=JIRA_AUTH)
    assert simulator.counters() == {
        "pagerduty": {
            "requests": 1,
            "by_status": {"503": 1},
            "by_instance": {"": 1},
            "by_account": {},
            "violations": 0,
        },
        "github": {
            "requests": 1,
            "by_status": {"401": 1},
            "by_instance": {"": 1},
            "by_account": {},
            "violations": 0,
        },
        "jira": {
            "requests": 2,
            "by_status": {"200": 1, "429": 1},
            "by_instance": {"": 2},
            "by_account": {"main": 2},
            "violations": 1,
        },
    }

    simulator.http.post("/_sim/reset").raise_for_status()

    assert simulator.http.get("/pagerduty/users", headers=PD_AUTH).status_code == 200
    repo = simulator.http.get("/github/repos/acme/repo-03", headers=GITHUB_AUTH)
    assert repo.json()["pushed_at"] == github_data.repository("", 3, mutation=0)["pushed_at"]
    for _ in range(2):
        simulator.http.get("/jira/rest/api/2/project/PRJ1", headers=JIRA_AUTH)
    assert simulator.counters()["jira"] == {
        "requests": 2,
        "by_status": {"200": 2},
        "by_instance": {"": 2},
        "by_account": {"main": 2},
        "violations": 0,
    }


def test_requests_are_counted_by_the_gateway_instance_in_their_user_agent(
    simulator: Simulator,
) -> None:
    for agent in ("pagerduty/7 snapshots/0.1 snapshots-instance/worker-a", "curl/8", ""):
        headers = {**PD_AUTH, "User-Agent": agent}
        simulator.http.get("/pagerduty/schedules/PSCH001", headers=headers)

    assert simulator.counters()["pagerduty"]["by_instance"] == {"": 2, "worker-a": 1}


def test_requests_in_flight_are_listed_with_their_instance_until_answered(
    simulator: Simulator,
) -> None:
    simulator.set_latency(1.0)
    headers = {**PD_AUTH, "User-Agent": "pagerduty/7 snapshots-instance/worker-b"}

    def listed() -> list[dict[str, object]]:
        """This test's requests (an earlier test's abandoned ones may still be in flight)."""
        pending: list[dict[str, object]] = simulator.http.get("/_sim/in_flight").json()
        return [r for r in pending if r["instance"] == "worker-b"]

    with httpx.Client(base_url=simulator.url, timeout=10) as http, ThreadPoolExecutor(1) as pool:
        answer = pool.submit(http.get, "/pagerduty/schedules/PSCH002/users", headers=headers)
        deadline = time.monotonic() + 5
        while not (pending := listed()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [(r["provider"], r["path"]) for r in pending] == [
            ("pagerduty", "/pagerduty/schedules/PSCH002/users")
        ]
        assert 0 <= float(str(pending[0]["seconds"])) < 1.0
        assert simulator.counters()["pagerduty"]["requests"] == 0  # counted when answered
        assert answer.result().status_code == 200

    assert listed() == []
    assert simulator.counters()["pagerduty"]["by_instance"] == {"worker-b": 1}


def test_a_sized_simulator_answers_beyond_the_default_counts_until_reset(
    simulator: Simulator,
) -> None:
    beyond = {
        "pagerduty": "/pagerduty/schedules/PSCH021/users",
        "jira": "/jira/rest/api/2/project/PRJ51",
        "github": "/github/repos/acme/repo-31",
    }
    past_new_size = {
        "pagerduty": "/pagerduty/schedules/PSCH601/users",
        "jira": "/jira/rest/api/2/project/PRJ601",
        "github": "/github/repos/acme/repo-601",
    }
    auth = {"pagerduty": PD_AUTH, "jira": JIRA_AUTH, "github": GITHUB_AUTH}

    def statuses(paths: dict[str, str]) -> dict[str, int]:
        return {
            p: simulator.http.get(path, headers=auth[p]).status_code for p, path in paths.items()
        }

    assert statuses(beyond) == {"pagerduty": 404, "jira": 404, "github": 404}

    resized = simulator.http.put(
        "/_sim/size", json={"schedules": 600, "projects": 600, "repos": 600}
    )

    assert resized.json() == {"schedules": 600, "projects": 600, "repos": 600}
    assert statuses(beyond) == {"pagerduty": 200, "jira": 200, "github": 200}
    assert statuses(past_new_size) == {"pagerduty": 404, "jira": 404, "github": 404}
    assert simulator.http.post("/_sim/mutate/jira/PRJ600").status_code == 200
    assert simulator.http.post("/_sim/mutate/jira/PRJ601").status_code == 404
    assert simulator.http.put("/_sim/size", json={"repos": 0}).status_code == 400

    simulator.http.post("/_sim/reset").raise_for_status()

    assert simulator.http.get("/_sim/size").json() == {"schedules": 20, "projects": 50, "repos": 30}
    assert statuses(beyond) == {"pagerduty": 404, "jira": 404, "github": 404}
