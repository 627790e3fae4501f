"""qontract-api's PagerDuty routes on snapshots: a consumer written to that contract gets the
users the simulator says are on call, with freshness headers and 304s; the OpenAPI operations
match qontract-api's; JWTs are verified (expired, revoked, forged: 401); the secret reference
selects the PagerDuty instance."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from helpers import SIM_TOKEN, Gateway, Simulator, access_lines, sim_providers
from qontract_api_consumer import QontractApiClient
from snapshots.api.auth import create_token
from snapshots.config import JobsConfig, load_jobs
from snapshots.errors import ConfigError

StartGateway = Callable[[JobsConfig], Gateway]
SECRET = "a-shared-secret-of-qontract-api-0123456789"
VAULT = "https://vault.example.com"
SECRET_PATH = "app-sre/creds/pagerduty"
REFERENCE = {"secret_manager_url": VAULT, "path": SECRET_PATH, "field": "token"}
FIXTURE = Path(__file__).parent / "data" / "qontract_api_pagerduty.json"
PD = "/pagerduty"


def _jwt(sub: str = "slack-usergroups", expires_in: float = 3600, secret: str = SECRET) -> str:
    claims = {"sub": sub, "exp": int(time.time() + expires_in)}
    return jwt.encode(claims, secret, algorithm="HS256")


def _config(tmp_path: Path, simulator: Simulator, extra: str = "", pagerduty: str = "") -> Path:
    secret = tmp_path / "jwt-secret"
    secret.write_text(SECRET + "\n")
    tokens = tmp_path / "tokens"
    path = tmp_path / "jobs.toml"
    path.write_text(
        f"""
[service]
read_wait = "30s"
[api]
tokens_file = "{tokens}"
[api.jwt]
secret_file = "{secret}"
role = "reader"
revoked_subjects = ["former-integration"]

{sim_providers(simulator.url, pagerduty=pagerduty)}
[datasets."pagerduty.schedule_on_call"]
min_refresh_interval = "1ms"
[datasets."pagerduty.user"]
[datasets."pagerduty.escalation_policy"]
{extra}
"""
    )
    return path


@pytest.fixture
def gateway(tmp_path: Path, simulator: Simulator, start_gateway: StartGateway) -> Gateway:
    return start_gateway(load_jobs(_config(tmp_path, simulator), env={}))


# --- what the simulator says, read the way qontract-api reads PagerDuty ---


def _upstream(simulator: Simulator, path: str, **params: str) -> Any:
    headers = {"Authorization": f"Token token={SIM_TOKEN}"}
    response = simulator.http.get(f"{PD}{path}", params=params, headers=headers)
    response.raise_for_status()
    return response.json()


def _on_call(simulator: Simulator, schedule_id: str) -> list[str]:
    now = datetime.now(UTC)
    window = {"since": now.isoformat(), "until": (now + timedelta(seconds=60)).isoformat()}
    schedule = _upstream(simulator, f"/schedules/{schedule_id}", **window)["schedule"]
    return [
        _upstream(simulator, f"/users/{entry['user']['id']}")["user"]["email"].split("@")[0]
        for entry in schedule["final_schedule"]["rendered_schedule_entries"]
        if not entry["user"].get("deleted_at")
    ]


def _policy_users(simulator: Simulator, policy_id: str) -> tuple[list[str], int, int]:
    """The users qontract-api would answer, how many came from user targets, and how many
    rules were walked."""
    policy = _upstream(simulator, f"/escalation_policies/{policy_id}")["escalation_policy"]
    users: list[str] = []
    direct = walked = 0
    for rule in policy["escalation_rules"]:
        walked += 1
        for target in rule["targets"]:
            if target["type"] == "schedule_reference":
                users += _on_call(simulator, target["id"])
            elif target["type"] == "user_reference":
                users.append(
                    _upstream(simulator, f"/users/{target['id']}")["user"]["email"].split("@")[0]
                )
                direct += 1
        if users and rule["escalation_delay_in_minutes"] != 0:
            break
    return users, direct, walked


def test_the_consumer_gets_who_is_on_call_in_schedules_and_escalation_policies(
    gateway: Gateway, simulator: Simulator
) -> None:
    schedules = [f"PSCH{n:03d}" for n in range(1, 8)]  # PSCH005 renders a deleted user too
    policies = [f"PPOL{n:03d}" for n in range(1, 9)]  # user targets, delays of 0, user-only rules
    expected_schedules = {s: _on_call(simulator, s) for s in schedules}
    expected_policies = {p: _policy_users(simulator, p) for p in policies}
    # The walk meets user targets and a first rule with no delay (so a second rule is read).
    assert sum(direct for _, direct, _ in expected_policies.values()) >= 2
    assert any(walked >= 2 for _, _, walked in expected_policies.values())

    async def consume() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        client = QontractApiClient(gateway.server.url, _jwt())
        try:
            by_schedule = await asyncio.gather(
                *(
                    client.pagerduty_schedule_users(
                        schedule_id=s, secret_manager_url=VAULT, path=SECRET_PATH, field="token"
                    )
                    for s in schedules
                )
            )
            by_policy = await asyncio.gather(
                *(
                    client.pagerduty_escalation_policy_users(
                        policy_id=p, secret_manager_url=VAULT, path=SECRET_PATH, field="token"
                    )
                    for p in policies
                )
            )
        finally:
            await client.aclose()
        return (
            {s: [u.username for u in r.users] for s, r in zip(schedules, by_schedule, strict=True)},
            {p: [u.username for u in r.users] for p, r in zip(policies, by_policy, strict=True)},
        )

    got_schedules, got_policies = asyncio.run(consume())
    assert got_schedules == expected_schedules
    assert got_policies == {p: users for p, (users, _, _) in expected_policies.items()}
    assert all(got_schedules.values())

    # Again, as the next run of the integration would: answered from snapshots, no upstream call.
    before = simulator.requests()
    assert asyncio.run(consume()) == (got_schedules, got_policies)
    assert simulator.requests() == before


def test_answers_carry_freshness_headers_and_a_current_etag_is_a_304(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    url = "/api/v1/external/pagerduty/escalation-policies/PPOL002/users"
    token = _jwt()
    headers = {"Authorization": f"Bearer {token}"}
    first = gateway.http.get(url, params=REFERENCE, headers=headers)
    assert first.status_code == 200, first.text
    assert first.headers["x-snapshot-stale"] == "false"
    assert first.headers["cache-control"].startswith("max-age=")
    assert "stale-if-error=" in first.headers["cache-control"]
    assert int(first.headers["age"]) >= 0
    etag = first.headers["etag"]
    again = gateway.http.get(url, params=REFERENCE, headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    # The access log names the caller by its JWT subject; neither the token nor the secret
    # reference reach the logs.
    assert "token=jwt:slack-usergroups" in access_lines(caplog, again.headers["x-request-id"])[0]
    for secret in (token, VAULT, SECRET_PATH, SECRET):
        assert secret not in caplog.text


def test_expired_revoked_or_forged_jwts_get_401_and_service_tokens_still_work(
    tmp_path: Path, simulator: Simulator, start_gateway: StartGateway
) -> None:
    reader = create_token(tmp_path / "tokens", "dashboard", "reader")
    gateway = start_gateway(load_jobs(_config(tmp_path, simulator), env={}))
    url = "/api/v1/external/pagerduty/schedules/PSCH001/users"
    cases = {
        "expired": _jwt(expires_in=-30),
        "revoked": _jwt(sub="former-integration"),
        "forged": _jwt(secret="not-the-shared-secret-at-all-0123456789"),
        "garbage": "a.b.c",
        # Signed, but naming no one: logs could not say who called, nor could it be revoked.
        "empty subject": _jwt(sub=""),
        "blank subject": _jwt(sub="   "),
    }
    for case, token in cases.items():
        answer = gateway.http.get(
            url, params=REFERENCE, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 401, case
        assert answer.json()["error"]["code"] == "unauthorized"
        assert token not in answer.text
    assert gateway.http.get(url, params=REFERENCE).status_code == 401
    ok = gateway.http.get(url, params=REFERENCE, headers={"Authorization": f"Bearer {reader}"})
    assert ok.status_code == 200, ok.text
    # A JWT has the configured role only: reading, not refreshing.
    refresh = gateway.http.post(
        "/api/v1/refresh/pagerduty.user/PUSR001", headers={"Authorization": f"Bearer {_jwt()}"}
    )
    assert refresh.status_code == 403


def _operation(document: dict[str, Any], path: str) -> dict[str, Any]:
    operation: dict[str, Any] = document["paths"][path]["get"]
    return operation


def _types(schema: dict[str, Any]) -> list[str]:
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    return sorted(option["type"] for option in options)


def _schema(document: dict[str, Any], reference: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
    return schema


def test_the_openapi_operations_match_qontract_apis(gateway: Gateway) -> None:
    facts = json.loads(FIXTURE.read_text())
    document = gateway.http.get("/schema/openapi.json").json()
    assert (
        document["components"]["securitySchemes"]["HTTPBearer"]
        == facts["securitySchemes"]["HTTPBearer"]
    )
    for expected in facts["operations"]:
        operation = _operation(document, expected["path"])
        assert operation["operationId"] == expected["operationId"]
        assert operation["summary"] == expected["summary"]
        assert operation["tags"] == expected["tags"]
        assert operation["security"] == expected["security"]
        parameters = [
            {
                "name": p["name"],
                "in": p["in"],
                "required": p.get("required", False),
                "types": _types(p["schema"]),
            }
            for p in operation["parameters"]
        ]
        assert sorted(parameters, key=lambda p: p["name"]) == sorted(
            expected["parameters"], key=lambda p: p["name"]
        )
        response = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert response["$ref"].rsplit("/", 1)[1] == expected["response"]
    for name, expected_schema in facts["schemas"].items():
        schema = document["components"]["schemas"][name]
        assert sorted(schema.get("required", [])) == sorted(expected_schema["required"]), name
        properties = {}
        for prop, value in schema["properties"].items():
            if value.get("type") == "array":
                properties[prop] = {
                    "type": "array",
                    "items": value["items"]["$ref"].rsplit("/", 1)[1],
                }
            else:
                properties[prop] = {"type": value["type"]}
        assert properties == expected_schema["properties"], name


def test_the_secret_path_selects_the_pagerduty_instance(
    tmp_path: Path, simulator: Simulator, start_gateway: StartGateway
) -> None:
    simulator.add_account("pagerduty", "eu", "eu-account-token")
    extra = f"""
[providers.pd-eu]
kind = "pagerduty"
base_url = "{simulator.url}/pagerduty"
token = "eu-account-token"
secret_paths = ["app-sre/creds/pagerduty-eu"]
[datasets."pd-eu.schedule_on_call"]
[datasets."pd-eu.user"]
"""
    path = _config(
        tmp_path, simulator, extra, pagerduty='secret_paths = ["app-sre/creds/pagerduty"]'
    )
    gateway = start_gateway(load_jobs(path, env={}))
    url = "/api/v1/external/pagerduty/schedules/PSCH003/users"
    headers = {"Authorization": f"Bearer {_jwt()}"}

    eu = gateway.http.get(
        url, params={**REFERENCE, "path": "app-sre/creds/pagerduty-eu"}, headers=headers
    )
    assert eu.status_code == 200, eu.text
    accounts = simulator.counters()["pagerduty"]["by_account"]
    assert accounts.get("eu", 0) >= 2  # the schedule and its users, all on pd-eu's account
    assert accounts.get("main", 0) == 0

    unknown = gateway.http.get(
        url, params={**REFERENCE, "path": "team-x/pagerduty"}, headers=headers
    )
    assert unknown.status_code == 400
    assert "secret_paths" in unknown.json()["error"]["message"]
    assert "team-x/pagerduty" in unknown.json()["error"]["message"]

    # pd-eu has no escalation_policy dataset: the answer names the table to add.
    policy = gateway.http.get(
        "/api/v1/external/pagerduty/escalation-policies/PPOL001/users",
        params={**REFERENCE, "path": "app-sre/creds/pagerduty-eu"},
        headers=headers,
    )
    assert policy.status_code == 409
    assert '[datasets."pd-eu.escalation_policy"]' in policy.json()["error"]["message"]


def test_a_secret_path_listed_by_two_instances_is_a_config_error(
    tmp_path: Path, simulator: Simulator
) -> None:
    extra = f"""
[providers.pd-eu]
kind = "pagerduty"
base_url = "{simulator.url}/pagerduty"
secret_paths = ["shared/path"]
"""
    path = _config(tmp_path, simulator, extra, pagerduty='secret_paths = ["shared/path"]')
    with pytest.raises(ConfigError, match=r"secret_paths: 'shared/path' is also listed by"):
        load_jobs(path, env={})


def test_jwt_settings_say_what_is_missing(tmp_path: Path, simulator: Simulator) -> None:
    path = _config(tmp_path, simulator)
    text = path.read_text()
    path.write_text(
        text.replace(f'secret_file = "{tmp_path / "jwt-secret"}"', 'secret_env = "QAPI_JWT"')
    )
    with pytest.raises(
        ConfigError, match=r"api\.jwt\.secret_env: the environment variable QAPI_JWT"
    ):
        load_jobs(path, env={})
    assert load_jobs(path, env={"QAPI_JWT": SECRET}).jwt_secret is not None
    path.write_text(text.replace("[api.jwt]\n", '[api.jwt]\nsecret_env = "QAPI_JWT"\n'))
    with pytest.raises(ConfigError, match="set one of secret_env"):
        load_jobs(path, env={"QAPI_JWT": SECRET})


def test_one_pagerduty_account_under_another_name_answers_every_secret_path(
    tmp_path: Path, simulator: Simulator, start_gateway: StartGateway
) -> None:
    # The only account is `pd-prod`; the built-in `pagerduty` instance (it exists for every
    # kind with a public URL) has no datasets, so it cannot answer and must not count as a
    # second account that forces `secret_paths` on this one.
    path = tmp_path / "jobs.toml"
    secret = tmp_path / "jwt-secret"
    secret.write_text(SECRET)
    path.write_text(
        f"""
[service]
read_wait = "30s"
[api]
tokens_file = "{tmp_path / "tokens"}"
[api.jwt]
secret_file = "{secret}"
[providers.pd-prod]
kind = "pagerduty"
base_url = "{simulator.url}/pagerduty"
token = "{SIM_TOKEN}"
[datasets."pd-prod.schedule_on_call"]
[datasets."pd-prod.user"]
"""
    )
    gateway = start_gateway(load_jobs(path, env={}))
    answer = gateway.http.get(
        "/api/v1/external/pagerduty/schedules/PSCH003/users",
        params=REFERENCE,
        headers={"Authorization": f"Bearer {_jwt()}"},
    )
    assert answer.status_code == 200, answer.text
    assert [u["username"] for u in answer.json()["users"]] == _on_call(simulator, "PSCH003")


def test_a_missing_parameter_is_named_without_echoing_the_secret_reference(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Authorization": f"Bearer {_jwt()}"}
    url = "/api/v1/external/pagerduty/schedules/PSCH001/users"
    for missing in ("path", "secret_manager_url"):
        params = {k: v for k, v in REFERENCE.items() if k != missing}
        answer = gateway.http.get(url, params=params, headers=headers)
        assert answer.status_code == 400
        message = answer.json()["error"]["message"]
        assert repr(missing) in message
        for value in (VAULT, "vault.example.com", SECRET_PATH, "pagerduty%2F", "field=token"):
            assert value not in message, message
    access_lines(caplog, answer.headers["x-request-id"])  # the last request's line is written
    assert "vault.example.com" not in caplog.text


def test_a_user_the_upstream_cannot_show_fails_the_answer_instead_of_shortening_it(
    gateway: Gateway, simulator: Simulator
) -> None:
    """A consumer acts on the list (a Slack group's members): one user missing upstream must
    fail its run, not silently drop that person."""
    simulator.add_fault("pagerduty", "error", status=404, path="/users/", count=50)
    answer = gateway.http.get(
        "/api/v1/external/pagerduty/schedules/PSCH004/users",
        params=REFERENCE,
        headers={"Authorization": f"Bearer {_jwt()}"},
    )
    assert answer.status_code == 502, answer.text
    error = answer.json()["error"]
    assert error["code"] == "upstream_error"
    assert "schedule PSCH004 names user" in error["message"]
