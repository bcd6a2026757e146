"""The whole cloud path, hermetically: bring-up, a sweep through the lead broker, teardown.

What is real: `ansible-playbook playbooks/cluster.yml` as a user types it, every role, the `kubernetes`
client and the `kubernetes.core` modules and connection plugin, moto_server for AWS, `python -m planner
sweep` with its ansible-runner adapter, the store. What stands in, because it cannot run here: eksctl
(fake_eksctl.py, acting on moto), the Kubernetes API server and the Flux Operator (kube_api.py, on a
loopback port, validating the MiniCluster against the Flux Operator's own CRD), `kubectl exec`
(fake_kubectl.py, running the command in the pod's directory) and, inside the pods, Flux, Singularity and
LAMMPS (fake_flux.py). The kubeconfig names 127.0.0.1: nothing here resolves a name or leaves loopback.

Marked `cloud_e2e` (`pytest -m cloud_e2e` runs it alone); about a minute on 2 cores.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

import pytest
import yaml

from tests.cloud.conftest import client, eksctl_args, shipped_operator_args
from tests.conftest import REPO, planner

pytestmark = pytest.mark.cloud_e2e

CLUSTER = "playbooks/cluster.yml"
VARIANT = "mpich-ubuntu-22.04-arm64"


def small_experiment(path: Path) -> Path:
    """The default experiment with its EKS sweep cut to one point: one variant, 2 nodes, x=1, one repeat.

    The variant's attributes are typed (no registry here to fetch its compspec artifact from)."""
    exp = yaml.safe_load((REPO / "experiments" / "lammps.yaml").read_text())
    exp["variants"][VARIANT]["attributes"] = {"io.archspec.cpu.target": "aarch64", "mpi.implementation": "mpich"}
    (eks,) = [sweep for sweep in exp["sweeps"] if sweep["name"] == "eks"]
    eks.update(clusters=["eks-arm64"], variants=[VARIANT], repeats=1, timeout=60,
               options={"set": {"affinity": "per-task", "nodes": 2, "tasks": 128}, "vary": {"x": [1]}})
    exp["sweeps"] = [eks]
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def pod_calls(pod_dir: Path) -> list[list[str]]:
    """What the pod's fake flux, singularity and lmp were called with, with paths as the pod sees them."""
    log = pod_dir / "flux-calls.jsonl"
    lines = log.read_text().replace(str(pod_dir), "").splitlines() if log.exists() else []
    return [json.loads(line) for line in lines]


def test_bring_up_sweep_and_tear_down(aws, playbook, fake_eksctl, kube, controller_registry, tmp_path: Path) -> None:
    # The shipped defaults: the controller image's tag is resolved on the (stand-in) registry. The pods' image
    # directory is not the experiment's default: the sweep must take it from the state file.
    started = time.monotonic()
    up = playbook(CLUSTER, "-e", "arch=arm64", "-e", "confirm=true", *eksctl_args(fake_eksctl),
                  *shipped_operator_args("arm64"), "-e", "minicluster_sif_dir=/tmp/images",
                  env={**kube.env, **controller_registry.env})
    assert up.rc == 0, up
    brought_up = time.monotonic()
    controller = controller_registry.pinned("arm", "arm64")

    # Kubernetes holds what the roles applied, as the operator and the MiniCluster left it.
    (deployment,) = kube.objects("apps", "deployments", "operator-system")
    assert {c["type"]: c["status"] for c in deployment["status"]["conditions"]}["Available"] == "True"
    assert [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "manager"] == [
        controller], "the controller image is the arm64 image of the tag, by digest"
    (minicluster,) = kube.objects("flux-framework.org", "miniclusters", "compat-lab")
    assert minicluster["spec"]["size"] == 2 and minicluster["spec"]["interactive"] is True
    pods = kube.objects("", "pods", "compat-lab")
    assert sorted(re.sub(r"-[a-z0-9]{5}$", "-xxxxx", pod["metadata"]["name"]) for pod in pods) == [
        "compat-lab-0-xxxxx", "compat-lab-1-xxxxx"]
    assert all(pod["status"]["phase"] == "Running" for pod in pods)

    # The state file records the lead broker and what Flux reported through it.
    state = json.loads((up.state_dir / "clusters" / "eks-arm64.json").read_text())
    lead = next(pod["metadata"]["name"] for pod in pods if pod["metadata"]["name"].startswith("compat-lab-0-"))
    assert state["lead_broker"]["pod"] == lead
    assert state["lead_broker"]["namespace"] == state["lead_broker"]["container"] == "compat-lab"
    assert state["flux"] == {"nodes": 2, "cores": 128, "gpus": 0, "env_script": "/mnt/flux/flux-view.sh"}
    assert state["cores_per_node"] == 64 and state["instance_type"] == "hpc7g.16xlarge"
    assert state["flux_operator_controller_image"] == controller
    assert state["expires_at"] and float(state["hourly_cost"]) == pytest.approx(3.4993, abs=1e-3)
    # every pod has the memory-backed /dev/shm the MPICH run below needs (the stand-in enforces 64 MiB without)
    assert minicluster["spec"]["containers"][0]["volumes"]["dev-shm"]["emptyDirSizeLimit"] == "512Mi"
    lead_dir = kube.pods / "compat-lab" / lead
    assert ["flux", "resource", "info", "-s", "up"] in pod_calls(lead_dir), "Flux was asked through kubectl exec"
    assert "eks-arm64 is up: 2 nodes, 128 cores under Flux" in up.out

    # A sweep reaches the lead broker through the state file and the kubernetes.core.kubectl connection.
    store = tmp_path / "results" / "planner.sqlite"
    env = {**kube.env, "COMPAT_LAB_STATE_DIR": str(up.state_dir), "HOME": str(tmp_path / "home"),
           "ANSIBLE_HOME": str(tmp_path / "ansible-home"), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp")}
    experiment = small_experiment(tmp_path / "experiment.yaml")
    swept = planner("sweep", "-e", str(experiment), "--cluster", "eks-arm64", store=store, env=env, timeout=300)
    assert swept.returncode == 0, swept.stdout + swept.stderr
    swept_at = time.monotonic()
    assert f"eks-arm64 is up and bills about $3.50 per hour until its time-to-live ends at {state['expires_at']} UTC" \
        in " ".join(swept.stdout.split())
    assert state["sif_dir"] == "/tmp/images"
    sif = f"/tmp/images/ghcr.io_rse-ops_lammps-matrix_{VARIANT}-8757ad29be8e0efcc19c.sif"
    runs = [call[1:] for call in pod_calls(lead_dir) if call[:2] == ["flux", "run"]]
    with sqlite3.connect(store) as db:
        stored = db.execute("SELECT id, cluster, variant, status FROM runs").fetchall()
    assert [row[1:] for row in stored] == [("eks-arm64", VARIANT, "ok")]
    # the planner's command (the run id as Flux's job name, the sweep's time limit), with what the MPICH
    # launch rule adds (-o pmi=simple), and the image directory the state file records
    assert runs == [["run", f"--job-name={stored[0][0]}", "-t", "60s", "-N", "2", "-n", "128",
                     "-o", "cpu-affinity=per-task", "-o", "pmi=simple",
                     "singularity", "exec", "--pwd", "/opt/lammps/examples/reaxff/HNS", sif,
                     "lmp", "-v", "x", "1", "-v", "y", "1", "-v", "z", "1", "-in", "in.reaxc.hns", "-nocite"]]
    assert (lead_dir / sif.lstrip("/")).is_file(), "the image was pulled into the pod's image directory"

    # Teardown: the state file first, then the MiniCluster, the operator and the cluster.
    down = playbook(CLUSTER, "-e", "arch=arm64", "-e", "state=absent",
                    *shipped_operator_args("arm64"), env=kube.env)
    assert down.rc == 0, down
    print(f"\nstand-in bring-up {brought_up - started:.1f} s, sweep {swept_at - brought_up:.1f} s, "
          f"teardown {time.monotonic() - swept_at:.1f} s")
    assert "Could not delete" not in down.out, down
    assert not (up.state_dir / "clusters" / "eks-arm64.json").exists()
    assert kube.objects("flux-framework.org", "miniclusters") == [] and kube.objects("", "pods") == []
    assert kube.objects("apps", "deployments") == [] and kube.objects("", "namespaces") == []
    assert client(aws, "eks").list_clusters()["clusters"] == []
    deleted = (tmp_path / "eksctl.log").read_text().splitlines()[-1].split()
    assert deleted[:2] == ["delete", "cluster"]
    assert {"--wait", "--disable-nodegroup-eviction", "--force"} <= set(deleted), "a blocked drain cannot stall it"
