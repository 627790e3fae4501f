"""Any GET path on the jira library's session (its auth and the gated adapter), for
`mirror = "any"`: the JSON body (Jira pages in the body)."""

from __future__ import annotations

from typing import Any

import jira
import requests

from snapshots.errors import SnapshotsError
from snapshots.providers.fetching import library_failure, raise_for_status
from snapshots.providers.kind import JSONValue


def raw_get(client: Any, path_and_query: str) -> tuple[JSONValue, dict[str, str]]:
    what = path_and_query.split("?", 1)[0]
    server = str(client.server_url).rstrip("/")
    try:
        response = client._session.get(server + path_and_query)
    except (jira.JIRAError, requests.RequestException, SnapshotsError) as exc:
        status = getattr(exc, "status_code", None)
        raise library_failure(
            "jira", what, exc, status if isinstance(status, int) else None
        ) from None
    raise_for_status("jira", response.status_code, what)
    try:
        return response.json(), {}
    except ValueError:
        raise library_failure("jira", what, ValueError(what), None) from None
