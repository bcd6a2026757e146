"""`planner recommend`: measured first, predictions with intervals elsewhere, the exact command, never a
point the hard rules or the classifier say cannot run."""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from planner.core import archs
from planner.core.errors import InputError
from planner.edges import modelfiles, training
from planner.edges.store import Store
from planner.learn.columns import Choice, Context, canonical
from tests.conftest import REPO, planner
from tests.learn.conftest import METRIC, best_local, records_from_plan

WORKLOADS = ("lj", "eam", "chain", "rhodo", "reaxff")


def recommend(store: Path, *args: str) -> dict[str, Any]:
    done = planner("recommend", *args, "--store", str(store), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def plan_commands(cluster: str) -> dict[tuple[str, str], str]:
    """(variant, options) -> command, as `planner plan` shows them."""
    done = planner("plan", "--cluster", cluster, "--json")
    assert done.returncode == 0, done.stderr
    out = {}
    for run in json.loads(done.stdout)["runs"]:
        out[(run["workload"], run["variant"], json.dumps(run["options"], sort_keys=True))] = run["command"]
    return out


def test_recommend_ranks_the_measured_best_first_with_the_command_plan_shows(local_store: Path) -> None:
    commands = plan_commands("local")
    for workload in WORKLOADS:
        result = recommend(local_store, "lammps", workload, "--cluster", "local")
        top = result["recommendations"][0]
        assert (top["variant"], top["options"].get("suffix", "none")) == best_local(workload), workload
        assert top["source"] == "measured" and top["measured"]["runs"] == 2
        params = {f"param.{k}": v for k, v in result["params"]["local"].items()}
        key = (workload, top["variant"], json.dumps({**top["options"], **params}, sort_keys=True))
        assert top["command"] == commands[key]
        assert "mpiexec" in top["command"]
        values = [row["measured"]["median"] for row in result["recommendations"]]
        assert values == sorted(values, reverse=True)


def test_text_output_shows_value_command_and_why(local_store: Path) -> None:
    done = planner("recommend", "lammps", "reaxff", "--cluster", "local", "--top", "2", "--store", str(local_store))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("lammps reaxff on local") and "timesteps_per_s, higher is better" in lines[0]
    assert " 1. lammps-2025-mpich  affinity=per-task suffix=omp threads=2" in lines
    assert any(line.strip().startswith("measured 57.79 (n=2, 57.5..58.07)") for line in lines)
    assert any(line.strip().startswith("$ ") and "mpiexec -n 1" in line for line in lines)
    assert any(line.strip().startswith("why: measured median of 2 run(s)") for line in lines)
    assert " 3. " not in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("gromacs", "lj"), "unknown app 'gromacs'; known: lammps"),
    (("lammps", "water"), "unknown workload 'water' of lammps; known: chain, eam, lj, reaxff, rhodo"),
    (("lammps", "lj", "--cluster", "mars"), "unknown cluster 'mars'; known: eks-amd64, eks-arm64, local"),
    (("lammps", "lj", "--metric", "flops"), "no stored run of lammps measured 'flops'; measured: timesteps_per_s"),
])
def test_unknown_names_exit_2_listing_the_known_ones(local_store: Path, args: tuple[str, ...], message: str) -> None:
    done = planner("recommend", *args, "--store", str(local_store))
    assert done.returncode == 2
    assert message in done.stderr


def test_an_empty_store_says_to_sweep_or_import_first(tmp_path: Path) -> None:
    empty = tmp_path / "planner.sqlite"
    Store(empty).close()
    done = planner("recommend", "lammps", "lj", "--store", str(empty))
    assert done.returncode == 2
    assert "no runs stored yet: run `python -m planner sweep` or `python -m planner import FILE.csv` first" in \
        done.stderr


def test_predictions_never_pick_what_cannot_run_and_say_confidence_is_low(tmp_path: Path, synthetic: Any) -> None:
    """A workload never measured on a cluster: the model ranks, and nothing it ranks can fail there."""
    csv_path = tmp_path / "all.csv"
    synthetic.write_csv(csv_path, clusters=8, variants=24, repeats=1, seed=3)
    lines = csv_path.read_text().splitlines(keepends=True)
    held = "c00-haswell"
    kept = [lines[0]] + [line for line in lines[1:] if not line.startswith(f"{held},lammps,reaxff,")]
    (tmp_path / "partial.csv").write_text("".join(kept))
    store = tmp_path / "planner.sqlite"
    assert planner("import", str(tmp_path / "partial.csv"), "--store", str(store)).returncode == 0
    result = recommend(store, "lammps", "reaxff", "--cluster", held, "--top", "100")
    rows = result["recommendations"]
    assert rows and all(row["source"] == "predicted" for row in rows)
    truth = {}  # what the held-out measurements say, never shown to the planner
    for line in lines[1:]:
        fields = line.split(",")
        if fields[0] == held and fields[2] == "reaxff":
            truth[fields[3]] = truth.get(fields[3], set()) | {fields[4]}
    for row in rows:
        attrs = synthetic_variant(synthetic, row["variant"])
        assert archs.can_run("haswell", attrs["io.archspec.cpu.target"]), row
        assert "ok" in truth[row["variant"]], row
        assert row["predicted"]["low"] < row["predicted"]["value"] < row["predicted"]["high"]
        share = row["share_of_best"]
        assert 0 < share["low"] <= share["value"] <= share["high"] <= 1, row
        assert row["command"] is None and row["command_note"].startswith("unavailable")
    # what every candidate here shares (nothing measured on this cluster) is said once, not on each row; a row
    # is in doubt when one ranked below it may beat it, which the last one cannot be
    assert "nothing was measured for this workload on this cluster: the ranking is the model's" in result["notes"]
    assert any(note.startswith("predicted candidates are ranked by ") for note in result["notes"])
    assert all("nothing measured" not in reason for row in rows for reason in row["low_confidence_because"])
    assert not any(reason.startswith("ranking in doubt") for reason in rows[-1]["low_confidence_because"])
    by = {item["by"] for item in result["excluded"]}
    assert "rules" in by


def synthetic_variant(synthetic: Any, name: str) -> dict[str, Any]:
    """The attributes the generator gave a variant (same seed, same draws as `measurements`)."""
    rng = random.Random(3)
    synthetic.make_clusters(8, rng)
    return next(v.attributes() for v in synthetic.make_variants(24, rng) if v.name == name)


def test_eks_recommendations_show_the_flux_command(tmp_path: Path) -> None:
    store = tmp_path / "planner.sqlite"
    with Store(store) as handle:
        handle.add_many(records_from_plan("eks-arm64", value=lambda run: 10.0 * run.options.tasks ** 0.9))
    result = recommend(store, "lammps", "reaxff", "--cluster", "eks-arm64")
    top = result["recommendations"][0]
    assert top["options"] == {"affinity": "per-task", "nodes": 2, "tasks": 128}
    assert top["command"].startswith("flux run -N 2 -n 128 -o cpu-affinity=per-task singularity exec --pwd "
                                     "/opt/lammps/examples/reaxff/HNS ")
    # what a sweep executed, but for the run's own job name and time limit: a recommendation is no run
    planned = plan_commands("eks-arm64")[("reaxff", top["variant"], json.dumps(
        {**top["options"], **{f"param.{k}": v for k, v in result["params"]["eks-arm64"].items()}}, sort_keys=True))]
    assert re.sub(r" --job-name=[0-9a-f]{16} -t 3600s", "", planned) == top["command"] != planned
    assert all("gpu" not in row["variant"] for row in result["recommendations"])  # no GPU on eks-arm64


def test_a_model_from_another_version_is_refused_until_fit_runs_again(local_store: Path) -> None:
    assert planner("fit", "--store", str(local_store)).returncode == 0
    meta_path = local_store.parent / "models" / local_store.name / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["versions"]["scikit-learn"] = "0.24.2"
    meta_path.write_text(json.dumps(meta))
    done = planner("recommend", "lammps", "lj", "--store", str(local_store))
    assert done.returncode == 2
    assert "fitted with scikit-learn 0.24.2" in done.stderr and "run `python -m planner fit` again" in done.stderr
    assert planner("fit", "--store", str(local_store)).returncode == 0
    assert planner("recommend", "lammps", "lj", "--store", str(local_store)).returncode == 0


def test_a_corrupt_model_file_is_refused(local_store: Path) -> None:
    assert planner("fit", "--store", str(local_store)).returncode == 0
    directory = local_store.parent / "models" / local_store.name
    (directory / "models.joblib").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match=r"not a model file this planner can read .* run `python -m planner fit`"):
        training.load_models(directory, modelfiles.load_meta(directory))


def test_recommend_answers_from_the_fitted_table_without_importing_scikit_learn(local_store: Path) -> None:
    """eks-amd64 runs containers and only reaxff has a container input: predicted rows, from the table."""
    assert planner("fit", "--store", str(local_store)).returncode == 0
    code = ("import sys; from planner.cli import main; "
            "code = main(['recommend', 'lammps', 'reaxff', '--cluster', 'eks-amd64', "
            f"'--store', {str(local_store)!r}]); "
            "print('sklearn loaded' if 'sklearn' in sys.modules else 'sklearn not loaded', code)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.stdout.strip().endswith("sklearn not loaded 0"), done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line[:3].strip().rstrip(".").isdigit()]
    assert len(rows) == 5 and rows[0].startswith(" 1. ")
    assert "predicted " in done.stdout and "$ flux run" in done.stdout


def test_recommend_in_a_new_process_reads_the_table_fit_saved(local_store: Path) -> None:
    """`fit` in one process, `recommend` in another: the predictions shown are the saved table's, nothing refits."""
    assert planner("fit", "--store", str(local_store)).returncode == 0
    directory = modelfiles.model_dir(local_store)
    meta = modelfiles.load_meta(directory)
    assert meta is not None
    table = modelfiles.load_table(directory, meta)
    result = recommend(local_store, "lammps", "reaxff", "--cluster", "eks-amd64", "--top", "100")
    after = modelfiles.load_meta(directory)
    assert after is not None and after.stamp == meta.stamp
    assert not any("fitted one now" in note or "predicted now" in note for note in result["notes"]), result["notes"]
    context = Context("eks-amd64", "lammps", "reaxff", canonical(result["params"]["eks-amd64"]))
    rows = table.lookup({context})
    assert len(result["recommendations"]) >= 5
    for row in result["recommendations"]:
        i = rows[(context, Choice("lammps", row["variant"], canonical(row["options"])))]
        assert row["source"] == "predicted"
        assert row["predicted"]["value"] == pytest.approx(math.exp(table.mid[METRIC][i]))
        assert row["p_success"] == round(float(table.p_ok[i]), 3)


def test_a_tiny_imported_store_still_ranks_what_was_measured(tmp_path: Path) -> None:
    """Two successful runs are too few to cross-validate: the measurements rank, nothing crashes."""
    csv_path = tmp_path / "tiny.csv"
    csv_path.write_text("cluster,app,workload,variant,status,metric,value,variant.io.archspec.cpu.target,"
                        "cluster.microarchitecture\n"
                        "a,lammps,lj,v1,failed,,,x86_64,zen3\n"
                        "a,lammps,lj,v2,incompatible,,,aarch64,zen3\n"
                        "a,lammps,lj,v3,ok,timesteps_per_s,5.0,x86_64_v3,zen3\n"
                        "a,lammps,lj,v4,ok,timesteps_per_s,7.0,znver3,zen3\n")
    store = tmp_path / "planner.sqlite"
    assert planner("import", str(csv_path), "--store", str(store)).returncode == 0
    result = recommend(store, "lammps", "lj", "--cluster", "a")
    assert [row["variant"] for row in result["recommendations"]] == ["v4", "v3"]
    assert all(row["low_confidence_because"] == ["a single run"] for row in result["recommendations"])
    assert {(item["variant"], item["by"]) for item in result["excluded"]} == {("v1", "measured"), ("v2", "rules")}


def test_artifacts_fetched_for_the_store_named_by_store_decide_its_variants(local_store: Path) -> None:
    """`variants fetch --store S` keeps artifacts beside S; `fit` and `recommend --store S` read them there (they
    read the default store's before, and ranked amd64 images on an arm64 cluster)."""
    from planner.edges.compspec_cache import cache_path
    from tests.registry.matrix import warm_cache

    warm_cache(cache_path(local_store))
    no_env = {"PLANNER_STORE": ""}
    assert planner("fit", "--store", str(local_store), env=no_env).returncode == 0
    done = planner("recommend", "lammps", "reaxff", "--cluster", "eks-arm64", "--top", "40", "--json",
                   "--store", str(local_store), env=no_env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    ranked = [row["variant"] for row in result["recommendations"]]
    assert ranked and all(name.endswith("-arm64") for name in ranked), ranked
    excluded = {item["variant"]: item["reason"] for item in result["excluded"] if item["by"] == "rules"}
    assert any(name.endswith("-amd64") for name in excluded)


def test_a_predicted_variant_without_metadata_is_flagged_not_trusted(local_store: Path) -> None:
    """Nothing fetched for the container variants: they are still ranked on eks-arm64 (nothing rules them out),
    but each row says why no rule could check it and what to run."""
    no_env = {"PLANNER_STORE": ""}
    assert planner("fit", "--store", str(local_store), env=no_env).returncode == 0
    done = planner("recommend", "lammps", "reaxff", "--cluster", "eks-arm64", "--json", "--store", str(local_store),
                   env=no_env)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["recommendations"]
    assert rows and all(row["confidence"] == "low" for row in rows)
    assert all(any("variants fetch" in reason for reason in row["low_confidence_because"]) for row in rows)
