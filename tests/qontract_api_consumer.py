"""A consumer of qontract-api's PagerDuty routes, written here from the public contract (the
operations, parameters and response models of app-sre/qontract-reconcile's qontract_api/
openapi.json and the calls of reconcile/slack_usergroups_api.py): async functions with the
generated client's names and keywords, a bearer JWT, and response models validated strictly.
Nothing in it knows it talks to snapshots rather than qontract-api."""

from __future__ import annotations

import httpx
import msgspec


class PagerDutyUser(msgspec.Struct, frozen=True):
    username: str


class ScheduleUsersResponse(msgspec.Struct, frozen=True):
    users: list[PagerDutyUser] = []


class EscalationPolicyUsersResponse(msgspec.Struct, frozen=True):
    users: list[PagerDutyUser] = []


class QontractApiClient:
    """What the consumer holds: qontract-api's base URL and its JWT."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=None,  # noqa: S113 - the real consumer sets none either
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _get(self, path: str, params: dict[str, str | int | None]) -> bytes:
        query = {name: value for name, value in params.items() if value is not None}
        response = await self.http.get(path, params=query)
        response.raise_for_status()
        assert response.headers["content-type"].startswith("application/json")
        return response.content

    async def pagerduty_schedule_users(
        self,
        *,
        schedule_id: str,
        secret_manager_url: str,
        path: str,
        field: str | None = None,
        version: int | None = None,
    ) -> ScheduleUsersResponse:
        content = await self._get(
            f"/api/v1/external/pagerduty/schedules/{schedule_id}/users",
            {
                "secret_manager_url": secret_manager_url,
                "path": path,
                "field": field,
                "version": version,
            },
        )
        return msgspec.json.decode(content, type=ScheduleUsersResponse, strict=True)

    async def pagerduty_escalation_policy_users(
        self,
        *,
        policy_id: str,
        secret_manager_url: str,
        path: str,
        field: str | None = None,
        version: int | None = None,
    ) -> EscalationPolicyUsersResponse:
        content = await self._get(
            f"/api/v1/external/pagerduty/escalation-policies/{policy_id}/users",
            {
                "secret_manager_url": secret_manager_url,
                "path": path,
                "field": field,
                "version": version,
            },
        )
        return msgspec.json.decode(content, type=EscalationPolicyUsersResponse, strict=True)
