"""CPU target names (archspec's and every GCC -march/-mcpu spelling) and what a host can run."""

from __future__ import annotations

import dataclasses

import pytest

from planner.core import archs, compat
from planner.core.experiment import Options, Source, Workload
from planner.core.types import ClusterInfo, VariantInfo


@pytest.mark.parametrize(("name", "family", "archspec_name"), [
    ("icelake-server", "x86_64", "icelake"), ("-march=znver4", "x86_64", "zen4"), ("bdver4", "x86_64", "excavator"),
    ("core-avx2", "x86_64", "haswell"), ("neoverse-v1", "aarch64", "neoverse_v1"), ("cortex-a72", "aarch64",
                                                                                    "cortex_a72"),
    ("cortex-a53", "aarch64", None), ("cortex-x1", "aarch64", None), ("btver2", "x86_64", None),
    ("amd64", "x86_64", "x86_64"), ("arm64", "aarch64", "aarch64"),
])
def test_gcc_names_map_to_archspec_or_keep_their_family(name: str, family: str, archspec_name: str | None) -> None:
    assert archs.known(name)
    assert archs.family(name) == family
    assert archs.normalize(name) == archspec_name


def test_generic_and_native_take_the_architecture_of_the_machine() -> None:
    assert archs.normalize("generic", "arm64") == "aarch64" and archs.normalize("generic", "zen3") == "x86_64"
    assert archs.family("generic") is None and archs.family("native", "neoverse_n1") == "aarch64"
    assert archs.can_run("neoverse_n1", "generic") is True
    assert archs.can_run("zen3", "native") is None  # built on some machine: learnt from measurements
    assert not archs.known("pentium-9000") and archs.target("pentium-9000") is None


@pytest.mark.parametrize(("host", "build", "verdict"), [
    ("icelake", "cascadelake", True), ("zen4", "x86-64-v4", True),  # archspec ancestry
    ("neoverse_v2", "neoverse-v1", None), ("zen4", "icelake-server", None),  # other branch, extensions covered
    ("zen", "haswell", None), ("neoverse_n1", "cortex-a76", None),
    ("zen3", "skylake-avx512", False), ("icelake", "bdver4", False),  # AVX-512 / FMA4 and XOP missing
    ("neoverse_n1", "neoverse-v1", False), ("neoverse_n1", "a64fx", False),  # SVE missing
    ("haswell", "neoverse_n1", False), ("haswell", "zen4", False),
])
def test_can_run_is_unknown_where_only_ancestry_says_no(host: str, build: str, verdict: bool | None) -> None:
    assert archs.can_run(host, build) is verdict


def test_the_architecture_rule_excludes_only_what_cannot_run() -> None:
    haswell = ClusterInfo("h", "eks", "x86_64", "haswell", 1, 8)
    workload = Workload(container=Source(workdir="/", input="in"))

    def rule(cluster: ClusterInfo, target: str) -> str | None:
        variant = VariantInfo("v", "container", "lammps", {"io.archspec.cpu.target": target}, image="docker://v")
        return compat.check(cluster, variant, "w", workload, Options())

    for target in ("aarch64", "neoverse-n1", "zen4", "cortex-a53"):
        assert rule(haswell, target), target
    assert "cluster h is amd64" in (rule(haswell, "cortex-a53") or "")
    for target in ("haswell", "x86-64-v3", "generic", "native", "ivybridge"):
        assert rule(haswell, target) is None, target
    arm = dataclasses.replace(haswell, arch="arm64", microarchitecture="neoverse_n1")
    assert rule(arm, "generic") is None and rule(arm, "haswell") and rule(arm, "neoverse-v2")
