"""Container variants built here for real and what the planner reads from them.

What a user sees: `variants build` leaves images that `ch-run` starts and that run LAMMPS with 2 MPI ranks;
each image's compspec artifact says what the image holds (Debian 11/12/13 with glibc 2.31/2.36/2.41, Open
MPI or MPICH, the LAMMPS release and packages `lmp -h` lists), not what anyone typed; `variants push`
publishes images and artifacts to the real local registry (Debian's docker-registry on 127.0.0.1) and
`variants fetch` into a fresh cache gives the plan those attributes; a build killed with kill -9 is
redone, never trusted. Real parts only: mmdebstrap, Debian's mirror, Charliecloud, Open MPI, MPICH.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planner.core import compspec
from planner.core.experiment import load_experiment
from planner.core.inputs import adapt
from planner.core.plan import expand
from planner.core.types import ClusterInfo
from planner.edges.compspec_cache import ArtifactCache
from planner.edges.variant_info import variant_infos
from planner.edges.watchdog import owned_by
from tests.conftest import CACHE, REPO, planner
from tests.images.conftest import EXPECTED, LAMMPS, needs_image_tools
from tests.registry.conftest import start_registry

pytestmark = pytest.mark.images
ROOT_OK = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
TINY_LJ = "\n".join(["units lj", "lattice fcc 0.8442", "region b block 0 4 0 4 0 4", "create_box 1 b",
                     "create_atoms 1 box", "mass 1 1.0", "pair_style lj/cut 2.5", "pair_coeff 1 1 1.0 1.0 2.5",
                     "run 10", ""])


def ch_run(image: Path, *argv: str, cwd: str = "/", stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "USER": os.environ.get("USER") or "root", **ROOT_OK}
    return subprocess.run(["ch-run", "--cd", cwd, str(image), "--", *argv], env=env, input=stdin,
                          capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_image_runs_the_lj_benchmark_with_two_mpi_ranks(built_images: dict[str, Path], name: str) -> None:
    image = built_images[name]
    assert (image.parent / f"{name}.done").is_file()
    done = ch_run(image, "mpirun", "-n", "2", "lmp", "-in", "in.lj", "-log", "none", "-nocite",
                  cwd="/opt/lammps/bench")
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    assert "on 2 procs for 100 steps with 32000 atoms" in done.stdout
    assert "Total wall time" in done.stdout


def test_the_mpich_image_runs_reaxff_from_its_hns_example(built_images: dict[str, Path]) -> None:
    """LAMMPS 2025 no longer takes the `reax/c` names Debian 12's HNS input uses: the input goes in adapted with
    the substitutions the experiment's native reaxff workload already makes (the container source needs them
    too on this image), read from stdin in the example's directory, beside its data and force field."""
    image = built_images["lammps-debian12-mpich"]
    hns = image / "usr" / "share" / "lammps" / "examples" / "reaxff" / "HNS"
    native = load_experiment(LAMMPS).apps["lammps"].workloads["reaxff"].native
    text = adapt((hns / "in.reaxc.hns").read_text(), native.model_copy(update={"substitute": tuple(
        rule for rule in native.substitute if "reax" in rule.pattern)}))
    done = ch_run(image, "mpirun", "-n", "2", "lmp", "-var", "x", "1", "-var", "y", "1", "-var", "z", "1",
                  "-log", "none", "-nocite", cwd="/opt/lammps/examples/reaxff/HNS", stdin=text)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    assert "on 2 procs for 100 steps" in done.stdout and "Total wall time" in done.stdout


def test_artifacts_say_what_each_image_holds(built_images: dict[str, Path]) -> None:
    for name, expected in EXPECTED.items():
        data = (built_images[name].parent / f"{name}.compspec.json").read_bytes()
        attrs = compspec.attributes(compspec.parse(data))
        assert {key: attrs.get(key) for key in expected} == expected, name
        assert attrs["os.vendor"] == "debian" and attrs["io.archspec.cpu.target"] == "x86_64"
        assert attrs["hardware.gpu.available"] == "no"
        # the versions the image's own lmp -h reports, cross-checked against the MPI library it links
        help_text = ch_run(built_images[name], "lmp", "-h").stdout
        assert attrs["lammps.release"].split(" - ")[0] in help_text
        assert attrs["mpi.version"] in help_text
        assert "KSPACE" in attrs["lammps.packages"].split() and "MOLECULE" in attrs["lammps.packages"].split()
    mpich = compspec.attributes(compspec.parse(
        (built_images["lammps-debian12-mpich"].parent / "lammps-debian12-mpich.compspec.json").read_bytes()))
    assert mpich["lammps.version"] == "20250722" and mpich["mpi.version"] == "5.0.2"
    assert "REAXFF" in mpich["lammps.packages"].split()
    debian12 = compspec.attributes(compspec.parse(
        (built_images["lammps-debian12-openmpi"].parent / "lammps-debian12-openmpi.compspec.json").read_bytes()))
    assert debian12["lammps.version"] == "20210929"  # Debian 12's lammps: 29 Sep 2021, update 2
    assert "REAXFF" not in debian12["lammps.packages"].split()  # Debian builds it without


def test_pushed_images_and_artifacts_fetched_into_a_fresh_cache_decide_the_plan(
        built_images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docker").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    reg = start_registry(tmp_path / "registry")
    try:
        env = {"COMPAT_LAB_REGISTRY_MIRRORS": f"localhost:5000={reg.host}"}
        started = time.monotonic()
        pushed = planner("variants", "push", "--registry", f"{reg.host}/compat-lab/lammps",
                         *[arg for name in EXPECTED for arg in ("--variant", name)], env=env)
        push_seconds = time.monotonic() - started
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        print(f"pushed {len(EXPECTED)} images in {push_seconds:.1f} s")
        store = tmp_path / "fresh" / "planner.sqlite"
        variants = [arg for name in EXPECTED for arg in ("--variant", name)]
        fetched = planner("variants", "fetch", "--json", *variants, store=store, env=env)
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        report = json.loads(fetched.stdout)
        assert report["downloaded"] == len(EXPECTED)
        # the image manifest is there and the artifact refers to it (referrers tag schema on this registry)
        assert {a["found_by"].split(" sha256-")[0] for a in report["artifacts"]} == {"referrers tag"}
        for name in EXPECTED:
            shown = json.loads(planner("variants", "show", name, "--json", store=store).stdout)
            assert shown["known"] and shown["attributes"], name
            assert {a["source"].split(" ")[0] for a in shown["attributes"].values()} == {"artifact"}, name
            local = compspec.attributes(compspec.parse((built_images[name].parent / f"{name}.compspec.json")
                                                       .read_bytes()))
            assert {k: a["value"] for k, a in shown["attributes"].items()} == local
    finally:
        reg.stop()
    # the plan on a Charliecloud cluster of this machine: reaxff needs REAXFF, which only the fetched
    # artifacts say the Open MPI images lack; with an empty cache nothing is known and nothing is excluded
    exp = load_experiment(_with_sweep_on_local(tmp_path))
    cluster = ClusterInfo("local", "local", "x86_64", "x86_64", 1, 2, container_runtime="charliecloud")
    for cache, decided in ((ArtifactCache(tmp_path / "fresh" / "planner.sqlite.compspec"), True),
                           (ArtifactCache(tmp_path / "empty.compspec"), False)):
        plan = expand(exp, {"local": cluster}, variant_infos(exp, CACHE / "compat-lab", cache), cluster="local",
                      workloads=["reaxff"], only_variants=sorted(EXPECTED))
        excluded = {x.variant: x.detail for x in plan.excluded}
        planned = {run.variant for run in plan.runs}
        if decided:
            assert planned == {"lammps-debian12-mpich"}, excluded
            assert all("REAXFF" in excluded[n] for n in EXPECTED if "openmpi" in n), excluded
        else:
            assert planned == set(EXPECTED) and not excluded


def _with_sweep_on_local(tmp_path: Path) -> Path:
    """The default experiment with one more sweep: the built variants x reaxff on `local`."""
    text = LAMMPS.read_text()
    sweep = ("sweeps:\n  - name: images-here\n    clusters: [local]\n    app: lammps\n    workloads: [reaxff]\n"
             f"    variants: [{', '.join(sorted(EXPECTED))}]\n    options: {{set: {{tasks: 2}}}}\n    repeats: 1\n")
    path = tmp_path / "exp.yaml"
    path.write_text(text.replace("sweeps:\n", sweep, 1))
    return path


def test_a_build_killed_with_kill_9_is_redone_not_trusted(built_images: dict[str, Path], tmp_path: Path) -> None:
    """kill -9 the planner while mmdebstrap is mid-way (its watchdog then stops Ansible and the build); the
    image is not marked, and the next build starts over and succeeds."""
    needs_image_tools()
    cache = tmp_path / "cache"
    (cache / "images").mkdir(parents=True)
    shared = CACHE / "compat-lab" / "images"
    for kept in (".apt", ".wheels"):  # the downloads stay warm; the image is built from scratch
        (cache / "images" / kept).symlink_to(shared / kept)
    env = {**os.environ, "COMPAT_LAB_CACHE": str(cache)}
    name = "lammps-debian12-openmpi"
    argv = [sys.executable, "-m", "planner", "variants", "build", name, "-e", str(LAMMPS)]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = cache / "images" / f".{name}.partial"
    try:
        deadline = time.monotonic() + 900
        while not (partial / "usr" / "bin" / "apt").exists():  # mmdebstrap is inside the build
            assert proc.poll() is None, "the build ended before it could be killed"
            assert time.monotonic() < deadline, "mmdebstrap never got going"
            time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    deadline = time.monotonic() + 120
    while owned_by(proc.pid):  # the watchdog stops what the dead planner started
        assert time.monotonic() < deadline, f"left running: {owned_by(proc.pid)}"
        time.sleep(0.5)
    assert partial.exists() and not (cache / "images" / f"{name}.done").exists()
    again = planner("variants", "build", name, "--json", "-e", str(LAMMPS), env={"COMPAT_LAB_CACHE": str(cache)},
                    timeout=3600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert (cache / "images" / f"{name}.done").is_file() and not partial.exists()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(cache) not in mounts  # nothing mmdebstrap mounted is left behind
    done = ch_run(cache / "images" / name, "mpirun", "-n", "2", "lmp", "-log", "none", "-nocite", stdin=TINY_LJ)
    assert "on 2 procs for 10 steps" in done.stdout, done.stdout[-1500:] + done.stderr[-1500:]
