"""Conformance of every registered launcher and container runtime (planner.core.backends).

Each backend answers the same contract: its argv words, the environment it adds, the PMI flavours it
takes (refusing others, as the real program does), job name and limit where its runs are jobs, and for
runtimes the wrapper words around each rank's command. Where the real program is on this machine the
rendered words are executed: hydra's `mpiexec` (the native variants' MPICH), Open MPI's `mpirun` (the
host's), `ch-run` with a Charliecloud image; `srun` runs for real in tests/slurm (it needs local-slurm up).
`flux run` and `singularity exec` cannot run here (no Flux, no Singularity package in Debian 12): their words
are checked against their manuals, cited in their modules.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from planner.core import backends
from planner.core.backends import Container, Ranks
from tests.system import needs

LAUNCHERS = sorted(backends.LAUNCHERS)
RUNTIMES = sorted(backends.RUNTIMES)


def test_every_launcher_and_runtime_is_registered_once() -> None:
    assert LAUNCHERS == ["flux", "mpiexec", "mpirun", "srun"]
    assert RUNTIMES == ["apptainer", "charliecloud", "none", "singularity"]
    with pytest.raises(KeyError, match="no launcher 'pbs'; registered: flux, mpiexec, mpirun, srun"):
        backends.launcher("pbs")
    with pytest.raises(ValueError, match="already registered"):
        backends.register_launcher("srun")(type("Another", (backends.Launcher,), {}))


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_contract(name: str) -> None:
    launcher = backends.launcher(name)
    plain = launcher.command(Ranks(4))
    assert plain.argv and all(isinstance(word, str) and word for word in plain.argv)
    assert "4" in plain.argv
    # threads and binding change the words, never the rank count
    bound = launcher.command(Ranks(4, threads=2, affinity="per-task"))
    assert bound != plain and "4" in bound.argv
    # a job name and limit only where runs are jobs; a described configuration has neither
    job = launcher.command(Ranks(4, job="abc123", limit=90))
    if launcher.jobs:
        assert any("abc123" in word for word in job.argv)
    else:
        assert job == plain and launcher.cancel("abc123") is None
    # every flavour it offers is taken; one it does not offer is refused as its real program would
    for flavour in launcher.pmi:
        assert launcher.refuses(Ranks(2, pmi=flavour)) is None
        assert any(flavour in word for word in launcher.command(Ranks(2, pmi=flavour)).argv)
    assert launcher.refuses(Ranks(2, pmi="pmi3")) is not None
    assert (launcher.refuses(Ranks(2, shell={"verbose": "1"})) is None) == (name == "flux")


@pytest.mark.parametrize("name", RUNTIMES)
def test_runtime_contract(name: str) -> None:
    runtime = backends.runtime(name)
    plain = runtime.wrap(Container("/images/x", "/work", env={"K": "v w"}))
    if not runtime.contains:
        assert plain.argv == () and plain.env == {"K": "v w"}
        assert runtime.refuses(Container(None, binds=("/a:/b",))) is not None
        return
    assert "/images/x" in plain.argv and "/work" in plain.argv
    assert not plain.env and any("K=v w" in word for word in plain.argv)  # inside the container, one word
    bound = runtime.wrap(Container("/images/x", binds=("/host/lib:/opt/lib",), args=("--flag",)))
    assert "/host/lib:/opt/lib" in bound.argv and bound.argv.index("--flag") < bound.argv.index("/images/x")
    assert runtime.refuses(Container(None)) is not None


def test_flux_and_singularity_words_are_todays() -> None:
    """Stand-in level (no Flux, no Singularity here): the words flux-run(1) and singularity-exec(1) document."""
    flux = backends.launcher("flux").command(Ranks(128, nodes=2, threads=2, affinity="per-task", pmi="simple",
                                                    shell={"verbose": "2"}, job="r1", limit=3600))
    assert flux.argv == ("flux", "run", "--job-name=r1", "-t", "3600s", "-N", "2", "-n", "128", "-c", "2",
                         "-o", "cpu-affinity=per-task", "-o", "pmi=simple", "-o", "verbose=2")
    assert backends.launcher("flux").refuses(Ranks(2, pmi="simple,off")) == "pmi 'simple,off': `off` stands alone"
    sing = backends.runtime("singularity").wrap(Container("/s/x.sif", "/opt/w", ("/a:/a",), {"K": "v"}))
    assert sing.argv == ("singularity", "exec", "--bind", "/a:/a", "--env", "K=v", "--pwd", "/opt/w", "/s/x.sif")


def test_srun_words() -> None:
    srun = backends.launcher("srun")
    words = srun.command(Ranks(2, threads=1, affinity="per-task", pmi="pmix", job="r1", limit=61.5))
    assert words.argv == ("srun", "--mpi=pmix", "-n", "2", "--cpu-bind=cores", "-J", "r1", "-t", "1:02")
    assert srun.refuses(Ranks(2, pmi="pmix,pmi2")) is not None  # srun --mpi takes one plugin
    assert srun.cancel("r1") == ("scancel", "--name", "r1")


def _ranks_started(argv: list[str], rank_variable: str, env: dict[str, str]) -> list[str]:
    probe = ["sh", "-c", f'echo "rank=${rank_variable}"']
    done = subprocess.run([*argv, *probe], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return sorted(line for line in done.stdout.splitlines() if line.startswith("rank="))


def test_mpiexec_starts_the_ranks_asked_for(native_variants: Path) -> None:
    """Real hydra (MPICH's, in a native variant's prefix): its words start 2 ranks, bound to cores."""
    program = native_variants / "variants" / "lammps-2025-mpich" / "bin" / "mpiexec"
    words = backends.launcher("mpiexec").command(Ranks(2, affinity="per-task", program=str(program)))
    assert _ranks_started(list(words.argv), "PMI_RANK", dict(words.env)) == ["rank=0", "rank=1"]


def test_mpirun_starts_the_ranks_asked_for() -> None:
    """Real Open MPI mpirun (the host's). As root it refuses to start without its two variables: a rule's
    business (the cluster runs as root), given here the way that rule gives them."""
    needs("/usr/bin/mpirun.openmpi")
    words = backends.launcher("mpirun").command(Ranks(2, affinity="per-task"))
    env = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"} if os.getuid() == 0 else {}
    assert _ranks_started(list(words.argv), "OMPI_COMM_WORLD_RANK", env) == ["rank=0", "rank=1"]


def test_charliecloud_wraps_each_rank_in_the_image(built_images: dict[str, Path], tmp_path: Path) -> None:
    """Real ch-run: the bind, the variable and the working directory reach the command inside the image."""
    image = next(iter(built_images.values()))
    (tmp_path / "probe").write_text("bound\n")
    words = backends.runtime("charliecloud").wrap(Container(str(image), "/tmp", (f"{tmp_path}:/mnt",),
                                                            {"COMPAT_LAB_PROBE": "a b"}))
    done = subprocess.run([*words.argv, "sh", "-c", 'cat /mnt/probe; echo "$COMPAT_LAB_PROBE"; pwd; '
                           '. /etc/os-release; echo "$ID"'],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "USER": "root"}
                          if "USER" not in os.environ else None, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["bound", "a b", "/tmp", "debian"]
    # a bind whose target the image lacks is refused by ch-run itself (the image is mounted read-only)
    refused = backends.runtime("charliecloud").wrap(Container(str(image), binds=(f"{tmp_path}:/no/such/dir",)))
    failed = subprocess.run([*refused.argv, "true"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "USER": os.environ.get("USER", "root")}, check=False)
    assert failed.returncode != 0 and "can't mkdir" in failed.stderr
