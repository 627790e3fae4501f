"""An upstream token never reaches logs, API responses or the database, on success or failure."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from helpers import Gateway, Simulator, runs_with_outcome, wait_for
from snapshots.config import JobsConfig

TOKEN = "tok-SECRET-4f1d9c2e7b"  # recognisable, so any leak is found by a plain search


def test_token_is_absent_from_logs_responses_and_database(
    start_gateway: Callable[[JobsConfig], Gateway],
    make_config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    simulator.set_token("pagerduty", TOKEN)
    gateway = start_gateway(make_config(token=TOKEN, ttl="1s", keys=("PSCH001",)))
    responses = [gateway.snapshot("pagerduty.schedule_users", "PSCH001").text]  # success
    simulator.set_token("pagerduty", "someone-else")  # now every refresh answers 401
    responses.append(gateway.snapshot("pagerduty.schedule_users", "PSCH010").text)  # cold miss, 401
    wait_for(lambda: runs_with_outcome(db, "failed") >= 2)
    responses.append(
        gateway.snapshot("pagerduty.schedule_users", "PSCH001").text
    )  # stale, last_error
    responses.append(gateway.http.get("/schema/openapi.json").text)

    assert any("401" in r for r in responses)  # the failure paths were really taken
    assert all(TOKEN not in r for r in responses)
    assert "refresh.finished" in caplog.text  # the service's own events were captured
    assert TOKEN not in caplog.text
    assert TOKEN[-4:] not in caplog.text  # not even the library's truncated form
    dump = db.execute(
        "SELECT concat_ws(' ', (SELECT string_agg(t::text, ' ') FROM snapshots t),"
        " (SELECT string_agg(t::text, ' ') FROM refresh_runs t),"
        " (SELECT string_agg(t::text, ' ') FROM dataset_keys t),"
        " (SELECT string_agg(t::text, ' ') FROM datasets t))"
    ).fetchone()
    assert dump is not None
    assert "PSCH001" in dump[0]
    assert TOKEN not in dump[0]
    assert TOKEN[-4:] not in dump[0]
