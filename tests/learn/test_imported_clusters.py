"""Imported studies across clusters: builds for one machine stay on it, and the cheapest cluster and build.

- A `native` (or `host`) build in imported rows is the binary built on the machine it was measured on:
  `recommend` never offers it on another cluster, and says why it is left out there.
- `recommend APP WORKLOAD --across clusters --per-dollar` ranks (cluster, variant, options) by work per
  dollar with each cluster's price per hour: an imported `cluster.price_per_hour`, else the shipped EC2
  list price of a cluster named after its instance type, else the experiment's `price_per_hour`; measured
  and predicted rows alike, each labelled; clusters without a price are left out and named.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from planner.edges import prices
from tests.conftest import planner

#: imported clusters: name -> (arch, microarchitecture, price_per_hour column or "", speed factor)
CLUSTERS = {"m6i.12xlarge": ("x86_64", "icelake", "", 1.0),  # an EC2 type: the shipped list price
            "c6a.16xlarge": ("x86_64", "zen3", "", 1.3),
            "lab-icelake": ("x86_64", "icelake", "0.5", 0.9),  # an on-premises cluster with its own price
            "lab-nocost": ("x86_64", "zen3", "", 1.1)}  # no price anywhere: left out of --per-dollar
#: builds: name -> (target, speed factor); `native-O3` is measured on two clusters only
BUILDS = {"native-O3": ("native", 1.25), "x86-64-v3-O3": ("x86-64-v3", 1.1), "x86-64-v2-O2": ("x86-64-v2", 1.0),
          "icelake-server-O3": ("icelake-server", 1.2), "znver3-O3": ("znver3", 1.2), "generic-O2": ("generic", 0.8)}
NATIVE_ON = {"m6i.12xlarge", "c6a.16xlarge"}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("imported")
    rows = [["cluster", "app", "workload", "variant", "status", "metric", "value", "variant.io.archspec.cpu.target",
             "cluster.arch", "cluster.microarchitecture", "cluster.price_per_hour"]]
    for cluster, (arch, micro, price, speed) in CLUSTERS.items():
        for build, (target, factor) in BUILDS.items():
            if build == "native-O3" and cluster not in NATIVE_ON:
                continue
            runs_here = (target == "icelake-server" and micro != "icelake") or (target == "znver3" and micro != "zen3")
            for repeat in range(2):
                if runs_here:
                    rows.append([cluster, "hpcg", "default", build, "incompatible", "fom", "", target, arch, micro,
                                 price])
                else:
                    value = 10.0 * speed * factor * (1 + 0.01 * repeat)
                    rows.append([cluster, "hpcg", "default", build, "ok", "fom", f"{value:.4f}", target, arch, micro,
                                 price])
    path = where / "study.csv"
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    store = where / "planner.sqlite"
    done = planner("import", str(path), "--store", str(store))
    assert done.returncode == 0, done.stderr
    done = planner("fit", "--metric", "fom", "--store", str(store))
    assert done.returncode == 0, done.stderr
    return store


def _recommend(store: Path, *args: str) -> dict[str, Any]:
    done = planner("recommend", "hpcg", "default", "--metric", "fom", "--top", "50", "--json", "--store", str(store),
                   *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_an_imported_native_build_is_recommended_only_where_it_was_built(imported: Path) -> None:
    # on a cluster the experiment declares and nothing was measured on, every stored build is a candidate
    elsewhere = _recommend(imported, "--cluster", "eks-amd64")
    assert elsewhere["recommendations"], elsewhere["excluded"]
    assert "native-O3" not in {row["variant"] for row in elsewhere["recommendations"]}
    left_out = [row for row in elsewhere["excluded"] if row["variant"] == "native-O3"]
    assert left_out and all(row["by"] == "rules" for row in left_out)
    assert left_out[0]["reason"] == ("a native build built on c6a.16xlarge, m6i.12xlarge: it runs there, it is not "
                                     "known to run on eks-amd64")
    # where it was built and measured, it is the best build, measured first-hand
    home = _recommend(imported, "--cluster", "c6a.16xlarge")
    assert home["recommendations"][0]["variant"] == "native-O3"
    assert home["recommendations"][0]["source"] == "measured"


def test_recommend_per_dollar_ranks_clusters_and_builds_by_work_per_dollar(imported: Path) -> None:
    result = _recommend(imported, "--across", "clusters", "--per-dollar")
    rows = result["recommendations"]
    clusters = {row["cluster"] for row in rows}
    # every x86 cluster with a price: the imported ones measured, the experiment's eks-amd64 predicted (no
    # imported build runs on eks-arm64's aarch64)
    assert clusters == {"m6i.12xlarge", "c6a.16xlarge", "lab-icelake", "eks-amd64"}
    assert any("no price per hour known: lab-nocost " in note for note in result["notes"])
    assert {row["source"] for row in rows} == {"measured", "predicted"}
    assert all(row["source"] == "measured" for row in rows if row["cluster"] in CLUSTERS)
    per_dollar = [row["per_dollar"]["work_per_dollar"] for row in rows]
    assert per_dollar == sorted(per_dollar, reverse=True)
    listed = prices.listed()
    for row in rows:
        cost = row["per_dollar"]
        value = row["measured"]["median"] if row["source"] == "measured" else row["predicted"]["value"]
        assert cost["work_per_dollar"] == pytest.approx(value * 3600 / cost["price_per_hour"], rel=1e-4)
        expected = {"m6i.12xlarge": listed["m6i.12xlarge"], "c6a.16xlarge": listed["c6a.16xlarge"],
                    "lab-icelake": (0.5, "cluster.price_per_hour"),
                    "eks-amd64": (2.88, "cluster.price_per_hour")}[row["cluster"]]
        assert (cost["price_per_hour"], cost["price_source"]) == expected
        assert cost["run_seconds"] is None and cost["run_cost"] is None  # imported rows carry no run time
    # the cheap on-premises cluster buys the most work per dollar: 9 x 1.2 x 3600 / 0.5
    assert rows[0]["cluster"] == "lab-icelake" and rows[0]["variant"] == "icelake-server-O3"
    assert math.isclose(rows[0]["per_dollar"]["work_per_dollar"], 10 * 0.9 * 1.2 * 1.005 * 3600 / 0.5, rel_tol=1e-3)
    assert listed["m6i.12xlarge"][1].startswith("EC2 On-Demand list price, us-east-1, ")


def test_per_dollar_refuses_a_cluster_with_across(imported: Path) -> None:
    done = planner("recommend", "hpcg", "default", "--metric", "fom", "--across", "clusters", "--cluster",
                   "m6i.12xlarge", "--store", str(imported))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--across" in done.stderr
