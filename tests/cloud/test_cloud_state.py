"""planner/edges/cloud.py: whether a cloud cluster is up, from the state file cluster.yml writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from planner.core.errors import InputError
from planner.edges import cloud
from tests.conftest import planner

STATE = {"name": "eks-arm64", "arch": "arm64", "instance_type": "hpc7g.16xlarge", "sif_dir": "/tmp/compat-lab/sif",
         "lead_broker": {"pod": "compat-lab-0-x7k2p", "namespace": "compat-lab", "container": "compat-lab",
                         "kubeconfig": "/s/clusters/eks-arm64.kubeconfig", "context": ""},
         "flux": {"nodes": 2, "cores": 128, "gpus": 0, "env_script": "/mnt/flux/flux-view.sh"}}


def write_state(state_dir: Path, name: str, content: str) -> Path:
    path = state_dir / "clusters" / f"{name}.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    return path


def test_state_dir_follows_env_then_xdg_then_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("COMPAT_LAB_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cloud.default_state_dir() == tmp_path / "home" / ".local" / "state" / "compat-lab"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert cloud.default_state_dir() == tmp_path / "xdg" / "compat-lab"
    monkeypatch.setenv("COMPAT_LAB_STATE_DIR", str(tmp_path / "explicit"))
    assert cloud.default_state_dir() == tmp_path / "explicit"


def test_a_cluster_with_a_state_file_is_up(tmp_path: Path) -> None:
    path = write_state(tmp_path, "eks-arm64", json.dumps(STATE))
    status = cloud.require_up("eks-arm64", tmp_path)
    assert status["up"] is True and status["state_file"] == str(path)
    assert status["lead_broker"]["pod"] == "compat-lab-0-x7k2p"
    assert cloud.sweep_vars("eks-arm64", tmp_path) == {"minicluster_cluster_name": "eks-arm64",
                                                       "minicluster_state_dir": str(tmp_path),
                                                       "run_matrix_flux_env_script": "/mnt/flux/flux-view.sh"}


def test_a_cluster_without_one_is_refused_with_the_command_that_brings_it_up(tmp_path: Path) -> None:
    assert cloud.cluster_status("eks-amd64", tmp_path) == {
        "name": "eks-amd64", "up": False, "state_file": str(tmp_path / "clusters" / "eks-amd64.json")}
    with pytest.raises(InputError) as error:
        cloud.require_up("eks-amd64", tmp_path)
    assert str(error.value).startswith("cluster eks-amd64 is not up: run "
                                       "`ansible-playbook playbooks/cluster.yml -e arch=amd64 -e confirm=true` first")


def test_the_default_state_dir_is_used_without_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COMPAT_LAB_STATE_DIR", str(tmp_path))
    write_state(tmp_path, "eks-arm64", json.dumps(STATE))
    assert cloud.cluster_status("eks-arm64")["up"] is True


@pytest.mark.parametrize(("content", "message"), [
    ('{"name": "eks-arm64",\n  oops}', "eks-arm64.json:2: not JSON"),
    (json.dumps({"name": "eks-arm64"}), "eks-arm64.json: lacks lead_broker, sif_dir"),
    ("[]", "eks-arm64.json: lacks lead_broker, sif_dir"),
])
def test_an_unreadable_state_file_names_itself(tmp_path: Path, content: str, message: str) -> None:
    write_state(tmp_path, "eks-arm64", content)
    with pytest.raises(InputError, match=message):
        cloud.cluster_status("eks-arm64", tmp_path)


def test_sweep_refuses_a_cluster_that_is_not_up_but_dry_run_shows_its_commands(tmp_path: Path) -> None:
    env = {"COMPAT_LAB_STATE_DIR": str(tmp_path / "state")}
    refused = planner("sweep", "--cluster", "eks-arm64", store=tmp_path / "planner.sqlite", env=env, timeout=120)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert ("cluster eks-arm64 is not up: run `ansible-playbook playbooks/cluster.yml -e arch=arm64 -e confirm=true` "
            "first") in refused.stdout + refused.stderr
    dry = planner("sweep", "--cluster", "eks-arm64", "--dry-run", store=tmp_path / "planner.sqlite", env=env,
                  timeout=120)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert re.search(r"\$ flux run --job-name=[0-9a-f]{16} -t 3600s -N 2 -n 128 -o cpu-affinity=per-task "
                     r"singularity exec --pwd /opt/lammps/examples/reaxff/HNS /tmp/compat-lab/sif/ghcr\.io_rse-ops_"
                     r"lammps-matrix_mpich-ubuntu-22\.04-arm64-[0-9a-f]{20}\.sif lmp -v x 1 -v y 1 -v z 1 "
                     r"-in in\.reaxc\.hns -nocite",
                     dry.stdout), dry.stdout


UP = {**STATE, "cores_per_node": 64, "sif_dir": "/scratch/compat-lab/sif"}


def test_sweep_takes_the_image_directory_and_sizes_from_the_state_file(tmp_path: Path) -> None:
    """The experiment declares no sif_dir: the one the pods were brought up with is used."""
    write_state(tmp_path / "state", "eks-arm64", json.dumps(UP))
    dry = planner("sweep", "--cluster", "eks-arm64", "--dry-run", store=tmp_path / "planner.sqlite",
                  env={"COMPAT_LAB_STATE_DIR": str(tmp_path / "state")}, timeout=120)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert ("/scratch/compat-lab/sif/ghcr.io_rse-ops_lammps-matrix_mpich-ubuntu-22.04-arm64-8757ad29be8e0efcc19c.sif "
            "lmp -v x 1") in dry.stdout
    assert "/tmp/compat-lab/sif" not in dry.stdout


@pytest.mark.parametrize(("change", "message"), [
    ({"cores_per_node": 48}, "clusters.eks-arm64.cores_per_node: 64 in the experiment, but cluster eks-arm64 has 48"),
    ({"flux": {**STATE["flux"], "nodes": 1, "cores": 64}},
     "clusters.eks-arm64.nodes: 2 in the experiment, but cluster eks-arm64 has 1"),
    ({"instance_type": "c7g.16xlarge"},
     "clusters.eks-arm64.instance_type: hpc7g.16xlarge in the experiment, but cluster eks-arm64 has c7g.16xlarge"),
])
@pytest.mark.parametrize("command", [["sweep", "--cluster", "eks-arm64", "--dry-run"],
                                     ["recommend", "lammps", "reaxff", "--cluster", "eks-arm64"]])
def test_an_experiment_that_disagrees_with_the_brought_up_cluster_is_refused(tmp_path: Path, change: dict,
                                                                             message: str, command: list[str]) -> None:
    write_state(tmp_path / "state", "eks-arm64", json.dumps({**UP, **change}))
    done = planner(*command, store=tmp_path / "planner.sqlite", env={"COMPAT_LAB_STATE_DIR": str(tmp_path / "state")},
                   timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert re.fullmatch(rf"error: experiments/lammps\.yaml:\d+: {re.escape(message)} \(what Flux and EKS reported at "
                        rf"bring-up, {tmp_path}/state/clusters/eks-arm64\.json\): remove or correct it", line), line
