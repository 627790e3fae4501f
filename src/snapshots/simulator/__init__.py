"""Fake upstream APIs (PagerDuty, GitHub, Jira) for the demo, the tests and the benchmarks."""

from snapshots.simulator.app import create_simulator_app
from snapshots.simulator.state import SimulatorState

__all__ = ["SimulatorState", "create_simulator_app"]
