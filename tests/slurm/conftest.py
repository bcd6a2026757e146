"""local-slurm for real: Debian's slurmctld, slurmd and munge brought up once per session by roles/local_slurm
(through the planner's own ansible-runner adapter, on free loopback ports), and down at the end; the
Charliecloud images the images role built into the shared cache.

Root is needed (slurmd starts job steps as their owner): as another user these tests skip saying so.

The artifacts beside a test's store are the ones the images role wrote by inspecting each image
(`<images>/<variant>.compspec.json`), put into the store's artifact cache as `variants fetch` leaves it;
the fetch from the registry itself is tested with the images (branch i21images).
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CACHE
from tests.system import needs, needs_root

IMAGES = CACHE / "compat-lab" / "images"
#: the variants of experiments/lammps.yaml's local-slurm sweep, with the MPI their recipe builds them with
VARIANTS = {"lammps-debian11-openmpi": "openmpi", "lammps-debian12-openmpi": "openmpi",
            "lammps-debian13-openmpi": "openmpi", "lammps-debian12-mpich": "mpich"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_slurm() -> None:
    needs("slurmctld", "slurmd", "munged", "srun", "ch-run")
    needs_root("local-slurm: slurmd starts job steps as their owner")


def bring(state: str, ports: tuple[int, int] | None = None) -> None:
    from planner.edges.runner import PlaybookRequest, run_playbook

    extravars: dict[str, object] = {"cluster": "local-slurm", "state": state}
    if ports:
        extravars.update(local_slurm_ctld_port=ports[0], local_slurm_d_port=ports[1])
    done = run_playbook(PlaybookRequest("playbooks/cluster.yml", "inventories/local", extravars, tags="local_slurm"))
    assert done.ok, done.failures


@pytest.fixture(scope="session")
def local_slurm() -> Iterator[dict[str, str]]:
    """local-slurm up for the session (on free ports); the environment srun and ch-run need."""
    require_slurm()
    bring("present", (_free_port(), _free_port()))
    from planner.edges import slurm

    try:
        yield slurm.environment()
    finally:
        bring("absent")


def write_artifacts(store: Path, variants: list[str], without: tuple[str, ...] = ()) -> None:
    """The images' own artifacts beside `store`, as `variants fetch` leaves them (see the module's docstring);
    `without`: attributes left out, as an artifact that does not know them."""
    import json

    from planner.core.experiment import load_experiment
    from planner.edges.compspec_cache import ArtifactCache, Entry, cache_path
    from tests.conftest import REPO

    exp = load_experiment(REPO / "experiments" / "lammps.yaml")
    cache = ArtifactCache(cache_path(store))
    entries = []
    for name in variants:
        artifact = IMAGES / f"{name}.compspec.json"
        assert artifact.is_file(), f"the images role writes {artifact}"
        data = artifact.read_bytes()
        if without:
            spec = json.loads(data)
            for group in spec["compatibilities"]:
                group["attributes"] = {k: v for k, v in group["attributes"].items() if k not in without}
            data = json.dumps(spec, indent=2).encode()
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        cache.put(digest, data)
        entries.append(Entry(str(exp.variants[name].image), digest, "localhost:5000", f"tag {name}-compspec",
                             "2026-12-07 00:00:00 UTC"))
    cache.record(entries)
