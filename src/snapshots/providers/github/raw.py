"""Any GET path on PyGithub's requester (its auth, errors and the gated adapter), for
`mirror = "any"`: the JSON body and the `Link` header, which the mirror rewrites."""

from __future__ import annotations

from typing import Any

import github
import requests

from snapshots.errors import SnapshotsError
from snapshots.providers.fetching import incomplete, library_failure
from snapshots.providers.kind import JSONValue


def raw_get(client: Any, path_and_query: str) -> tuple[JSONValue, dict[str, str]]:
    what = path_and_query.split("?", 1)[0]
    try:
        headers, data = client.requester.requestJsonAndCheck("GET", path_and_query)
    except (github.GithubException, requests.RequestException, SnapshotsError, ValueError) as exc:
        status = exc.status if isinstance(exc, github.GithubException) else None
        raise library_failure("github", what, exc, status) from None
    link = {"link": str(headers["link"])} if headers.get("link") else {}
    # GitHub never sends an empty page whose Link goes on: that is a truncated list, not stored.
    if data == [] and 'rel="next"' in link.get("link", ""):
        raise incomplete(f"github: {what}", "the page came back empty though Link announces more")
    return data, link
