"""The PagerDuty mirror: the real `pagerduty` library, pointed at `/mirror/pagerduty` with a
gateway token, gets what it gets from the simulator directly; ten such consumers cost one
upstream fetch per key; errors and auth come in PagerDuty's own shapes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pagerduty
import psycopg
import pytest

from helpers import SIM_TOKEN, Gateway, Simulator, access_lines, sim_providers
from snapshots.api.auth import create_token
from snapshots.config import JobsConfig, load_jobs

StartGateway = Callable[[JobsConfig], Gateway]
DATASETS = ("schedule_users", "schedule", "escalation_policy", "user", "users")


class PlainHttpClient(pagerduty.RestApiV2Client):
    """The library client as a consumer with a plain-HTTP test setup writes it: the library's
    `url` setter refuses http://, so the property is overridden (see README)."""

    @property
    def url(self) -> str:
        return str(self._url)

    @url.setter
    def url(self, value: str) -> None:
        self._url = value


@pytest.fixture
def setup(tmp_path: Path, simulator: Simulator, start_gateway: StartGateway) -> tuple[Gateway, str]:
    tokens = tmp_path / "tokens"
    reader = create_token(tokens, "oncall-bot", "reader")
    tables = "\n".join(f'[datasets."pagerduty.{name}"]' for name in DATASETS)
    path = tmp_path / "jobs.toml"
    path.write_text(
        f'[service]\nread_wait = "30s"\n[api]\ntokens_file = "{tokens}"\n'
        f"{sim_providers(simulator.url)}\n{tables}\n"
    )
    return start_gateway(load_jobs(path, env={})), reader


def _clients(gateway: Gateway, reader: str, simulator: Simulator) -> tuple[Any, Any]:
    direct = PlainHttpClient(SIM_TOKEN, base_url=f"{simulator.url}/pagerduty")
    mirrored = PlainHttpClient(reader, base_url=f"{gateway.server.url}/mirror/pagerduty")
    return direct, mirrored


def _without_window(schedule: dict[str, Any]) -> dict[str, Any]:
    """A schedule without its rendered final layer (rendered over the window each call asked)."""
    return {k: v for k, v in schedule.items() if k != "final_schedule"}


def _read_everything(client: Any) -> dict[str, Any]:
    return {
        "schedule_users": client.rget("/schedules/PSCH001/users"),
        "schedule": _without_window(client.rget("/schedules/PSCH005")),
        "on_call": [
            e["user"]["id"]
            for e in client.rget("/schedules/PSCH005")["final_schedule"][
                "rendered_schedule_entries"
            ]
        ],
        "policy": client.rget("/escalation_policies/PPOL002"),
        "user": client.rget("/users/PUSR007"),
        "all_users": list(client.iter_all("users")),
    }


def test_the_library_gets_what_the_upstream_gives_and_ten_consumers_cost_one_fetch_per_key(
    setup: tuple[Gateway, str], simulator: Simulator
) -> None:
    gateway, reader = setup
    direct, mirrored = _clients(gateway, reader, simulator)
    expected = _read_everything(direct)
    assert len(expected["all_users"]) == 50  # several pages of 25: pagination is exercised

    got = _read_everything(mirrored)
    assert got == expected

    upstream = simulator.requests()
    for _ in range(9):
        _, consumer = _clients(gateway, reader, simulator)
        assert _read_everything(consumer) == expected
    assert simulator.requests() == upstream  # every key came from its snapshot


def test_answers_carry_freshness_and_etags_and_errors_are_pagerdutys(
    setup: tuple[Gateway, str], caplog: pytest.LogCaptureFixture
) -> None:
    gateway, reader = setup
    path = "/mirror/pagerduty/users/PUSR003"
    auth = {"Authorization": f"Token token={reader}"}
    first = gateway.http.get(path, headers=auth)
    assert first.status_code == 200, first.text
    assert first.json()["user"]["id"] == "PUSR003"
    assert first.headers["x-snapshot-stale"] == "false"
    assert first.headers["cache-control"].startswith("max-age=")
    assert int(first.headers["age"]) >= 0
    again = gateway.http.get(path, headers={**auth, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304

    missing = gateway.http.get("/mirror/pagerduty/users/PUSR999", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == 2100

    unserved = gateway.http.get("/mirror/pagerduty/incidents", headers=auth)
    assert unserved.status_code == 404
    assert "/escalation_policies/{id}" in unserved.json()["error"]["message"]

    for sent in ({}, {"Authorization": f"Token token={SIM_TOKEN}"}):  # none, or the upstream's
        refused = gateway.http.get(path, headers=sent)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == 2006
    access_lines(caplog, refused.headers["x-request-id"])  # the last request's line is written
    assert SIM_TOKEN not in caplog.text
    assert reader not in caplog.text

    # int() also reads "1_0", " 5" and "\u0663" (an Arabic-Indic 3); PagerDuty reads none of them.
    for query in ("offset=x", "offset=1_0", "limit=%205", "limit=%D9%A3"):
        bad_page = gateway.http.get(f"/mirror/pagerduty/users?{query}", headers=auth)
        assert bad_page.status_code == 400, query
        assert bad_page.json()["error"]["code"] == 2001


def test_the_library_raises_its_own_error_for_an_unknown_token(
    setup: tuple[Gateway, str], simulator: Simulator
) -> None:
    gateway, _ = setup
    _, stranger = _clients(gateway, "not-a-gateway-token", simulator)
    with pytest.raises(pagerduty.HttpError) as raised:
        stranger.rget("/users/PUSR001")
    response = raised.value.response
    assert response is not None
    assert response.status_code == 401


def test_mirror_any_caches_every_get_path_and_says_what_is_missing_upstream(
    tmp_path: Path,
    simulator: Simulator,
    start_gateway: StartGateway,
    db: psycopg.Connection[Any],
) -> None:
    path = tmp_path / "jobs.toml"
    tables = sim_providers(simulator.url, pagerduty='mirror = "any"')
    path.write_text(f'[service]\nread_wait = "30s"\n{tables}\n')
    config = load_jobs(path, env={})
    assert "pagerduty.mirror_any" in config.datasets  # registered by the opt-in alone
    gateway = start_gateway(config)

    # A path no mirror route knows is fetched as is, keyed by the path and its sorted query.
    first = gateway.http.get("/mirror/pagerduty/users?offset=2&limit=3")
    assert first.status_code == 200, first.text
    direct = simulator.http.get(
        "/pagerduty/users",
        params={"limit": "3", "offset": "2"},
        headers={"Authorization": f"Token token={SIM_TOKEN}"},
    )
    # The /users route's dataset is not configured, so the path is cached as any other.
    assert first.json()["users"] == direct.json()["users"]
    reordered = gateway.http.get("/mirror/pagerduty/incidents?b=2&a=1")
    assert reordered.status_code == 404  # the simulator has no incidents: PagerDuty's 404
    assert reordered.json()["error"]["code"] == 2100
    again = gateway.http.get("/mirror/pagerduty/incidents?a=1&b=2")  # same key, remembered
    assert again.status_code == 404
    runs = db.execute(
        "SELECT key, upstream_requests FROM refresh_runs WHERE dataset = 'pagerduty.mirror_any'"
        " AND key LIKE '/incidents%'"
    ).fetchall()
    assert runs == [("/incidents?a=1&b=2", 1)]  # one upstream call for both orders

    # Every value of a repeated parameter (PagerDuty's arrays) is in the key, in the order sent:
    # include[]=teams&include[]=contact_methods is not answered with include[]=contact_methods.
    for query in ("include[]=teams&include[]=contact_methods", "include[]=contact_methods"):
        assert gateway.http.get(f"/mirror/pagerduty/users?{query}").status_code == 200
    arrays = db.execute(
        "SELECT key FROM refresh_runs WHERE dataset = 'pagerduty.mirror_any'"
        " AND key LIKE '/users?include%' ORDER BY id"
    ).fetchall()
    assert arrays == [
        ("/users?include%5B%5D=teams&include%5B%5D=contact_methods",),
        ("/users?include%5B%5D=contact_methods",),
    ]
