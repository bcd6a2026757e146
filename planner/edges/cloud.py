"""Cloud clusters as the playbooks leave them (edge: reads files).

`ansible-playbook playbooks/cluster.yml -e arch=<arch> -e confirm=true` writes, once the MiniCluster's
Flux answers, `<state dir>/clusters/<name>.json`: how to reach the lead broker (kubeconfig, namespace,
pod, container), what Flux sees (nodes, cores), where images are cached, and the EKS attributes (arch,
region, instance type, hourly cost). `-e state=absent` removes it first. A cluster is up exactly when
its state file is there.

The state directory is COMPAT_LAB_STATE_DIR, else $XDG_STATE_HOME/compat-lab, else
~/.local/state/compat-lab. `default_state_dir` is the one owner of that rule: the playbooks ask it too
(roles/eks_lifecycle/lookup_plugins/compat_lab_state_dir.py), and `sweep_vars` hands its value to
playbooks/sweep.yml, so a hand-run playbook and the planner look in the same place.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from planner.core.errors import InputError

#: keys the sweep needs from a state file to reach the lead broker
REQUIRED = ("lead_broker", "sif_dir")


def default_state_dir() -> Path:
    if os.environ.get("COMPAT_LAB_STATE_DIR"):
        return Path(os.environ["COMPAT_LAB_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "compat-lab"


def state_file(name: str, state_dir: Path | None = None) -> Path:
    return (state_dir or default_state_dir()) / "clusters" / f"{name}.json"


def bring_up_command(name: str) -> str:
    match = re.fullmatch(r"eks-(arm64|amd64)", name)
    arch = match.group(1) if match else "<arm64|amd64>"
    return f"ansible-playbook playbooks/cluster.yml -e arch={arch} -e confirm=true"


def cluster_status(name: str, state_dir: Path | None = None) -> dict[str, Any]:
    """The cluster's state as its playbook recorded it, with `up` and `state_file`.

    A cluster without a state file is `{"name": ..., "up": False, "state_file": ...}`; a state file
    that cannot be read is bad input (InputError naming the file).
    """
    path = state_file(name, state_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {"name": name, "up": False, "state_file": str(path)}
    try:
        state = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"not JSON ({err.msg}); remove it and bring the cluster up again with "
                         f"`{bring_up_command(name)}`", file=str(path), line=err.lineno) from None
    missing = [key for key in REQUIRED if key not in state] if isinstance(state, dict) else list(REQUIRED)
    if missing:
        raise InputError(f"lacks {', '.join(missing)}; bring the cluster up again with `{bring_up_command(name)}`",
                         file=str(path))
    return {**state, "name": name, "up": True, "state_file": str(path)}


def require_up(name: str, state_dir: Path | None = None) -> dict[str, Any]:
    """The cluster's status, or InputError with the command that brings it up."""
    status = cluster_status(name, state_dir)
    if not status["up"]:
        raise InputError(f"cluster {name} is not up: run `{bring_up_command(name)}` first "
                         f"(no {status['state_file']})")
    return status


def billing(name: str, state_dir: Path | None = None) -> str | None:
    """What a cluster that is up costs and when its time-to-live ends, for the end of a sweep; None when it
    is not a cloud cluster that is up (or its state file says nothing of its cost)."""
    try:
        status = cluster_status(name, state_dir)
    except InputError:
        return None
    if not status["up"] or status.get("hourly_cost") in (None, ""):
        return None
    arch = re.fullmatch(r"eks-(arm64|amd64)", name)
    down = (f"ansible-playbook playbooks/cluster.yml -e arch={arch.group(1) if arch else '<arm64|amd64>'} "
            "-e state=absent")
    cost = f"{name} is up and bills about ${float(status['hourly_cost']):.2f} per hour"
    if status.get("expires_at"):
        return (f"{cost} until its time-to-live ends at {status['expires_at']} UTC (an AWS-side schedule deletes it "
                f"then); tear it down sooner with `{down}`")
    return f"{cost} until torn down (no time-to-live): `{down}`"


def sweep_vars(name: str, state_dir: Path | None = None) -> dict[str, Any]:
    """Extra variables with which playbooks/sweep.yml reaches the cluster's lead broker (minicluster's
    `connect` entry point, which reads <state dir>/clusters/<name>.json) and sources the Flux environment
    script the state file records."""
    found = {"minicluster_cluster_name": name, "minicluster_state_dir": str(state_dir or default_state_dir())}
    env_script = (cluster_status(name, state_dir).get("flux") or {}).get("env_script")
    return found | ({"run_matrix_flux_env_script": env_script} if env_script else {})
