"""Creating and tearing down with `-e confirm=true` / `-e state=absent`, against moto_server.

eksctl is tests/cloud/fake_eksctl.py, packaged as the release archive the role downloads and verifies: it
creates the EKS cluster, its node group and the node instances in the emulator (no CloudFormation, no
VPC). There is no Kubernetes here: the kubeconfig it writes names a loopback port nothing listens on, so
the Flux Operator's apply is refused after the cluster exists, exactly the "creation failed half-way"
case whose teardown (roles/eks_lifecycle) is under test. The operator's manifest is the vendored CRD,
downloaded from a file:// URL and checksum-verified like the upstream one.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import time

import pytest

from tests.cloud.conftest import BIN, client, eksctl_args, operator_manifest_args, playbook_env
from tests.conftest import REPO

CLUSTER = "playbooks/cluster.yml"
# The apply is refused by the kubeconfig's loopback API server: the error names it, nothing else is reached.
REFUSED = "HTTPSConnectionPool(host='127.0.0.1', port=1)"


def up_args(fake_eksctl, *extra: str) -> list[str]:
    return [CLUSTER, "-e", "arch=arm64", "-e", "confirm=true", *eksctl_args(fake_eksctl),
            *operator_manifest_args("arm64"), *extra]


def final_error(played) -> str:
    """The message the play ends with (the last fatal line)."""
    return [line for line in played.out.splitlines() if line.startswith("fatal:")][-1]


def running_nodes(aws) -> list[dict]:
    reservations = client(aws, "ec2").describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
    return [instance for reservation in reservations for instance in reservation["Instances"]]


def eksctl_calls(played) -> list[str]:
    log = played.state_dir.parent / "eksctl.log"
    return [line.split(" --", 1)[0] for line in log.read_text().splitlines()] if log.exists() else []


def test_eksctl_failing_half_way_is_torn_down(aws, playbook, fake_eksctl) -> None:
    played = playbook(*up_args(fake_eksctl), env={"FAKE_EKSCTL_FAIL": "create"})
    assert played.rc != 0
    assert 'Creating eks-arm64 failed at "create | Create the cluster and its nodes with eksctl"' in played.out, played
    assert "node group did not become ready" in played.out
    assert "It was torn down again." in played.out
    assert eksctl_calls(played) == ["create cluster", "delete cluster"]
    assert client(aws, "eks").list_clusters()["clusters"] == []
    assert running_nodes(aws) == []
    assert not (played.state_dir / "clusters" / "eks-arm64.kubeconfig").exists()


def test_a_later_failure_tears_down_what_this_run_created(aws, playbook, fake_eksctl) -> None:
    played = playbook(*up_args(fake_eksctl))
    assert played.rc != 0
    error = final_error(played)
    assert '"msg": "apply | Apply the Flux Operator manifest: ' in error, played
    assert REFUSED in error
    assert error.endswith('What this run created was torn down."}'), error
    assert "Could not delete the MiniCluster or the operator" in played.out, "the API is gone: go on to the cluster"
    assert eksctl_calls(played) == ["create cluster", "utils write-kubeconfig", "delete cluster"]
    assert client(aws, "eks").list_clusters()["clusters"] == []
    assert running_nodes(aws) == []
    assert not (played.state_dir / "clusters" / "eks-arm64.json").exists()


def recorded_up(state_dir) -> tuple:
    """A cluster recorded as up: its state file and kubeconfig, as a bring-up leaves them."""
    clusters = state_dir / "clusters"
    clusters.mkdir(parents=True)
    state = clusters / "eks-arm64.json"
    state.write_text('{"name": "eks-arm64", "sif_dir": "/tmp/sif", "lead_broker": {}}')
    kubeconfig = clusters / "eks-arm64.kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    return state, kubeconfig


def test_a_teardown_with_expired_credentials_touches_nothing(aws, playbook, tmp_path) -> None:
    state, kubeconfig = recorded_up(tmp_path / "state")
    aws.config.expired = True
    gone = playbook(CLUSTER, "-e", "arch=arm64", "-e", "state=absent")
    assert gone.rc != 0
    assert "Failed to retrieve caller identity" in final_error(gone), gone
    assert "The security token included in the request is expired" in gone.out
    assert state.exists() and kubeconfig.exists(), "the cluster is still recorded as up, as it is"
    assert eksctl_calls(gone) == []


@pytest.mark.parametrize("state", ["present", "absent"])
def test_a_mistyped_region_is_refused_before_any_call(aws, playbook, fake_eksctl, tmp_path, state: str) -> None:
    recorded, _ = recorded_up(tmp_path / "state")
    played = playbook(*up_args(fake_eksctl, "-e", f"state={state}", "-e", "eks_cluster_region=us-eats-1"))
    assert played.rc != 0
    error = final_error(played)
    assert "us-eats-1 is not an AWS region with EKS (eks_cluster_region); regions botocore knows: " in error, played
    assert "us-east-1, us-east-2" in error
    assert sum(aws.config.forwarded.values()) == 0, "no AWS call"
    assert recorded.exists() and eksctl_calls(played) == []


def stacks_left(aws) -> list[str]:
    cfn = client(aws, "cloudformation")
    return sorted(stack["StackName"] for stack in cfn.list_stacks()["StackSummaries"]
                  if stack["StackStatus"] != "DELETE_COMPLETE")


def test_kept_on_failure_then_a_failing_delete_keeps_the_state_and_says_what_still_bills_then_state_absent(
        aws, playbook, fake_eksctl, tmp_path) -> None:
    """One kept bring-up serves both teardowns: eksctl's delete failing (the cluster stays recorded as up, and the
    message says what still bills), then `-e state=absent` again, which tears it all down."""
    kept = playbook(*up_args(fake_eksctl, "-e", "keep_on_failure=true"))
    assert kept.rc != 0
    error = final_error(kept)
    assert '"msg": "apply | Apply the Flux Operator manifest: ' in error, kept
    assert "torn down" not in error
    assert eksctl_calls(kept) == ["create cluster", "utils write-kubeconfig"]
    assert client(aws, "eks").list_clusters()["clusters"] == ["eks-arm64"]
    assert len(running_nodes(aws)) == 2
    kubeconfig = kept.state_dir / "clusters" / "eks-arm64.kubeconfig"
    assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
    state = kept.state_dir / "clusters" / "eks-arm64.json"
    state.write_text('{"name": "eks-arm64", "sif_dir": "/tmp/sif", "lead_broker": {}}')  # as Flux would have

    failed = playbook(CLUSTER, "-e", "arch=arm64", "-e", "state=absent", *operator_manifest_args("arm64"),
                      env={"FAKE_EKSCTL_FAIL": "delete"})
    assert failed.rc != 0
    error = json.loads(final_error(failed).split(" => ", 1)[1])["msg"]
    assert 'Deleting eks-arm64 failed at "teardown | Delete the cluster and its nodes with eksctl"' in error, failed
    assert "waiter state transitioned to Failure" in error
    assert ("Still billing in us-east-1: EKS cluster eks-arm64 (ACTIVE); 2 instance(s) (hpc7g.16xlarge, "
            "hpc7g.16xlarge); CloudFormation stacks eksctl-eks-arm64-nodegroup-eks-arm64-nodes, "
            "eksctl-eks-arm64-cluster (CREATE_COMPLETE): about $3.47 per hour") in error, error
    assert "Its state file and kubeconfig are kept" in error
    assert state.exists() and kubeconfig.exists(), "the cluster bills: it stays recorded as up"

    gone = playbook(CLUSTER, "-e", "arch=arm64", "-e", "state=absent", *operator_manifest_args("arm64"))
    assert gone.rc == 0, gone
    assert eksctl_calls(gone)[-1] == "delete cluster"
    assert client(aws, "eks").list_clusters()["clusters"] == []
    assert running_nodes(aws) == []
    assert not state.exists() and not kubeconfig.exists()
    assert stacks_left(aws) == []


def test_stacks_left_without_a_cluster_are_deleted_before_the_state_file_goes(aws, playbook, fake_eksctl,
                                                                             tmp_path) -> None:
    """EKS says NotFound and eksctl says "No cluster found", yet a node group's stack (its VPC, NAT) is left."""
    cfn = client(aws, "cloudformation")
    body = '{"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}'
    for stack in ("eksctl-eks-arm64-cluster", "eksctl-eks-arm64-nodegroup-eks-arm64-nodes", "eksctl-other-cluster"):
        cfn.create_stack(StackName=stack, TemplateBody=body)
    state, kubeconfig = recorded_up(tmp_path / "state")
    gone = playbook(CLUSTER, "-e", "arch=arm64", "-e", "state=absent", *eksctl_args(fake_eksctl),
                    *operator_manifest_args("arm64"))
    assert gone.rc == 0, gone
    assert eksctl_calls(gone) == ["delete cluster"], "eksctl is asked though EKS knows no such cluster"
    assert stacks_left(aws) == ["eksctl-other-cluster"], "another cluster's stack is not touched"
    assert not state.exists() and not kubeconfig.exists()


def test_a_new_cluster_carries_a_time_to_live_that_aws_enforces(aws, playbook, fake_eksctl) -> None:
    """The schedules are set before eksctl creates anything and go with the cluster. moto keeps them but does
    not fire them: that AWS runs CloudFormation's DeleteStack at that time stays unverified here."""
    plan = playbook(CLUSTER, "-e", "arch=arm64", *eksctl_args(fake_eksctl), *operator_manifest_args("arm64"))
    assert "Not confirmed" in plan.out, plan
    assert "Time to live: 4.0 h, until " in plan.out and "about $14.00 if it lives that long" in plan.out
    kept = playbook(*up_args(fake_eksctl, "-e", "keep_on_failure=true", "-e", "eks_cluster_ttl_hours=2"))
    assert client(aws, "eks").list_clusters()["clusters"] == ["eks-arm64"], kept
    scheduler = client(aws, "scheduler")
    schedules = {item["Name"]: scheduler.get_schedule(Name=item["Name"])
                 for item in scheduler.list_schedules()["Schedules"]}
    assert sorted(schedules) == ["compat-lab-ttl-eks-arm64-cluster", "compat-lab-ttl-eks-arm64-nodes"]
    nodes, cluster = schedules["compat-lab-ttl-eks-arm64-nodes"], schedules["compat-lab-ttl-eks-arm64-cluster"]
    at = datetime.datetime.strptime(nodes["ScheduleExpression"], "at(%Y-%m-%dT%H:%M:%S)")
    assert abs((at - datetime.datetime.utcnow()).total_seconds() - 2 * 3600) < 600
    later = datetime.datetime.strptime(cluster["ScheduleExpression"], "at(%Y-%m-%dT%H:%M:%S)")
    assert later - at == datetime.timedelta(minutes=30), "the node group's stack goes first"
    for schedule, stack in ((nodes, "eksctl-eks-arm64-nodegroup-eks-arm64-nodes"),
                            (cluster, "eksctl-eks-arm64-cluster")):
        assert schedule["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:cloudformation:deleteStack"
        assert json.loads(schedule["Target"]["Input"]) == {"StackName": stack}
        assert schedule["ScheduleExpressionTimezone"] == "UTC" and schedule["ActionAfterCompletion"] == "DELETE"
    assert stacks_left(aws) == ["eksctl-eks-arm64-cluster", "eksctl-eks-arm64-nodegroup-eks-arm64-nodes"], \
        "the stacks the schedules name are the ones eksctl made"
    role = client(aws, "iam").get_role(RoleName="compat-lab-ttl-eks-arm64")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}

    gone = playbook(CLUSTER, "-e", "arch=arm64", "-e", "state=absent", *operator_manifest_args("arm64"))
    assert gone.rc == 0, gone
    assert scheduler.list_schedules()["Schedules"] == []
    assert client(aws, "iam").list_roles()["Roles"] == [] or all(
        r["RoleName"] != "compat-lab-ttl-eks-arm64" for r in client(aws, "iam").list_roles()["Roles"])


def test_ctrl_c_during_create_still_deletes_what_it_began(aws, fake_eksctl, tmp_path) -> None:
    """Ctrl-C ends ansible-playbook before any rescue runs; the stacks eksctl began go on being created. The
    guard around `eksctl create` starts the deletion itself, detached, and it completes after the play is gone."""
    env = playbook_env(tmp_path, {"FAKE_EKSCTL_CREATE_SECONDS": "60"})
    play = subprocess.Popen([str(BIN / "ansible-playbook"), *up_args(fake_eksctl), "-e",
                             f"eks_cluster_aws_endpoint_url={aws.url}"], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    log = tmp_path / "eksctl.log"
    try:
        deadline = time.monotonic() + 240
        while not (log.exists() and "create cluster" in log.read_text()
                   and client(aws, "eks").list_clusters()["clusters"] == ["eks-arm64"]):
            assert play.poll() is None and time.monotonic() < deadline, play.communicate()[0][-3000:]
            time.sleep(0.5)
        os.killpg(play.pid, signal.SIGINT)  # what a terminal sends the foreground process group
        out, _ = play.communicate(timeout=120)
    finally:
        if play.poll() is None:
            os.killpg(play.pid, signal.SIGKILL)
            play.wait()
    assert play.returncode != 0, out
    deadline = time.monotonic() + 120
    while client(aws, "eks").list_clusters()["clusters"] or stacks_left(aws) or running_nodes(aws):
        assert time.monotonic() < deadline, (log.read_text(), stacks_left(aws))
        time.sleep(0.5)
    assert [line.split(" --", 1)[0] for line in log.read_text().splitlines()] == ["create cluster", "delete cluster"]
    interrupted = tmp_path / "state" / "clusters" / "eks-arm64.interrupted.log"
    assert "the creation was interrupted; running" in interrupted.read_text()
