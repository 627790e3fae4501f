"""What `snapshots demo` runs against the simulator: its jobs.toml and the reads it suggests."""

from __future__ import annotations

DEMO_JOBS = """\
# Written by `snapshots demo`: the built-in datasets against the local simulator.
# The tokens are the simulator's fixed ones, not real credentials.
[service]
read_wait = "10s"

[providers.pagerduty]
base_url = "{simulator}/pagerduty"
token = "sim-pagerduty-token"
budget = "900/60s"

[providers.github]
base_url = "{simulator}/github"
token = "sim-github-token"
budget = "4500/1h"

[providers.jira]
base_url = "{simulator}/jira"
token = "sim-jira-token"
deployment = "server"
budget = "5/1s"

[datasets."pagerduty.schedule_users"]
ttl = "1m"
keys = ["PSCH001", "PSCH002", "PSCH003"]

[datasets."pagerduty.escalation_policy"]
keys = ["PPOL001"]

[datasets."pagerduty.schedule_on_call"]

[datasets."pagerduty.user"]

[datasets."github.repo_collaborators"]
ttl = "2m"
keys = ["acme/repo-03"]

[datasets."github.repo"]
keys = ["acme/repo-03"]

[datasets."jira.project_issues"]
keys = ["PRJ3"]

[datasets."jira.project"]
keys = ["PRJ3"]
"""


def demo_reads(base: str, simulator: str) -> list[str]:
    """The example commands the demo prints, for a service at `base`."""
    return [
        f"  curl {base}/api/v1/snapshots/pagerduty.schedule_users/PSCH001",
        f"  curl {base}/api/v1/snapshots/pagerduty.schedule_users/PSCH007   (cold miss: fetched on first read)",
        f"  curl {base}/api/v1/snapshots/github.repo_collaborators/acme/repo-03",
        f"  curl {base}/api/v1/snapshots/jira.project_issues/PRJ3",
        f"  curl '{base}/api/v1/external/pagerduty/escalation-policies/PPOL001/users"
        "?secret_manager_url=vault&path=pd'   (qontract-api's route)",
        f"  curl {base}/api/v1/providers   (budgets)",
        f"  curl -X POST {simulator}/_sim/mutate/pagerduty/PSCH001   (then wait for the next refresh)",
        f"  curl {base}/readyz",
    ]
