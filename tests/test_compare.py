"""`results --compare REF` (issue 20): figures that moved beyond a tolerance against declared values or an
earlier store, each judged by its goal, with an exit code and JUnit / JSON reports a CI can gate on. The
stores are real SQLite stores filled by `import`, as a user brings results from elsewhere."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from planner.cli import main

HEADER = "cluster,app,workload,variant,status,metric,value,option.tasks,option.nb\n"


def _store(tmp_path: Path, name: str, rows: list[tuple[int, int, str, float]]) -> Path:
    """A store of hpcc runs: (tasks, nb, metric, value) rows, three repeats each (the median is the value)."""
    csv = tmp_path / f"{name}.csv"
    lines = [f"local,hpcc,hpl,hpcc-debian-openmpi,ok,{metric},{value * factor},{tasks},{nb}\n"
             for tasks, nb, metric, value in rows for factor in (0.99, 1.0, 1.01)]
    csv.write_text(HEADER + "".join(lines))
    store = tmp_path / f"{name}.sqlite"
    assert main(["import", str(csv), "--store", str(store)]) == 0
    return store


CURRENT = [(1, 40, "hpl_gflops", 1.0), (2, 40, "hpl_gflops", 1.8), (1, 40, "hpl_time", 2.0),
           (1, 40, "ring_latency_us", 0.5)]


@pytest.fixture
def current(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    store = _store(tmp_path, "current", CURRENT)
    capsys.readouterr()
    return store


def _reference(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reference.yaml"
    path.write_text(text)
    return path


def test_no_regression_exits_0_and_the_junit_report_passes(current: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    ref = _reference(tmp_path, """
references:
  - {app: hpcc, workload: hpl, options: {tasks: 2, nb: 40}, foms: {hpl_gflops: 1.75}}
  - {app: hpcc, workload: hpl, options: {tasks: 1}, foms: {hpl_time: 2.05, ring_latency_us: 0.6}}
""")
    junit = tmp_path / "report.xml"
    assert main(["results", "--compare", str(ref), "--junit", str(junit), "--store", str(current)]) == 0
    suite = ElementTree.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "0", "0")
    out = " ".join(capsys.readouterr().out.split())
    assert "0 regression(s) in 3 figures" in out
    assert "improved" in out  # ring latency 0.5 us against 0.6: 17% less, and less is better


def test_an_injected_regression_exits_1_and_the_junit_report_names_the_figure(
        current: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 1.8 GFLOP/s against a reference of 2.0 (10% less, beyond 5%); hpl_time 2.0 s against 1.8 (11% more)
    ref = _reference(tmp_path, """
tolerance: 5%
references:
  - {app: hpcc, workload: hpl, cluster: local, variant: hpcc-debian-openmpi, options: {tasks: 2, nb: 40},
     foms: {hpl_gflops: 2.0}}
  - {app: hpcc, workload: hpl, options: {tasks: 1, nb: 40}, foms: {hpl_time: 1.8, hpl_gflops: 1.02}}
""")
    junit = tmp_path / "report.xml"
    assert main(["results", "--compare", str(ref), "--junit", str(junit), "--json", "--store", str(current)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["regressions"] == 2
    failed = {(c["metric"], c["options"]) for c in report["checks"] if c["status"] == "regression"}
    assert failed == {("hpl_gflops", "nb=40 tasks=2"), ("hpl_time", "nb=40")}  # tasks=1: the default
    suite = ElementTree.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("3", "2")
    failures = {case.get("name"): case.find("failure").get("message")  # type: ignore[union-attr]
                for case in suite.iter("testcase") if case.find("failure") is not None}
    assert failures == {
        "hpl_gflops [nb=40 tasks=2]": "hpl_gflops 1.8 is 10.0% below the reference 2 (tolerance 5%, goal max)",
        "hpl_time [nb=40]": "hpl_time 2 is 11.1% above the reference 1.8 (tolerance 5%, goal min)"}
    assert {case.get("classname") for case in suite.iter("testcase")} == {"hpcc.hpl.local.hpcc-debian-openmpi"}
    # a wider tolerance on the command line lets both through
    assert main(["results", "--compare", str(ref), "--tolerance", "12%", "--store", str(current)]) == 0


def test_an_earlier_store_is_a_reference_of_the_same_points(current: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    earlier = _store(tmp_path, "earlier", [(1, 40, "hpl_gflops", 1.2), (2, 40, "hpl_gflops", 1.8)])
    capsys.readouterr()
    assert main(["results", "--compare", str(earlier), "--json", "--store", str(current)]) == 1
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert [(c["options"], c["status"]) for c in sorted(checks, key=lambda c: c["options"])] == [
        ("nb=40", "regression"), ("nb=40 tasks=2", "ok")]
    assert main(["results", "--compare", str(current), "--store", str(current)]) == 0  # itself: no change


def test_a_reference_point_nothing_measured_is_skipped_not_passed(current: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    ref = _reference(tmp_path, "references:\n  - {app: hpcc, workload: hpl, options: {tasks: 4}, "
                               "foms: {hpl_gflops: 3}}\n")
    junit = tmp_path / "report.xml"
    assert main(["results", "--compare", str(ref), "--junit", str(junit), "--store", str(current)]) == 0
    suite = ElementTree.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("skipped")) == ("1", "1")


@pytest.mark.parametrize(("text", "args", "message"), [
    ("references:\n  - {app: hpcc, workload: hpl, foms: {hpl_gflops: fast}}\n", [],
     r"reference\.yaml:2: references\[0\]\.foms\.hpl_gflops\.value: Input should be a valid number"),
    ("references:\n  - {app: hpcc, workload: hpl, colour: red, foms: {hpl_gflops: 1}}\n", [],
     r"reference\.yaml:2: references\[0\]\.colour: unknown field; a point takes app, workload"),
    ("tolerance: lots\nreferences:\n  - {app: hpcc, workload: hpl, foms: {hpl_gflops: 1}}\n", [],
     r"reference\.yaml:1: tolerance: tolerance 'lots' is not a percentage such as 5% or a fraction such as 0\.05"),
    ("references: [\n", [], r"reference\.yaml:2: not valid YAML"),
    ("references:\n  - {app: hpcc, workload: hpl, foms: {hpl_gflops: 1}}\n", ["--tolerance=-3%"],
     r"--tolerance: tolerance '-3%' is not a percentage"),
])
def test_a_bad_reference_is_one_line_and_exit_2(current: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                text: str, args: list[str], message: str) -> None:
    import re

    ref = _reference(tmp_path, text)
    assert main(["results", "--compare", str(ref), *args, "--store", str(current)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err), err
