"""Response bodies of the read API, as msgspec Structs (encoded once, documented in OpenAPI).

The shapes the client also decodes (snapshot, history, refresh, run, error, dataset, key and
provider) are in `snapshots_client.wire`.
"""

from __future__ import annotations

import msgspec
from litestar.openapi.datastructures import ResponseSpec

from snapshots_client.wire import (
    BudgetBody,
    DatasetBody,
    DatasetDetail,
    ErrorBody,
    ErrorDetail,
    KeyBody,
    PlanBody,
    ProviderBody,
    PublishedBy,
)

# The shapes the client also decodes live with the other wire structs.
__all__ = [
    "BudgetBody",
    "DatasetBody",
    "DatasetDetail",
    "ErrorBody",
    "ErrorDetail",
    "KeyBody",
    "PlanBody",
    "ProviderBody",
    "PublishedBy",
]


class Health(msgspec.Struct, frozen=True):
    status: str


class ProviderState(msgspec.Struct, frozen=True):
    """What the active worker publishes per provider (`provider_states.state`)."""

    budget: BudgetBody
    plan: PlanBody | None
    upstream_requests: dict[str, int]


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description)


ERROR_RESPONSES: dict[int, ResponseSpec] = {
    400: _error("a malformed key or parameter; the message shows the expected format"),
    401: _error("no bearer token, or an unknown one"),
    403: _error("the token's role is too low"),
    404: _error("unknown dataset, run or route, or a key the upstream says does not exist"),
    409: _error(
        "the dataset is disabled (the message names the missing setting), or max_keys is reached"
    ),
    429: _error("a refresh asked again inside the key's minimum interval (see Retry-After)"),
    502: _error("a waited-for refresh failed; the last good snapshot is kept"),
    503: _error(
        "no snapshot yet and none obtainable within the wait, or the database is down (see Retry-After)"
    ),
}
"""Every error the API answers, documented once so the OpenAPI document matches the bodies."""
