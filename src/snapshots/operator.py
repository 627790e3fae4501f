"""Operator commands over the running service's API: status, refresh, history (with diffs).

They talk to the API, not the database, so they work from a laptop: `--url` (or SNAPSHOTS_URL)
and an operator or reader token in SNAPSHOTS_TOKEN.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

DEFAULT_URL = "http://127.0.0.1:8000"


class OperatorError(Exception):
    """The API said no, or could not be reached; the message is for the operator."""


@dataclass
class Api:
    """A thin client of the service's JSON API for the operator commands."""

    http: httpx.Client

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise OperatorError(
                f"cannot reach {self.http.base_url}: {type(exc).__name__}"
            ) from None
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                message = f"{error['code']}: {error['message']}"
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise OperatorError(f"{method} {path} answered {response.status_code} {message}")
        return response.json()


@contextmanager
def connect(url: str | None) -> Iterator[Api]:
    token = os.environ.get("SNAPSHOTS_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = url or os.environ.get("SNAPSHOTS_URL") or DEFAULT_URL
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        yield Api(http)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def status(api: Api, as_json: bool, console: Console) -> None:
    """Every dataset and key (age vs TTL, stale, last outcome and error, next refresh) and the
    budget of every provider."""
    datasets = api.call("GET", "/api/v1/datasets")
    keys = {
        d["dataset"]: api.call("GET", f"/api/v1/datasets/{d['dataset']}/keys") for d in datasets
    }
    providers = api.call("GET", "/api/v1/providers")
    if as_json:
        console.print_json(json.dumps({"datasets": datasets, "keys": keys, "providers": providers}))
        return
    for dataset in datasets:
        state = "enabled" if dataset["enabled"] else f"disabled: {dataset['disabled_reason']}"
        table = Table(
            title=f"{dataset['dataset']}  (ttl {_age(dataset['ttl_seconds'])}, {state}; "
            f"{dataset['fresh']} fresh, {dataset['stale']} stale, {dataset['failing']} failing)",
            title_justify="left",
        )
        for column in (
            "key",
            "version",
            "age / ttl",
            "stale",
            "last outcome",
            "next refresh",
            "last error",
        ):
            table.add_column(column)
        for key in keys[dataset["dataset"]]:
            table.add_row(
                key["key"],
                str(key["version"] or "-"),
                f"{_age(key['age_seconds'])} / {_age(dataset['ttl_seconds'])}",
                "[red]yes[/red]" if key["stale"] else "no",
                key["last_outcome"] or "-",
                key["next_refresh_at"] or "-",
                key["last_error"] or "",
            )
        console.print(table)
    budgets = Table(title="budgets", title_justify="left")
    for column in (
        "provider",
        "limit",
        "used in period",
        "tokens left",
        "paused",
        "stretch",
        "upstream answers",
    ):
        budgets.add_column(column)
    for provider in providers:
        budget, plan = provider["budget"], provider["plan"]
        limit = (
            f"{budget['limit']}/{_age(budget['period_seconds'])}"
            if budget["limit"]
            else "unlimited"
        )
        paused = (
            f"{budget['paused_for_seconds']:.0f}s ({budget['pause_reason']})"
            if budget["pause_reason"]
            else "-"
        )
        budgets.add_row(
            provider["provider"],
            limit,
            str(budget["used_in_period"]),
            str(budget["tokens_left"] if budget["tokens_left"] is not None else "-"),
            paused,
            f"x{plan['stretch']:.2f}" if plan else "-",
            ", ".join(f"{k}: {v}" for k, v in provider["upstream_requests"].items()) or "-",
        )
    console.print(budgets)


def refresh(api: Api, dataset: str, key: str | None, wait: float | None, console: Console) -> None:
    """Force a refresh of one key (optionally waiting for it), or of every key with a progress bar."""
    params = {} if wait is None else {"wait": wait}
    if key is not None:
        answer = api.call("POST", f"/api/v1/snapshots/{dataset}/{key}/refresh", params=params)
        if wait is None:
            console.print(f"{dataset} {key}: {answer['status']} as run {answer['run_id']}")
        else:
            console.print(
                f"{dataset} {key}: version {answer['version']}, fetched {answer['freshness']['fetched_at']}"
            )
        return
    answer = api.call("POST", f"/api/v1/datasets/{dataset}/refresh")
    runs = {k["run_id"]: k["key"] for k in answer["keys"] if k["run_id"] is not None}
    for skipped in (k for k in answer["keys"] if k["status"] == "skipped"):
        console.print(f"skipped {skipped['key']}: {skipped['note']}")
    outcomes: dict[str, str] = {}
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task(f"refreshing {dataset}", total=len(runs))
        deadline = time.monotonic() + (wait or 300)
        while len(outcomes) < len(runs) and time.monotonic() < deadline:
            for run_id, run_key in runs.items():
                if run_key not in outcomes:
                    run = api.call("GET", f"/api/v1/runs/{run_id}")
                    if run["status"] != "running":
                        outcomes[run_key] = run["status"] + (
                            f": {run['error']}" if run.get("error") else ""
                        )
                        progress.advance(task)
            time.sleep(0.2)
    for run_key, outcome in sorted(outcomes.items()):
        console.print(f"{run_key}: {outcome}")


def _identity(item: Any) -> str:
    if isinstance(item, dict):
        for field in ("id", "key", "login", "name"):
            if field in item:
                return f"{field}={item[field]}"
    return json.dumps(item, sort_keys=True)


def diff(older: Any, newer: Any) -> tuple[list[str], list[str], list[str]]:
    """Items added, removed and changed between two payloads (lists by item identity)."""
    if not isinstance(older, list) or not isinstance(newer, list):
        return [], [], [] if older == newer else ["(the object)"]
    before = {_identity(i): i for i in older}
    after = {_identity(i): i for i in newer}
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return added, removed, changed


def history(
    api: Api, dataset: str, key: str, show_diff: bool, limit: int, console: Console
) -> None:
    """The versions of a key, newest first; with `show_diff`, what changed from the one before."""
    params: dict[str, Any] = {"limit": limit + 1 if show_diff else limit}
    if show_diff:
        params["include"] = "data"
    versions = api.call("GET", f"/api/v1/snapshots/{dataset}/{key}/history", params=params)[
        "versions"
    ]
    for index, version in enumerate(versions[:limit]):
        console.print(
            f"version {version['version']}: {version['item_count']} items, first seen {version['fetched_at']}, "
            f"last confirmed {version['verified_at']}"
        )
        if show_diff and index + 1 < len(versions):
            added, removed, changed = diff(versions[index + 1]["data"], version["data"])
            for label, items in (("added", added), ("removed", removed), ("changed", changed)):
                if items:
                    console.print(f"  {label}: {', '.join(items)}")
