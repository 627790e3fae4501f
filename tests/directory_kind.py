"""A provider kind defined in the test suite alone, as README's "Adding a provider kind" walks
through: an account's user directory, read from the simulator's PagerDuty-style `/users`
(offset/limit pages that say `more`), on plain httpx through the gated transport."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import httpx
import msgspec

from snapshots.config_types import BudgetLimit, ProviderSettings
from snapshots.errors import UpstreamError
from snapshots.providers.fetching import MAX_PAGES, incomplete, raise_for_status
from snapshots.providers.kind import (
    BareRoute,
    DatasetDefinition,
    FetchContext,
    JSONValue,
    KeyFormat,
    ProviderKind,
)
from snapshots.providers.throttle import Throttle, number
from snapshots.providers.transport import GatedHttpxTransport, UpstreamGate


class DirectorySettings(ProviderSettings, tag="directory"):
    """`[providers.<name>] kind = "directory"`: the common settings and a page size."""

    page_size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 25


class User(msgspec.Struct):
    id: str
    email: str


def make_client(settings: DirectorySettings, gate: UpstreamGate) -> httpx.Client:
    assert settings.base_url is not None
    assert settings.token is not None
    return httpx.Client(
        base_url=settings.base_url,
        transport=GatedHttpxTransport(gate),
        headers={"Authorization": f"Token token={settings.token.reveal()}"},
        timeout=float(settings.timeout),
    )


def read_throttle(status: int, headers: Mapping[str, str], now_epoch: float) -> Throttle | None:
    if status != 429:
        return None
    return Throttle(True, number(headers.get("ratelimit-reset")), f"directory answered {status}")


def fetch_users(client: httpx.Client, key: str, ctx: FetchContext) -> JSONValue:
    """Every user, page by page, until a page says `more: false`."""
    assert isinstance(ctx.provider, DirectorySettings)
    size = ctx.provider.page_size
    users: list[Any] = []
    for _ in range(MAX_PAGES):
        response = client.get("users", params={"offset": len(users), "limit": size})
        raise_for_status("directory", response.status_code, "the user directory")
        body = response.json()
        page = body.get("users")
        if not isinstance(page, list):
            raise UpstreamError("directory sent no list of users")
        users.extend(page)
        if not body.get("more"):
            return users
        if not page:
            raise incomplete(
                "the user directory", f"an empty page under more: true after {len(users)}"
            )
    raise UpstreamError("directory: too many pages")


DIRECTORY = ProviderKind(
    name="directory",
    settings=DirectorySettings,
    default_base_url=None,  # no public default: an instance must set base_url
    default_budget=BudgetLimit(10, 1.0),
    make_client=make_client,
    read_throttle=read_throttle,
    datasets=(
        DatasetDefinition(
            name="users",
            key_format=KeyFormat("all", "'all'", "all"),
            default_ttl_seconds=600.0,
            fetch=fetch_users,
            description="every user of the account",
            schema=list[User],
        ),
    ),
    routes=(BareRoute("/users", "users", "all", "Every user of the directory."),),
)
