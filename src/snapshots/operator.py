"""Operator commands over the running service's API: status, refresh, history (with diffs).

They talk to the API through the typed client (`snapshots_client`), not to the database, so they
work from a laptop: `--url` (or SNAPSHOTS_URL) and an operator or reader token in SNAPSHOTS_TOKEN.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import msgspec
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from snapshots.operator_diff import diff, printable
from snapshots_client import SnapshotsClient, SnapshotsClientError
from snapshots_client.wire import DatasetBody, KeyBody, ProviderBody

DEFAULT_URL = "http://127.0.0.1:8000"


class OperatorError(Exception):
    """The API said no, or could not be reached; the message is for the operator."""


@contextmanager
def connect(url: str | None) -> Iterator[SnapshotsClient]:
    """The typed client for `url` (else SNAPSHOTS_URL, else the local default) with the token in
    SNAPSHOTS_TOKEN; the client's errors become OperatorError with the status and the code."""
    base = url or os.environ.get("SNAPSHOTS_URL") or DEFAULT_URL
    try:
        with SnapshotsClient(base, os.environ.get("SNAPSHOTS_TOKEN"), retries=1) as client:
            yield client
    except SnapshotsClientError as exc:
        status = f"answered {exc.status} " if exc.status is not None else ""
        raise OperatorError(f"{base} {status}{exc}") from None


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _is_tty(console: Console) -> bool:
    """Whether output goes to an interactive terminal (a pipe or a file gets plain lines)."""
    isatty = getattr(console.file, "isatty", None)
    try:
        return bool(isatty and isatty()) and console.is_interactive
    except ValueError:  # a closed file
        return False


def _say(console: Console, line: str) -> None:
    """One line of data (keys, errors) as it is: no markup, highlighting or wrapping."""
    console.print(printable(line), markup=False, highlight=False, soft_wrap=True)


def status(api: SnapshotsClient, as_json: bool, console: Console) -> None:
    """Every dataset and key (age vs TTL, stale, last outcome and error, next refresh) and the
    budget of every enabled provider; datasets without keys get one line, never an empty table."""
    datasets = api.datasets()
    keys = {d.dataset: api.keys(d.dataset) for d in datasets}
    providers = api.providers()
    if as_json:
        everything = {"datasets": datasets, "keys": keys, "providers": providers}
        console.print_json(msgspec.json.encode(everything).decode())
        return
    if not datasets:
        _say(console, "No datasets are registered: add [datasets.NAME] tables to jobs.toml.")
    elif not any(d.enabled for d in datasets):
        _say(console, "No dataset is enabled; each line below names the provider setting to add.")
    disabled: dict[str, list[str]] = {}
    for dataset in datasets:
        name, rows = dataset.dataset, keys[dataset.dataset]
        if not dataset.enabled and not any(k.version for k in rows):
            # Nothing fetched and nothing will be: one line, not a table of blanks.
            disabled.setdefault(dataset.disabled_reason or "disabled", []).append(name)
            continue
        if not rows:
            _say(console, f"{name}: enabled, no keys yet (a read or jobs.toml adds them)")
            continue
        console.print(_keys_table(dataset, rows))
    for reason, names in disabled.items():
        _say(console, f"disabled ({reason}): {', '.join(sorted(names))}")
    enabled = [p for p in providers if p.enabled]
    if enabled:
        console.print(_budgets_table(enabled))
    elif providers:
        _say(console, "No provider is enabled, so no budget is in use.")


def _keys_table(dataset: DatasetBody, rows: list[KeyBody]) -> Table:
    state = "enabled" if dataset.enabled else f"disabled: {dataset.disabled_reason}"
    table = Table(
        title=Text(
            printable(
                f"{dataset.dataset}  (ttl {_age(dataset.ttl_seconds)}, {state}; "
                f"{dataset.fresh} fresh, {dataset.stale} stale, {dataset.failing} failing)"
            )
        ),
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
    for key in rows:
        table.add_row(
            Text(printable(key.key)),
            str(key.version or "-"),
            f"{_age(key.age_seconds)} / {_age(dataset.ttl_seconds)}",
            "[red]yes[/red]" if key.stale else "no",
            key.last_outcome or "-",
            _moment(key.next_refresh_at),
            Text(printable(key.last_error or "")),
        )
    return table


def _moment(value: datetime | None) -> str:
    """A time as the API wrote it (ISO 8601, UTC), or `-`."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else "-"


def _budgets_table(providers: list[ProviderBody]) -> Table:
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
        budget, plan, published = provider.budget, provider.plan, provider.published
        if budget is None:  # no active worker has published this budget yet
            budgets.add_row(provider.provider, *["-"] * 5, "not published yet: no active worker")
            continue
        if published is not None:
            budgets.caption = (
                f"as published by {printable(published.instance)} {published.age_seconds:.0f}s ago"
            )
        limit = f"{budget.limit}/{_age(budget.period_seconds)}" if budget.limit else "unlimited"
        paused = (
            f"{budget.paused_for_seconds:.0f}s ({budget.pause_reason})"
            if budget.pause_reason
            else "-"
        )
        budgets.add_row(
            provider.provider,
            limit,
            str(budget.used_in_period),
            str(budget.tokens_left if budget.tokens_left is not None else "-"),
            Text(printable(paused)),
            f"x{plan.stretch:.2f}" if plan else "-",
            ", ".join(f"{k}: {v}" for k, v in provider.upstream_requests.items()) or "-",
        )
    return budgets


def refresh(
    api: SnapshotsClient, dataset: str, key: str | None, wait: float | None, console: Console
) -> None:
    """Force a refresh of one key (optionally waiting for it), or of every key: with a progress
    bar on a terminal, else one plain line per key as it finishes."""
    if key is not None:
        if wait is None:
            started = api.refresh(dataset, key)
            _say(console, f"{dataset} {key}: {started.status} as run {started.run_id}")
        else:
            snapshot = api.refresh(dataset, key, wait=wait)
            fetched = _moment(snapshot.freshness.fetched_at)
            _say(console, f"{dataset} {key}: version {snapshot.version}, fetched {fetched}")
        return
    answers = api.refresh_dataset(dataset)
    if not answers:
        _say(console, f"{dataset}: no keys to refresh")
    runs = {k.run_id: k.key for k in answers if k.run_id is not None}
    for skipped in (k for k in answers if k.status == "skipped"):
        _say(console, f"{skipped.key}: skipped ({skipped.note})")
    deadline = time.monotonic() + (wait or 300)
    if _is_tty(console):
        outcomes: dict[str, str] = {}
        with Progress(console=console, transient=False) as progress:
            task = progress.add_task(f"refreshing {dataset}", total=len(runs))
            for run_key, outcome in _outcomes(api, runs, deadline):
                outcomes[run_key] = outcome
                progress.advance(task)
        for run_key, outcome in sorted(outcomes.items()):
            _say(console, f"{run_key}: {outcome}")
    else:
        for run_key, outcome in _outcomes(api, runs, deadline):
            _say(console, f"{run_key}: {outcome}")


def _outcomes(
    api: SnapshotsClient, runs: dict[int, str], deadline: float
) -> Iterator[tuple[str, str]]:
    """(key, outcome) of each run as it finishes; runs still going at `deadline` say so."""
    pending = dict(runs)
    while pending:
        for run_id, run_key in list(pending.items()):
            run = api.run(run_id)
            if run.finished:
                del pending[run_id]
                yield run_key, run.status + (f": {run.error}" if run.error else "")
        if pending and time.monotonic() >= deadline:
            for run_id, run_key in pending.items():
                yield run_key, f"still running (run {run_id})"
            return
        if pending:
            time.sleep(0.2)


def history(
    api: SnapshotsClient, dataset: str, key: str, show_diff: bool, limit: int, console: Console
) -> None:
    """The versions of a key, newest first; with `show_diff`, what changed from the one before:
    items added and removed by name, and the fields that changed (`~ ken-116: role_name admin ->
    write`)."""
    page = api.history(
        dataset, key, limit=limit + 1 if show_diff else limit, include_data=show_diff
    )
    versions = page.versions
    for index, version in enumerate(versions[:limit]):
        _say(
            console,
            f"version {version.version}: {version.item_count} items, "
            f"first seen {_moment(version.fetched_at)}, last confirmed {_moment(version.verified_at)}",
        )
        if show_diff and index + 1 < len(versions):
            for line in diff(versions[index + 1].data, version.data).lines():
                _say(console, f"  {line}")
