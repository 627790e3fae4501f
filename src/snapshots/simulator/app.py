"""The simulator's HTTP app: fake PagerDuty, GitHub and Jira, and the control API under /_sim."""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import State

from snapshots.simulator import control, github, jira, pagerduty
from snapshots.simulator.state import SimulatorState


def create_simulator_app(state: SimulatorState | None = None) -> Litestar:
    """A Litestar app serving every fake upstream under its provider prefix."""
    return Litestar(
        route_handlers=[pagerduty.router, github.router, jira.router, control.router],
        state=State({"simulator": state or SimulatorState()}),
        openapi_config=None,
        logging_config=None,
    )
