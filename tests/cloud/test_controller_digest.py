"""The documented bring-up with the shipped defaults knows the controller image's digest before any AWS call.

Real: `ansible-playbook playbooks/cluster.yml -e arch=... -e confirm=true` as documented, with the shipped
`flux_operator_controller_images` (empty) and `flux_operator_controller_tags`; moto_server behind the AWS
front (which counts every call that reaches AWS); a real OCI registry (docker-registry) on 127.0.0.1
serving the controller's tags as image indexes, reached through COMPAT_LAB_REGISTRY_MIRRORS as ghcr.io
would be. Only the operator's manifest download is replaced (github.com is not reachable here).
"""

from __future__ import annotations

import pytest

from tests.cloud.conftest import client, eksctl_args, free_port, shipped_operator_args

CLUSTER = "playbooks/cluster.yml"


def final_error(played) -> str:
    return [line for line in played.out.splitlines() if line.startswith("fatal:")][-1]


def eksctl_calls(played) -> list[str]:
    log = played.state_dir.parent / "eksctl.log"
    return log.read_text().splitlines() if log.exists() else []


def test_no_registry_refuses_before_any_aws_call(aws, playbook, fake_eksctl) -> None:
    nothing = f"127.0.0.1:{free_port()}"  # nothing listens: a registry that cannot be reached
    played = playbook(CLUSTER, "-e", "arch=arm64", "-e", "confirm=true", *eksctl_args(fake_eksctl),
                      *shipped_operator_args("arm64"), env={"COMPAT_LAB_REGISTRY_MIRRORS": f"ghcr.io={nothing}"})
    assert played.rc != 0
    error = final_error(played)
    assert "Could not resolve the Flux Operator's controller image before creating anything" in error, played
    assert f"registry {nothing} unreachable" in error
    assert "Set flux_operator_controller_images.arm64 to <repository>@sha256:<digest>" in error
    assert sum(aws.config.forwarded.values()) == 0, f"AWS was called: {dict(aws.config.forwarded)}"
    assert eksctl_calls(played) == []


@pytest.mark.parametrize("arch", ["arm64", "amd64"])
def test_the_plan_shows_the_digest_resolved_for_the_arch(aws, playbook, fake_eksctl, controller_registry,
                                                          arch: str) -> None:
    played = playbook(CLUSTER, "-e", f"arch={arch}", *eksctl_args(fake_eksctl), *shipped_operator_args(arch),
                      env=controller_registry.env)
    assert played.rc != 0 and "Not confirmed: nothing was created." in played.out, played
    tag = "arm" if arch == "arm64" else "latest"
    pinned = controller_registry.pinned(tag, arch)
    assert f"Flux Operator controller: {pinned} (resolved from ghcr.io/flux-framework/flux-operator:{tag})" \
        in played.out
    # the figures a person sees before confirming (pytest -s shows them)
    print(*[line.strip(' ",') for line in played.out.splitlines()
            if "Estimated cost" in line or "Time to live" in line], sep="\n")
    creates = [action for action in aws.config.forwarded if action.startswith(("Create", "Run"))]
    assert creates == [] and eksctl_calls(played) == []


def test_an_index_without_the_arch_is_refused_before_any_aws_call(aws, playbook, fake_eksctl,
                                                                  controller_registry) -> None:
    # :latest has only an amd64 image here: asking it for arm64 must not pull an amd64 controller onto arm nodes
    played = playbook(CLUSTER, "-e", "arch=arm64", "-e", "confirm=true", *eksctl_args(fake_eksctl),
                      *shipped_operator_args("arm64"), "-e",
                      '{"flux_operator_controller_tags": {"arm64": "ghcr.io/flux-framework/flux-operator:latest"}}',
                      env=controller_registry.env)
    assert played.rc != 0
    error = final_error(played)
    assert "ghcr.io/flux-framework/flux-operator:latest (index sha256:" in error, played
    assert "has no linux/arm64 image; it has linux/amd64" in error
    assert sum(aws.config.forwarded.values()) == 0


def test_an_explicit_pin_wins_without_asking_a_registry(aws, playbook, fake_eksctl) -> None:
    pin = "ghcr.io/flux-framework/flux-operator@sha256:" + "a" * 64
    nothing = f"127.0.0.1:{free_port()}"
    played = playbook(CLUSTER, "-e", "arch=arm64", *eksctl_args(fake_eksctl), *shipped_operator_args("arm64"),
                      "-e", f'{{"flux_operator_controller_images": {{"arm64": "{pin}"}}}}',
                      env={"COMPAT_LAB_REGISTRY_MIRRORS": f"ghcr.io={nothing}"})
    assert "Not confirmed: nothing was created." in played.out, played
    assert f"Flux Operator controller: {pin} (pinned (flux_operator_controller_images))" in played.out
    assert client(aws, "eks").list_clusters()["clusters"] == []
