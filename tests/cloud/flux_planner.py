"""`python -m planner ...` as a user runs it, on the stand-in lead broker of tests/cloud/test_flux_stops.py.

One thing differs from a real MiniCluster: reaching the lead broker needs Kubernetes (sweep.yml's first play
adds the pod with the kubernetes.core.kubectl connection), so the sweep's playbook request is the
stand-in's (tests/cloud/flux_sweep.yml, the run_matrix role, on an inventory with the local connection,
plus the variables in STAND_IN_VARS). Everything else is the planner's own: the plan, the rendered runs,
the event handler and store, Ctrl-C, the watchdog and the cancel request it runs when the planner dies.

    python -m tests.cloud.flux_planner INVENTORY STAND_IN_VARS_JSON -- PLANNER_ARGS...
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from planner.cli import main
from planner.core.types import ClusterInfo
from planner.edges import sweep
from planner.edges.runner import PlaybookRequest


def stand_in(inventory: str, extra: dict[str, Any]) -> Callable[..., PlaybookRequest]:
    real = sweep.sweep_request

    def request(cluster: ClusterInfo, items: list[dict[str, Any]], lanes: int = 1) -> PlaybookRequest:
        planned = real(cluster, items, lanes)
        return PlaybookRequest("tests/cloud/flux_sweep.yml", inventory, {**planned.extravars, **extra},
                               forks=planned.forks)

    return request


if __name__ == "__main__":
    separator = sys.argv.index("--")
    inventory, extra = sys.argv[1], json.loads(sys.argv[2])
    sweep.sweep_request = stand_in(inventory, extra)
    sys.exit(main(sys.argv[separator + 1:]))
