"""HPC Challenge run for real (issue 20): Debian's hpcc under Open MPI's mpirun, swept, fitted and recommended
through the same commands as LAMMPS, and its figures compared with a reference: a second app proves the
experiment format, the learner and `recommend` are not shaped by the first."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest

from planner.edges.store import Store
from tests.conftest import REPO, planner
from tests.system import needs

pytestmark = pytest.mark.hpcc

#: the default sweep cut to one small problem on 1 and 2 ranks, one repeat each
TINY_HPCC = (REPO / "experiments" / "hpcc.yaml").read_text().replace(
    "parameters: {n: 1000,", "parameters: {n: 400,").replace("        nb: [40, 100]\n", "").replace(
    "    repeats: 2\n", "    repeats: 1\n")


@pytest.fixture(scope="module")
def hpcc_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    needs("/usr/bin/hpcc", "/usr/bin/mpirun.openmpi")
    directory = tmp_path_factory.mktemp("hpcc")
    experiment = directory / "hpcc.yaml"
    experiment.write_text(TINY_HPCC)
    store = directory / "planner.sqlite"
    done = planner("sweep", "-e", str(experiment), store=store, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return experiment, store


def test_a_sweep_stores_every_hpcc_figure_of_each_run(hpcc_store: tuple[Path, Path]) -> None:
    _, store = hpcc_store
    with Store(store) as opened:
        records = opened.records()
    assert sorted(r.options.get("tasks", 1) for r in records) == [1, 2]
    for record in records:
        assert (record.status, record.reason) == ("ok", None), record.detail
        assert record.foms["procs"] == record.options.get("tasks", 1)
        for name in ("hpl_gflops", "stream_triad_gbs", "randomaccess_gups", "ptrans_gbs", "fft_gflops"):
            assert record.foms[name] > 0, name
        assert "/usr/bin/mpirun.openmpi -n" in record.command and record.command.endswith("/usr/bin/hpcc")
        # the input the run read was written from the workload's parameters
        inputs = (Path(record.log_path).parent / "hpccinf.txt").read_text().splitlines()
        assert inputs[5].split()[0] == "400"


def test_fit_and_recommend_hpcc_hpl(hpcc_store: tuple[Path, Path]) -> None:
    experiment, store = hpcc_store
    fitted = planner("fit", "-e", str(experiment), store=store)
    assert fitted.returncode == 0, fitted.stdout + fitted.stderr
    assert "hpl_gflops" in fitted.stdout
    done = planner("recommend", "hpcc", "hpl", "-e", str(experiment), "--json", store=store)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["metric"] == "hpl_gflops" and answer["goal"] == "max"
    top = answer["recommendations"][0]
    assert (top["variant"], top["source"], top["measured"]["runs"]) == ("hpcc-debian-openmpi", "measured", 1)
    assert "/usr/bin/mpirun.openmpi" in top["command"] and top["command"].endswith("/usr/bin/hpcc")


def test_recommend_hpcc_reads_experiments_hpcc_yaml_without_e(hpcc_store: tuple[Path, Path],
                                                              tmp_path: Path) -> None:
    """From a clone: `recommend hpcc hpl` needs no -e where experiments/hpcc.yaml exists."""
    experiment, store = hpcc_store
    (tmp_path / "experiments").mkdir()
    shutil.copy(experiment, tmp_path / "experiments" / "hpcc.yaml")
    done = planner("recommend", "hpcc", "hpl", "--json", store=store, cwd=tmp_path,
                   env={"PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["recommendations"]
    assert rows and all(row["command"] for row in rows)  # the file's variant and workload: a command each


def test_a_regression_against_the_measured_reference_fails_the_gate(hpcc_store: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    _, store = hpcc_store
    assert planner("results", "--compare", str(store), store=store).returncode == 0  # the same runs
    with Store(store) as opened:
        best = max(r.foms["hpl_gflops"] for r in opened.records())
    reference = tmp_path / "reference.yaml"
    reference.write_text(f"references:\n  - {{app: hpcc, workload: hpl, foms: {{hpl_gflops: {best * 10}}}}}\n")
    junit = tmp_path / "junit.xml"
    done = planner("results", "--compare", str(reference), "--junit", str(junit), store=store)
    assert done.returncode == 1, done.stdout + done.stderr
    failures = [case.get("name") for case in ElementTree.parse(junit).getroot().iter("testcase")
                if case.find("failure") is not None]
    assert sorted(failures) == ["hpl_gflops [n=400 nb=80 p=0 q=0 tasks=2]", "hpl_gflops [n=400 nb=80 p=0 q=0]"]
