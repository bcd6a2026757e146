"""A MiniCluster pod's /dev/shm, with real MPICH: 64 ranks on one node die under a container runtime's 64 MiB and
run under the memory-backed volume roles/minicluster declares.

Real: MPICH 5.0.2 from PyPI (the `mpich` wheel the native variants install, its own mpicc and mpiexec), 64
ranks of a small MPI program (MPI_Init, one MPI_Allreduce over every rank, MPI_Finalize) on this machine,
each run in a private mount namespace (`unshare -m`, root) whose /dev/shm is a tmpfs of the size a pod gets:
64 MiB (what containerd and Docker give a container) or the role's default for 64 ranks per pod. The
Kubernetes volume itself cannot be made here; tests/cloud/test_minicluster_resources.py checks the role
declares it, and the stand-in pod (tests/cloud/kube_api.py, fake_flux.py) enforces the same limit.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.cloud import fake_flux
from tests.cloud.kube_api import RUNTIME_SHM_MIB, shm_mib
from tests.conftest import REPO
from tests.system import needs, needs_root

PROGRAM = r"""
#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
    int rank, size, one = 1, sum = 0;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("%d ranks joined\n", sum);
    MPI_Finalize();
    return sum == size ? 0 : 1;
}
"""
RANKS = 64


def role_default_shm_mib(ranks_per_pod: int) -> int:
    defaults = yaml.safe_load((REPO / "roles" / "minicluster" / "defaults" / "main.yml").read_text())
    return ranks_per_pod * int(defaults["minicluster_shm_mib_per_rank"])


@pytest.fixture(scope="module")
def mpich(native_variants: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the PyPI MPICH's bin directory, the program built with its mpicc)."""
    needs("unshare", "cc")
    needs_root("a tmpfs of a chosen size in a private mount namespace")
    bin_dir = native_variants / "variants" / "lammps-2025-mpich" / "bin"
    build = tmp_path_factory.mktemp("shm")
    (build / "allreduce.c").write_text(PROGRAM)
    subprocess.run([str(bin_dir / "mpicc"), "allreduce.c", "-o", "allreduce"], cwd=build, check=True, timeout=120)
    return bin_dir, build / "allreduce"


def run_under_shm(mpich: tuple[Path, Path], mib: int) -> subprocess.CompletedProcess[str]:
    bin_dir, program = mpich
    script = (f"mount -t tmpfs -o size={mib}m tmpfs /dev/shm && "
              f"exec {bin_dir / 'mpiexec'} -n {RANKS} {program}")
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=300,
                          check=False)


def test_64_mpich_ranks_die_under_a_container_runtimes_dev_shm(mpich) -> None:
    done = run_under_shm(mpich, RUNTIME_SHM_MIB)
    assert done.returncode != 0, done.stdout
    assert f"{RANKS} ranks joined" not in done.stdout
    assert "BAD TERMINATION" in done.stdout + done.stderr


def test_64_mpich_ranks_run_under_the_roles_memory_backed_dev_shm(mpich) -> None:
    done = run_under_shm(mpich, role_default_shm_mib(RANKS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{RANKS} ranks joined" in done.stdout


def minicluster(volumes: dict | None) -> dict:
    container = {"image": "ghcr.io/converged-computing/rainbow-experiments:singularity-mamba-arm"}
    if volumes is not None:
        container["volumes"] = volumes
    return {"spec": {"size": 2, "containers": [container]}}


def stand_in_lmp(tmp_path: Path, shm: int) -> subprocess.CompletedProcess[str]:
    """The stand-in `lmp` of one 128-rank MPICH job over 2 pods (64 ranks each), in a pod of that /dev/shm."""
    fake_flux.install(tmp_path / "fakes")
    env = {**os.environ, "FAKE_FLUX_LOG": str(tmp_path / "calls.jsonl"), "FAKE_SHM_MIB": str(shm),
           "FLUX_JOB_SIZE": "128", "FLUX_JOB_NNODES": "2", "PMI_FD": "3",
           "FAKE_CONTAINER_IMAGE": "docker://ghcr.io/rse-ops/lammps-matrix:mpich-ubuntu-22.04-arm64"}
    return subprocess.run([str(tmp_path / "fakes" / "lmp"), "-in", "in.reaxc.hns"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_stand_in_pod_enforces_64_mib_unless_the_volume_is_declared(tmp_path: Path) -> None:
    assert shm_mib(minicluster(None)) == 64
    declared = {"dev-shm": {"emptyDir": True, "emptyDirMedium": "memory", "emptyDirSizeLimit": "512Mi",
                            "path": "/dev/shm"}}
    assert shm_mib(minicluster(declared)) == 512
    # a disk-backed emptyDir at /dev/shm is not what MPI needs: the runtime's 64 MiB stay
    assert shm_mib(minicluster({"x": {"emptyDir": True, "path": "/dev/shm"}})) == 64
    small = stand_in_lmp(tmp_path, 64)
    assert small.returncode == 135 and "Caught signal 7 (Bus error)" in small.stderr
    assert "Total wall time" not in small.stdout
    roomy = stand_in_lmp(tmp_path, role_default_shm_mib(64))
    assert roomy.returncode == 0 and "Loop time of 1.25 on 128 procs" in roomy.stdout


def test_the_stand_in_open_mpi_says_what_open_mpi_4_says_when_the_view_does_not_load(tmp_path: Path) -> None:
    """A jammy view (glibc 2.35) in an Ubuntu 20.04 Open MPI image: the rank's dlopen() of the view's libpmi.so
    fails and Open MPI 4 says only that PMI_Init failed (opal/mca/pmix/flux/pmix_flux.c: no dlerror()), which
    alone is an `mpi` failure; `ldd` in the image gives the loader's words (roles/run_matrix adds them to the
    log, tests/cloud/test_launch_rules_flux.py), and with them the run is os-abi. The 22.04 image loads it."""
    from planner.core.apps import lammps

    fake_flux.install(tmp_path / "fakes")
    base = {**os.environ, "FAKE_FLUX_LOG": str(tmp_path / "calls.jsonl"), "FAKE_VIEW_GLIBC": "2.35",
            "FLUX_JOB_SIZE": "1", "PMI_FD": "3"}
    matrix = "ghcr.io/rse-ops/lammps-matrix"
    old = subprocess.run([str(tmp_path / "fakes" / "lmp")], capture_output=True, text=True, timeout=60, check=False,
                         env={**base, "FAKE_CONTAINER_IMAGE": f"{matrix}:openmpi-ubuntu-20.04-arm64"})
    assert old.returncode == 1 and "GLIBC" not in old.stderr
    assert old.stderr.startswith("PMI_Init [../../../../../opal/mca/pmix/flux/pmix_flux.c:")
    assert "  pmix init\n  --> Returned value Error (-1) instead of ORTE_SUCCESS" in old.stderr
    parsed = lammps.DEFINITION.parse(old.stdout + old.stderr, exit_code=old.returncode)
    assert (parsed.status, parsed.reason) == ("failed", "mpi")
    said = ("compat-lab: ldd in the image: /mnt/flux/view/lib/flux/libpmi.so: /lib/aarch64-linux-gnu/libc.so.6: "
            "version `GLIBC_2.35' not found (required by /mnt/flux/view/lib/flux/libpmi.so)")
    parsed = lammps.DEFINITION.parse(old.stdout + old.stderr + said + "\n", exit_code=old.returncode)
    assert (parsed.status, parsed.reason, parsed.detail) == ("failed", "os-abi", said)
    new = subprocess.run([str(tmp_path / "fakes" / "lmp")], capture_output=True, text=True, timeout=60, check=False,
                         env={**base, "FAKE_CONTAINER_IMAGE": f"{matrix}:openmpi-ubuntu-22.04-arm64"})
    assert new.returncode == 0 and "Total wall time" in new.stdout
