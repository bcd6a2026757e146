"""`recommend`'s saved answers: `fit` saves them, the quick path prints them only while nothing they were
computed from changed, and what it prints is exactly what the full computation prints."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from planner.cli import main
from planner.edges import answers
from planner.edges.store import Store
from tests.conftest import REPO, planner
from tests.learn.conftest import record

EXPERIMENT = REPO / "experiments" / "lammps.yaml"

#: Runs `recommend` in a fresh interpreter and says which heavy libraries it had to load.
_LOADED = """
import sys
from planner.cli import main
code = main(sys.argv[1:])
print(sorted(m for m in ("numpy", "pydantic", "rich", "sklearn") if m in sys.modules), file=sys.stderr)
raise SystemExit(code)
"""


def recommend(store: Path, *args: str, experiment: Path = EXPERIMENT) -> tuple[str, list[str]]:
    """What `recommend` printed, and the heavy libraries the process loaded to answer."""
    done = subprocess.run([sys.executable, "-c", _LOADED, "recommend", *args, "--store", str(store),
                           "-e", str(experiment)], cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1].replace("'", '"'))


def answers_dir(store: Path) -> Path:
    return answers.model_dir(store) / answers.ANSWERS


@pytest.fixture
def fitted(local_store: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The local store fitted with a private copy of the experiment; returns (store, experiment)."""
    experiment = tmp_path / "lammps.yaml"
    shutil.copy(EXPERIMENT, experiment)
    done = planner("fit", "--store", str(local_store), "-e", str(experiment))
    assert done.returncode == 0, done.stderr
    assert "recommend answers" in done.stdout
    return local_store, experiment


ASKED = [("lammps", "reaxff"), ("lammps", "lj", "--cluster", "local"), ("lammps", "reaxff", "--json"),
         ("lammps", "lj", "--cluster", "local", "--json")]


def test_fit_saves_the_first_answers_and_they_are_what_the_full_computation_prints(
        fitted: tuple[Path, Path]) -> None:
    store, experiment = fitted
    assert len(list(answers_dir(store).glob("*.json"))) >= 4
    quick = [recommend(store, *asked, experiment=experiment) for asked in ASKED]
    assert all(loaded == [] for _, loaded in quick), [loaded for _, loaded in quick]  # nothing heavy loaded
    full = []
    for asked in ASKED:
        shutil.rmtree(answers_dir(store), ignore_errors=True)
        full.append(recommend(store, *asked, experiment=experiment))
    assert all("numpy" in loaded for _, loaded in full)  # computed
    assert [text for text, _ in quick] == [text for text, _ in full]
    assert json.loads(quick[2][0])["recommendations"]
    # the full path saved what it computed: the next identical call is quick again
    again, loaded = recommend(store, *ASKED[1], experiment=experiment)
    assert loaded == [] and again == full[1][0]


def test_a_request_fit_did_not_save_is_computed_once_then_answered_quickly(fitted: tuple[Path, Path]) -> None:
    store, experiment = fitted
    first, loaded = recommend(store, "lammps", "lj", "--top", "2", experiment=experiment)
    assert "numpy" in loaded
    second, loaded = recommend(store, "lammps", "lj", "--top", "2", experiment=experiment)
    assert loaded == [] and second == first
    assert " 3. " not in first  # --top 2 of its own, not the default's 5 rows
    # with workload parameters too
    first, loaded = recommend(store, "lammps", "reaxff", "--param", "x=2", "--cluster", "local", experiment=experiment)
    assert "numpy" in loaded and "x=2" in first.splitlines()[0]
    second, loaded = recommend(store, "lammps", "reaxff", "--param", "x=2", "--cluster", "local",
                               experiment=experiment)
    assert loaded == [] and second == first


def test_a_new_run_in_the_store_is_never_answered_from_a_saved_answer(fitted: tuple[Path, Path]) -> None:
    store, experiment = fitted
    before, _ = recommend(store, "lammps", "lj", "--cluster", "local", "--json", experiment=experiment)
    best = json.loads(before)["recommendations"][0]
    # a much faster run of the second-ranked choice appears (a sweep ran since the fit)
    second = json.loads(before)["recommendations"][1]
    with Store(store) as db:
        stored = next(r for r in db.records(app="lammps", workload="lj") if r.variant == second["variant"] and
                      all(r.options.get(k) == v for k, v in second["options"].items()) and
                      set(second["options"]) >= {k for k in r.options if k in ("tasks", "threads", "suffix")})
        db.add_many([dataclasses.replace(stored, id=f"{stored.id}-again-{repeat}", repeat=repeat,
                                         foms={"timesteps_per_s": best["measured"]["median"] * 10})
                     for repeat in (7, 8, 9)])
    after, loaded = recommend(store, "lammps", "lj", "--cluster", "local", "--json", experiment=experiment)
    assert "numpy" in loaded  # computed again
    top = json.loads(after)["recommendations"][0]
    assert (top["variant"], top["options"]) == (second["variant"], second["options"])
    assert "model older than the store" in after or top["source"] == "measured"


def test_an_edited_experiment_or_another_fit_is_never_answered_from_a_saved_answer(
        fitted: tuple[Path, Path]) -> None:
    store, experiment = fitted
    _, loaded = recommend(store, "lammps", "reaxff", experiment=experiment)
    assert loaded == []
    experiment.write_text(experiment.read_text() + "\n# edited\n")
    _, loaded = recommend(store, "lammps", "reaxff", experiment=experiment)
    assert "numpy" in loaded
    _, loaded = recommend(store, "lammps", "reaxff", experiment=experiment)
    assert loaded == []  # saved again for the edited file
    # another fit, and the answers of the one before put back where the new ones are
    old = {path.name: path.read_text() for path in answers_dir(store).glob("*.json")}
    assert planner("fit", "--store", str(store), "-e", str(experiment)).returncode == 0
    for name, text in old.items():
        (answers_dir(store) / name).write_text(text)
    _, loaded = recommend(store, "lammps", "reaxff", experiment=experiment)
    assert "numpy" in loaded


def test_a_damaged_or_misfiled_answer_is_computed_again(fitted: tuple[Path, Path]) -> None:
    store, experiment = fitted
    lj, _ = recommend(store, "lammps", "lj", "--cluster", "local", experiment=experiment)
    reaxff, _ = recommend(store, "lammps", "reaxff", "--cluster", "local", experiment=experiment)
    files = {path: path.read_text() for path in answers_dir(store).glob("*.json")}
    lj_file = next(path for path, text in files.items() if json.loads(text)["output"]["text"] == lj.rstrip("\n"))
    reaxff_file = next(path for path, text in files.items()
                       if json.loads(text)["output"]["text"] == reaxff.rstrip("\n"))
    reaxff_file.write_text(files[lj_file])  # lj's answer where reaxff's belongs
    again, loaded = recommend(store, "lammps", "reaxff", "--cluster", "local", experiment=experiment)
    assert "numpy" in loaded and again == reaxff
    lj_file.write_text(files[lj_file][:40])  # cut short
    again, loaded = recommend(store, "lammps", "lj", "--cluster", "local", experiment=experiment)
    assert "numpy" in loaded and again == lj


def test_bad_input_is_still_refused_by_the_full_command(fitted: tuple[Path, Path]) -> None:
    store, experiment = fitted
    done = planner("recommend", "lammps", "nosuch", "--store", str(store), "-e", str(experiment))
    assert done.returncode == 2 and "unknown workload 'nosuch'" in done.stderr
    done = planner("recommend", "lammps", "lj", "--top", "0", "--store", str(store), "-e", str(experiment))
    assert done.returncode == 2 and "--top" in done.stderr
    done = planner("recommend", "--help")
    assert done.returncode == 0 and "saved with the model" in done.stdout


def test_the_fingerprint_changes_when_the_last_run_is_retried(tmp_path: Path) -> None:
    """A retried last run is deleted and inserted again: it reuses its rowid (SQLite takes the largest plus
    one) and the counts stay the same, yet the store changed."""
    failed = record(cluster="local", workload="lj", variant="v", options={"tasks": 1}, status="failed",
                    reason="mpi")
    with Store(tmp_path / "s.sqlite") as store:
        store.add(dataclasses.replace(failed, finished=100.0))
        before = store.fingerprint()
        store.add(dataclasses.replace(failed, finished=200.0, reason="timeout"), replace=True)
        assert store.count() == 1
        assert store.fingerprint() != before


def test_an_experiment_edited_while_fit_runs_leaves_no_answer_saved(local_store: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """fit read the experiment before fitting; an answer keyed by the edited file would not be what it says."""
    from planner.edges import training

    experiment = tmp_path / "lammps.yaml"
    shutil.copy(EXPERIMENT, experiment)
    train = training.train

    def edited_meanwhile(*args: object, **kwargs: object) -> object:
        fitted = train(*args, **kwargs)  # type: ignore[arg-type]
        experiment.write_text(experiment.read_text() + "\n# edited during the fit\n")
        return fitted

    monkeypatch.setattr(training, "train", edited_meanwhile)
    assert main(["fit", "--store", str(local_store), "-e", str(experiment)]) == 0
    assert not list(answers_dir(local_store).glob("*.json"))
    _, loaded = recommend(local_store, "lammps", "reaxff", experiment=experiment)
    assert "numpy" in loaded
