"""Small stores for the learning commands, built through the Store API or `planner import`.

`local_store`: the default experiment's own local runs (the very points `planner plan` lists), with
figures of merit from a known ground truth instead of real LAMMPS runs, so each test knows the best
answer. `synthetic_csv`: the synthetic benchmark's generator at a small size (archspec ancestry
decides compatibility, attributes decide performance).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from planner.core.experiment import load_experiment
from planner.core.plan import expand
from planner.core.types import Run, stable_id
from planner.edges.clusters import cluster_infos
from planner.edges.store import RunRecord, Store
from planner.edges.variant_info import variant_infos
from tests.conftest import REPO, planner

EXPERIMENT = REPO / "experiments" / "lammps.yaml"
METRIC = "timesteps_per_s"
#: ground truth of the local store: per-workload base, per-variant factor, per-suffix factor
BASE = {"lj": 60.0, "eam": 45.0, "chain": 200.0, "rhodo": 4.0, "reaxff": 50.0}
VARIANT = {"lammps-2025-mpich": 1.0, "lammps-2025-impi": 0.8, "lammps-2023-mpich": 0.6}
#: OpenMP threads lose to MPI ranks except on reaxff
SUFFIX = {"none": 1.0, "omp": 0.85}
REAXFF_OMP = 1.15
FACTS = {"lammps-2025-mpich": {"lammps.version": "20250722", "mpi.implementation": "mpich", "mpi.version": "5.0.2"},
         "lammps-2025-impi": {"lammps.version": "20250722", "mpi.implementation": "intel-mpi",
                              "mpi.version": "2021.17"},
         "lammps-2023-mpich": {"lammps.version": "20230802", "mpi.implementation": "mpich", "mpi.version": "3.0"}}


def truth(run: Run) -> float:
    factor = REAXFF_OMP if run.workload == "reaxff" and run.options.suffix == "omp" else SUFFIX[run.options.suffix]
    return BASE[run.workload] * VARIANT[run.variant] * factor * (1 + 0.01 * run.repeat)


def best_local(workload: str) -> tuple[str, str]:
    """(variant, suffix) of the best local point of a workload under the ground truth."""
    return "lammps-2025-mpich", "omp" if workload == "reaxff" else "none"


def records_from_plan(cluster: str, value: Any = truth) -> list[RunRecord]:
    """One stored run per run the default experiment plans on a cluster, ok with the ground truth FOM."""
    exp = load_experiment(EXPERIMENT)
    clusters, variants = cluster_infos(exp), variant_infos(exp)
    records = []
    for run in expand(exp, clusters, variants, cluster=cluster).runs:
        attrs = {"io.archspec.cpu.target": clusters[cluster].arch, "hardware.gpu.available": "no",
                 "lammps.packages": "KSPACE MOLECULE OPENMP OPT REAXFF RIGID", "os.vendor": "debian",
                 "os.version": "12", **FACTS.get(run.variant, {}), **variants[run.variant].attributes}
        records.append(RunRecord(run.id, run.config_id, run.cluster, run.app, run.workload, run.variant,
                                 run.key()["options"], run.repeat, "ok", variant_attrs=attrs,
                                 cluster_attrs=clusters[cluster].attributes(), foms={METRIC: value(run)}))
    return records


def record(*, cluster: str, workload: str, variant: str, options: dict[str, Any], repeat: int = 0,
           status: str = "ok", value: float | None = None, variant_attrs: dict[str, Any] | None = None,
           cluster_attrs: dict[str, Any] | None = None, app: str = "lammps", reason: str | None = None) -> RunRecord:
    key = {"cluster": cluster, "app": app, "workload": workload, "variant": variant, "options": options}
    return RunRecord(stable_id({**key, "repeat": repeat}), stable_id(key), cluster, app, workload, variant, options,
                     repeat, status, reason, variant_attrs=variant_attrs or {}, cluster_attrs=cluster_attrs or {},
                     source="import", foms={METRIC: value} if value is not None else {})


def copy_store(source: Path, where: Path) -> Path:
    """A private copy of a shared store (without its fitted model), for tests that change it."""
    where.mkdir(parents=True, exist_ok=True)
    target = where / source.name
    shutil.copy(source, target)
    return target


@pytest.fixture(scope="session")
def local_store_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("local") / "planner.sqlite"
    with Store(path) as store:
        store.add_many(records_from_plan("local"))
    return path


@pytest.fixture
def local_store(local_store_master: Path, tmp_path: Path) -> Path:
    return copy_store(local_store_master, tmp_path / "local")


def _synthetic() -> Any:
    spec = importlib.util.spec_from_file_location("synthetic", REPO / "benchmarks" / "synthetic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def synthetic() -> Any:
    return _synthetic()


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory, synthetic: Any) -> Path:
    path = tmp_path_factory.mktemp("synthetic") / "synthetic.csv"
    synthetic.write_csv(path, clusters=8, variants=24, repeats=1, seed=3)
    return path


@pytest.fixture(scope="session")
def synthetic_store_master(tmp_path_factory: pytest.TempPathFactory, synthetic_csv: Path) -> Path:
    path = tmp_path_factory.mktemp("synthetic-store") / "synthetic.sqlite"
    done = planner("import", str(synthetic_csv), "--store", str(path))
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture
def synthetic_store(synthetic_store_master: Path, tmp_path: Path) -> Path:
    return copy_store(synthetic_store_master, tmp_path / "synthetic")
