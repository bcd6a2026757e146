"""Features describe attributes, not names: spellings agree, archspec relations are right. Pure."""

from __future__ import annotations

from planner.learn import features

HOST = {"arch": "amd64", "microarchitecture": "zen3", "nodes": 2, "cores_per_node": 96}


def cpu(target: str, cluster: dict | None = None) -> dict:
    row = features.choice_features(app="lammps", cluster=cluster or HOST, variant={"io.archspec.cpu.target": target},
                                   launch={})
    return {k: v for k, v in row.items() if k.startswith("cpu.")}


def test_archspec_and_gcc_spellings_of_a_target_give_the_same_features() -> None:
    assert cpu("zen3") == cpu("znver3") == cpu("-march=znver3")
    assert cpu("skylake_avx512", {"microarchitecture": "icelake"}) == cpu("skylake-avx512",
                                                                         {"microarchitecture": "icelake"})
    assert cpu("amd64") == cpu("x86_64")


def test_host_target_relations_follow_microarchitecture_ancestry() -> None:
    exact, older, newer, other = cpu("zen3"), cpu("x86_64_v3"), cpu("zen4"), cpu("neoverse_v1")
    assert exact["cpu.can_run"] == 1.0 and exact["cpu.exact"] == 1.0 and exact["cpu.distance"] == 0.0
    assert older["cpu.can_run"] == 1.0 and older["cpu.distance"] > 0 and older["cpu.generic"] == 1.0
    assert newer["cpu.can_run"] == -1.0 and newer["cpu.distance"] == -1.0 and newer["cpu.same_family"] == 1.0
    assert other["cpu.can_run"] == -1.0 and other["cpu.same_family"] == 0.0
    # AVX-512 build on an AVX-512 host uses it all; an AVX2 build leaves width unused
    assert cpu("skylake_avx512", {"microarchitecture": "icelake"})["cpu.simd_gap"] == 0.0
    assert cpu("haswell", {"microarchitecture": "icelake"})["cpu.simd_gap"] > 0


def test_unknown_targets_are_left_out_not_guessed() -> None:
    assert cpu("pentium-9000") == {}


def test_release_dates_in_every_spelling_are_ordered_years() -> None:
    same = {features.release_year(v) for v in ("20250722", "22 Jul 2025", "2025.7.22", "22Jul2025")}
    assert len(same) == 1 and 2025.5 < same.pop() < 2025.6
    assert features.release_year("stable_29Sep2021_update2") < features.release_year("2Aug2023")
    assert features.release_year("not a date") is None


def test_mpi_spellings_and_versions() -> None:
    assert {features.mpi_family(v) for v in ("OpenMPI", "Open MPI", "openmpi")} == {"openmpi"}
    assert {features.mpi_family(v) for v in ("intel-mpi", "Intel MPI", "impi")} == {"intel-mpi"}
    assert features.version_number("4.1.2") > features.version_number("4.0.10") > features.version_number("3.3.2")


def test_launch_options_and_workload_size_become_numbers() -> None:
    row = features.features(app="lammps", workload="reaxff", params={"x": 2, "y": 1, "z": 2}, cluster=HOST,
                            variant={"lammps.packages": "OPT REAXFF"},
                            launch={"nodes": 2, "tasks": 96, "threads": 2, "suffix": "omp", "bind": ["/opt/mpi"]})
    assert row["workload.size"] == 4.0
    assert row["ranks.cores"] == 192.0 and row["ranks.fill"] == 1.0 and row["ranks.tasks_per_node"] == 48.0
    assert row["suffix.supported"] == 0.0  # -sf omp without the OPENMP package
    assert row["binds.count"] == 1.0 and row["binds.mpi"] == 1.0


def test_gcc_names_archspec_lacks_and_native_have_cpu_features() -> None:
    arm = {"arch": "arm64", "microarchitecture": "neoverse_n1"}
    assert cpu("cortex-a76", arm)["cpu.can_run"] == 0.0  # features covered, not archspec's tree: unknown
    assert cpu("cortex-a76", arm)["cpu.simd"] == 1.0
    assert cpu("native")["cpu.exact"] == 1.0 and cpu("native")["cpu.simd"] == 3.0  # zen3's AVX2
    assert cpu("btver2", {"microarchitecture": "icelake"})["cpu.can_run"] == -1.0  # SSE4A missing


def test_the_why_of_a_build_whose_compatibility_is_unknown_says_so() -> None:
    arm = {"microarchitecture": "neoverse_n1", "arch": "arm64"}
    said = features.describe("cpu", app="lammps", cluster=arm, variant={"io.archspec.cpu.target": "native"}, launch={})
    assert said == "built for native on neoverse_n1 (compatibility unknown)"
    said = features.describe("cpu", app="lammps", cluster={"microarchitecture": "zen4"},
                             variant={"io.archspec.cpu.target": "zen2"}, launch={})
    assert said == "built for zen2 on zen4 (3 generations older)"
