"""A host MPI bound into a container, for real on local-slurm (`ch-run -b HOSTLIB:/usr/local/lib
--set-env=LD_LIBRARY_PATH=/usr/local/lib`), and a bind the image's glibc cannot load, excluded by the metadata
and stored with its real reason when the metadata does not say."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sysconfig
from pathlib import Path

import yaml

from tests.conftest import planner
from tests.slurm.conftest import write_artifacts
from tests.slurm.test_local_slurm import experiment
from tests.system import needs

#: where the host library is bound: a directory every Debian image has, empty in ours, on the loader's path
TARGET = "/usr/local/lib"
#: Debian's Open MPI libraries (libopenmpi3, which openmpi-bin brings)
HOST_LIB = Path("/usr/lib") / str(sysconfig.get_config_var("MULTIARCH"))


def _runs(store: Path) -> dict[str, tuple[str, str | None, str]]:
    """(status, reason, log) per run, keyed by the rule it left out ("" for none)."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT options, status, reason, log_path FROM runs").fetchall()
    return {",".join(json.loads(options).get("skip_rules", [])): (status, reason, log)
            for options, status, reason, log in rows}


def test_host_intel_mpi_runs_in_the_mpich_image_through_slurm_s_pmi2(
        local_slurm: dict[str, str], built_images: dict[str, Path], native_variants: Path, tmp_path: Path) -> None:
    """Intel MPI (impi-rt: MPICH ABI, the native variant lammps-2025-impi's library) replaces the image's MPICH
    under the image's LAMMPS; it bootstraps through Slurm's PMI-2 as MPICH does, so the image's rule
    (mpich-slurm-pmi2) is what it needs: without it the ranks run as singletons (stored `mpi`)."""
    impi = native_variants / "variants" / "lammps-2025-impi" / "lib"
    assert (impi / "libmpi.so.12").is_file()
    variant = "lammps-debian12-mpich"
    store = tmp_path / "planner.sqlite"
    write_artifacts(store, [variant])
    host = {"env": {"LD_LIBRARY_PATH": TARGET, "I_MPI_DEBUG": "5"}}
    path = experiment(tmp_path, [variant], [{"name": "host-impi", "set": host},
                                            {"name": "host-impi-without-rule",
                                             "set": {**host, "skip_rules": ["mpich-slurm-pmi2"]}}])
    exp = yaml.safe_load(path.read_text())
    for sweep in exp["sweeps"]:  # the small input's bind and the library's
        sweep["options"]["set"]["bind"].append(f"{impi}:{TARGET}")
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    done = planner("sweep", "-e", str(path), "--cluster", "local-slurm", store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = _runs(store)
    status, _, log = runs[""]
    assert status == "ok", runs
    output = Path(log).read_text()
    assert "Intel(R) MPI Library" in output and "2 procs" in output  # the host's MPI ran the image's LAMMPS
    assert runs["mpich-slurm-pmi2"][:2] == ("failed", "mpi"), runs


def test_a_host_library_needing_a_newer_glibc_is_excluded_or_fails_with_os_abi(
        local_slurm: dict[str, str], built_images: dict[str, Path], tmp_path: Path) -> None:
    """Debian 12's Open MPI (this host's, built against glibc 2.36: it needs GLIBC_2.34) bound into the Debian 11
    image (glibc 2.31): the plan excludes it from the artifact's os.glibc; with an artifact that does not say,
    the run happens and is stored with the loader's reason, os-abi."""
    needs("/usr/bin/mpirun.openmpi")
    variant = "lammps-debian11-openmpi"
    libs = tmp_path / "host-openmpi"
    libs.mkdir()
    for name in ("libmpi.so.40", "libopen-rte.so.40", "libopen-pal.so.40"):
        shutil.copy(HOST_LIB / name, libs / name)  # the files, not links: links to host paths dangle inside
    host = {"env": {"LD_LIBRARY_PATH": TARGET}}
    path = experiment(tmp_path, [variant], [{"name": "host-openmpi", "set": host}])
    exp = yaml.safe_load(path.read_text())
    exp["sweeps"][0]["options"]["set"]["bind"].append(f"{libs}:{TARGET}")
    path.write_text(yaml.safe_dump(exp, sort_keys=False))

    known = tmp_path / "known" / "planner.sqlite"
    known.parent.mkdir()
    write_artifacts(known, [variant])
    plan = planner("plan", "-e", str(path), "--cluster", "local-slurm", "--json", store=known)
    assert plan.returncode == 0, plan.stderr
    out = json.loads(plan.stdout)
    assert not out["runs"] and [x["reason"] for x in out["excluded"]] == ["os-abi"]
    assert "has glibc 2.31 (os.glibc), older than glibc 2.36" in out["excluded"][0]["detail"]

    unknown = tmp_path / "unknown" / "planner.sqlite"
    unknown.parent.mkdir()
    write_artifacts(unknown, [variant], without=("os.glibc",))
    done = planner("sweep", "-e", str(path), "--cluster", "local-slurm", store=unknown)
    assert done.returncode == 0, done.stdout + done.stderr
    status, reason, log = _runs(unknown)[""]
    assert (status, reason) == ("failed", "os-abi")
    assert "version `GLIBC_2.34' not found (required by /usr/local/lib/libmpi.so.40)" in Path(log).read_text()
