#!/usr/bin/env python3
"""Synthetic benchmark with a known ground truth: does the model recommend well on clusters it never saw?

The generator invents clusters (archspec microarchitectures from Haswell to Sapphire Rapids, Zen to
Zen 4, Neoverse N1 to V2, A64FX; 1 to 4 nodes; some with GPUs; EFA or TCP networks) and variants
(CPU targets from generic x86_64/aarch64 to exact microarchitectures, spelled the archspec or the GCC
-march way; Open MPI, MPICH or Intel MPI of several versions; Ubuntu or Rocky; three LAMMPS releases;
some GPU builds), and measures every variant x launch option on every cluster for two workloads:

- compatibility is decided by this file's own instruction-set tables (never the planner's
  `archs.can_run`, which would make the benchmark grade the planner against itself): a build runs on
  a host of its family that has every extension the build uses (another family: excluded before
  running; a missing extension: killed by an illegal instruction); GPU builds fail without a GPU;
  `-sf omp` needs the OPENMP package; failures only the data can teach: Open MPI 4.0 across nodes on
  EFA, MPICH 3 with OpenMP threads; and failures no rule can foresee: 3% of (cluster, build) pairs
  crash every time, 1% of runs die at random;
- performance (timesteps/s) depends on attributes, partly through interactions no single feature
  encodes: the host's per-core speed and cores used, the vector width the build can use on that host
  (and a bonus for an exact target), the MPI library and its version on that vendor, MPI x network
  across nodes, OS x LAMMPS release (the newest release on the oldest OS is slow), threads vs ranks
  per architecture and workload, affinity; plus multiplicative lognormal noise per run (`--noise`,
  10% by default) and outliers (5% of runs 1.5-3x slower, as real LAMMPS repeats here spread).

It writes the long-form CSV of DESIGN.md, imports it with `python -m planner import`, runs
`python -m planner evaluate --group-by cluster --json` and prints the model beside the baselines.
Acceptance: the model's excess regret (mean regret - 1) at most 0.7 x the best baseline's, and 0
incompatible picks (exit 1 otherwise).

    python benchmarks/synthetic.py [--clusters 24] [--variants 120] [--noise 0.10] [--seed 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from planner.core import archs  # noqa: E402 - the benchmark runs from a checkout; spellings only

_SSE = {"sse4_2"}
_AVX2 = _SSE | {"avx", "avx2", "fma"}
_AVX512 = _AVX2 | {"avx512"}
#: Instruction-set extensions each target uses / each host has: this benchmark's own ground truth.
ISA = {"x86_64": set(), "x86_64_v2": _SSE, "x86_64_v3": _AVX2, "x86_64_v4": _AVX512, "haswell": _AVX2,
       "broadwell": _AVX2 | {"adx"}, "skylake_avx512": _AVX512 | {"adx"}, "cascadelake": _AVX512 | {"adx", "vnni"},
       "icelake": _AVX512 | {"adx", "vnni", "vbmi2"}, "sapphirerapids": _AVX512 | {"adx", "vnni", "vbmi2", "amx"},
       "zen": _AVX2 | {"adx", "sse4a"}, "zen2": _AVX2 | {"adx", "sse4a"}, "zen3": _AVX2 | {"adx", "sse4a", "vaes"},
       "zen4": _AVX512 | {"adx", "sse4a", "vaes", "vnni", "vbmi2"},
       "aarch64": {"neon"}, "armv8.2a": {"neon", "fp16", "dotprod"}, "neoverse_n1": {"neon", "fp16", "dotprod"},
       "neoverse_v1": {"neon", "fp16", "dotprod", "sve", "bf16"}, "neoverse_v2": {"neon", "fp16", "dotprod", "sve",
                                                                                  "sve2", "bf16"},
       "a64fx": {"neon", "fp16", "sve"}, "thunderx2": {"neon"}}
#: Vector width level of an extension set (what performance depends on).
SIMD = (("avx512", 4), ("avx2", 3), ("avx", 2), ("sse4_2", 1), ("sve", 2), ("neon", 1))
FAMILY = {name: "aarch64" if "neon" in isa else "x86_64" for name, isa in ISA.items()}
#: microarchitecture -> (per-core speed, vendor)
HOSTS = {"haswell": (1.00, "intel"), "broadwell": (1.05, "intel"), "skylake_avx512": (1.20, "intel"),
         "cascadelake": (1.25, "intel"), "icelake": (1.40, "intel"), "sapphirerapids": (1.55, "intel"),
         "zen": (1.00, "amd"), "zen2": (1.20, "amd"), "zen3": (1.35, "amd"), "zen4": (1.55, "amd"),
         "neoverse_n1": (1.00, "arm"), "neoverse_v1": (1.25, "arm"), "neoverse_v2": (1.45, "arm"),
         "a64fx": (0.90, "fujitsu"), "thunderx2": (0.75, "cavium")}
#: CPU targets of builds: (how often a build targets it, the spellings variants use for it)
TARGETS = {"x86_64": (3, ["amd64", "x86_64"]), "x86_64_v2": (2, ["x86-64-v2"]),
           "x86_64_v3": (3, ["x86_64_v3", "x86-64-v3"]), "x86_64_v4": (2, ["x86-64-v4"]), "haswell": (1, ["haswell"]),
           "skylake_avx512": (1, ["skylake-avx512", "skylake_avx512"]), "icelake": (1, ["icelake-client", "icelake"]),
           "zen2": (1, ["znver2"]), "zen3": (1, ["znver3", "zen3"]), "zen4": (1, ["znver4"]),
           "aarch64": (3, ["arm64", "aarch64"]), "armv8.2a": (2, ["armv8.2-a"]),
           "neoverse_n1": (2, ["neoverse-n1", "neoverse_n1"]), "neoverse_v1": (1, ["neoverse-v1"]),
           "neoverse_v2": (1, ["neoverse_v2"]), "a64fx": (1, ["a64fx"])}
MPIS = [("openmpi", "4.0.3"), ("openmpi", "4.1.5"), ("openmpi", "5.0.3"), ("mpich", "3.3.2"), ("mpich", "4.1.2"),
        ("intel-mpi", "2021.10")]
OSES = [("ubuntu", "20.04"), ("ubuntu", "22.04"), ("rocky", "8.9"), ("rocky", "9.3")]
RELEASES = {"20210929": 1.00, "20230802": 1.06, "20240829": 1.10}
WORKLOADS = {"lj": 40.0, "reaxff": 4.0}
#: Share of runs that are outliers, and how much slower they are (uniform in this range).
OUTLIERS, OUTLIER_SLOWDOWN = 0.05, (1.5, 3.0)
#: Share of (cluster, build) pairs that crash every time, and of runs that die at random.
CURSED, RANDOM_DEATH = 0.03, 0.01


@dataclass(frozen=True)
class Cluster:
    name: str
    micro: str
    nodes: int
    cores: int
    gpus: int
    network: str

    def attributes(self) -> dict[str, Any]:
        return {"arch": archs.platform_name(self.micro), "microarchitecture": self.micro, "nodes": self.nodes,
                "cores_per_node": self.cores, "gpus_per_node": self.gpus,
                "instance_type": f"{self.micro.replace('_', '')}.{self.cores}x{self.nodes}", "kind": "eks",
                "network": self.network, "price_per_hour": round(0.02 * self.cores * self.nodes, 2)}


@dataclass(frozen=True)
class Variant:
    name: str
    target: str  # archspec name
    spelling: str  # as the variant's compspec writes it
    mpi: str
    mpi_version: str
    os: str
    os_version: str
    release: str
    gpu: bool
    openmp: bool

    def attributes(self) -> dict[str, Any]:
        vendor = archs.vendor(self.target)
        if vendor == "generic":
            vendor = "ARM" if FAMILY[self.target] == "aarch64" else "GenuineIntel"
        packages = "KSPACE MOLECULE OPT REAXFF" + (" OPENMP" if self.openmp else "") + (" GPU" if self.gpu else "")
        return {"io.archspec.cpu.target": self.spelling, "io.archspec.cpu.vendor": vendor,
                "mpi.implementation": self.mpi, "mpi.version": self.mpi_version, "os.vendor": self.os,
                "os.version": self.os_version, "hardware.gpu.available": "yes" if self.gpu else "no",
                "lammps.version": self.release, "lammps.packages": packages}


def make_clusters(count: int, rng: random.Random) -> list[Cluster]:
    micros = list(HOSTS)
    clusters = []
    for i in range(count):
        micro = micros[i % len(micros)]
        nodes = rng.choice([1, 2, 2, 4])
        cores = rng.choice([32, 48, 64, 96, 128]) if micro not in ("a64fx", "thunderx2") else 48
        gpus = 4 if rng.random() < 0.15 else 0
        clusters.append(Cluster(f"c{i:02d}-{micro.replace('_', '')}", micro, nodes, cores, gpus,
                                rng.choice(["efa", "tcp"])))
    return clusters


def make_variants(count: int, rng: random.Random) -> list[Variant]:
    variants: dict[str, Variant] = {}
    while len(variants) < count:
        target = rng.choices(list(TARGETS), weights=[weight for weight, _ in TARGETS.values()])[0]
        family = FAMILY[target]
        mpi, mpi_version = rng.choice([m for m in MPIS if family == "x86_64" or m[0] != "intel-mpi"])
        os_name, os_version = rng.choice(OSES)
        release = rng.choice(list(RELEASES))
        gpu = rng.random() < 0.07
        openmp = rng.random() < 0.8
        name = (f"{mpi}-{mpi_version}-{os_name}-{os_version}-{target.replace('_', '')}-{release}"
                f"{'-gpu' if gpu else ''}{'-omp' if openmp else ''}")
        variants.setdefault(name, Variant(name, target, rng.choice(TARGETS[target][1]), mpi, mpi_version, os_name,
                                          os_version, release, gpu, openmp))
    return list(variants.values())


def launch_options(cluster: Cluster) -> list[dict[str, Any]]:
    all_cores = {"nodes": cluster.nodes, "tasks": cluster.nodes * cluster.cores, "affinity": "per-task"}
    options = [all_cores,
               {"nodes": cluster.nodes, "tasks": cluster.nodes * cluster.cores // 2, "threads": 2, "suffix": "omp",
                "affinity": "per-task"}]
    if cluster.nodes > 1:
        options.append({"nodes": 1, "tasks": cluster.cores})
    return options


def _simd(name: str) -> int:
    return next((level for flag, level in SIMD if flag in ISA[name]), 0)


def _cursed(cluster: Cluster, variant: Variant, seed: int) -> bool:
    """A pair that crashes every time for a reason no attribute shows (a miscompiled build on that host)."""
    return random.Random(f"{seed}:{cluster.name}:{variant.name}").random() < CURSED


def outcome(cluster: Cluster, variant: Variant, option: dict[str, Any], workload: str, rng: random.Random,
            noise: float, seed: int = 0) -> tuple[str, str | None, float | None, float | None]:
    """(status, reason, timesteps/s, the ground truth's timesteps/s) of one run: the measurement is the
    ground truth times noise (and, for outliers, a slowdown)."""
    if FAMILY[variant.target] != FAMILY[cluster.micro]:
        return "incompatible", "incompatible", None, None
    if not ISA[variant.target] <= ISA[cluster.micro]:
        return "failed", "killed", None, None  # illegal instruction
    if _cursed(cluster, variant, seed):
        return "failed", "killed", None, None
    if variant.gpu and not cluster.gpus:
        return "failed", "missing-gpu", None, None
    threads = option.get("threads", 1)
    if option.get("suffix") == "omp" and not variant.openmp:
        return "incompatible", "incompatible", None, None
    nodes = option.get("nodes", 1)
    if variant.mpi == "openmpi" and variant.mpi_version.startswith("4.0") and nodes > 1 and cluster.network == "efa":
        return "failed", "mpi", None, None
    if variant.mpi == "mpich" and variant.mpi_version.startswith("3") and threads > 1:
        return "failed", "mpi", None, None
    if rng.random() < RANDOM_DEATH:
        return "failed", "killed", None, None
    speed, vendor = HOSTS[cluster.micro]
    cores = option["tasks"] * threads
    perf = WORKLOADS[workload] * speed * cores ** 0.92 * 0.93 ** (nodes - 1)
    level = min(_simd(variant.target), _simd(cluster.micro))
    if FAMILY[cluster.micro] == "aarch64":
        perf *= {0: 1.0, 1: 1.0, 2: 1.25}[level] * (1.05 if workload == "reaxff" and level == 2 else 1.0)
    else:
        perf *= {0: 1.0, 1: 1.06, 2: 1.12, 3: 1.22, 4: 1.32}[level] * (1 + 0.03 * level * (workload == "reaxff"))
    if variant.target == cluster.micro:
        perf *= 1.05
    perf *= _mpi_factor(variant, vendor, nodes, cluster.network)
    perf *= RELEASES[variant.release]
    if threads > 1:
        perf *= (1.04 if FAMILY[cluster.micro] == "aarch64" else 0.92) * (1.08 if workload == "reaxff" else 1.0)
    if option.get("affinity") == "per-task":
        perf *= 1.04
    if variant.gpu:
        perf *= 2.5
    if variant.os == "rocky":
        perf *= 1.01
    if variant.release == "20240829" and variant.os_version in ("20.04", "8.9"):
        perf *= 0.85  # the newest release on the oldest OS: an old compiler and libm under it
    measured = perf * math.exp(rng.gauss(0.0, noise))
    if rng.random() < OUTLIERS:
        measured /= rng.uniform(*OUTLIER_SLOWDOWN)
    return "ok", None, measured, perf


def _mpi_factor(variant: Variant, vendor: str, nodes: int, network: str) -> float:
    factor = 1.0
    if variant.mpi == "intel-mpi":
        factor *= 1.08 if vendor == "intel" else 0.93
    elif variant.mpi == "openmpi":
        factor *= {"4.0": 1.0, "4.1": 1.03, "5.0": 1.05}[variant.mpi_version[:3]]
    else:
        factor *= 1.02 if variant.mpi_version.startswith("4") else 0.97
    if nodes > 1 and network == "tcp":
        factor *= 0.9 if variant.mpi == "openmpi" else 0.95
    if nodes > 1 and network == "efa" and variant.mpi == "mpich":
        factor *= 0.8  # MPICH without libfabric's EFA provider falls back to TCP across nodes
    return factor


def measurements(clusters: int, variants: int, repeats: int, seed: int, noise: float) -> Iterator[dict[str, Any]]:
    """Every run of the matrix as one dict: names, attributes, options, status, reason, timesteps/s."""
    rng = random.Random(seed)
    cluster_list, variant_list = make_clusters(clusters, rng), make_variants(variants, rng)
    for cluster in cluster_list:
        for variant in variant_list:
            # a sweep tries few builds of the other architecture: enough to show they are incompatible
            if FAMILY[variant.target] != FAMILY[cluster.micro] and rng.random() > 0.2:
                continue
            for option in launch_options(cluster):
                for workload in WORKLOADS:
                    for repeat in range(repeats):
                        status, reason, value, truth = outcome(cluster, variant, option, workload, rng, noise, seed)
                        yield {"cluster": cluster, "variant": variant, "option": option, "workload": workload,
                               "repeat": repeat, "status": status, "reason": reason, "value": value,
                               "truth": truth}


METRIC = "timesteps_per_s"


def write_csv(path: Path, clusters: int, variants: int, repeats: int, seed: int, noise: float = 0.10, *,
              truth: bool = False) -> int:
    """The long-form CSV of DESIGN.md; returns the number of runs. With `truth`, the same runs (statuses
    included) with the ground truth's values instead of the measured ones."""
    variant_keys = list(make_variants(1, random.Random(0))[0].attributes())
    cluster_keys = list(make_clusters(1, random.Random(0))[0].attributes())
    option_keys = ["nodes", "tasks", "threads", "affinity", "suffix", "x"]
    header = ["cluster", "app", "workload", "variant", "status", "reason", "repeat", "metric", "value",
              *(f"variant.{k}" for k in variant_keys), *(f"cluster.{k}" for k in cluster_keys),
              *(f"option.{k}" for k in option_keys)]
    runs = 0
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for m in measurements(clusters, variants, repeats, seed, noise):
            runs += 1
            cluster, variant, option = m["cluster"], m["variant"], m["option"]
            attrs = [*variant.attributes().values(), *cluster.attributes().values(),
                     *(option.get(k, "") for k in option_keys[:-1]), 1]
            common = [cluster.name, "lammps", m["workload"], variant.name, m["status"], m["reason"] or "",
                      m["repeat"]]
            if m["status"] != "ok":
                writer.writerow([*common, "", "", *attrs])
                continue
            steps_per_s = m["truth" if truth else "value"]
            atoms = 32000 if m["workload"] == "lj" else 2400
            for metric, value in (("timesteps_per_s", steps_per_s), ("matom_steps_per_s", steps_per_s * atoms / 1e6),
                                  ("loop_time", 100 / steps_per_s)):
                writer.writerow([*common, metric, f"{value:.6g}", *attrs])
    return runs


def planner(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "planner", *args], cwd=REPO, capture_output=True, text=True,
                          check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=24, help="clusters (default: 24)")
    parser.add_argument("--variants", type=int, default=120, help="variants (default: 120)")
    parser.add_argument("--repeats", type=int, default=2, help="repeats per point (default: 2)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--noise", type=float, default=0.10, help="lognormal sigma of run-to-run noise (default: 0.10)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the CSV and the store in this directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="compat-lab-synthetic-") as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        csv_path, store = where / "synthetic.csv", where / "synthetic.sqlite"
        store.unlink(missing_ok=True)
        runs = write_csv(csv_path, args.clusters, args.variants, args.repeats, args.seed, args.noise)
        print(f"generated {runs} runs: {args.clusters} clusters x {args.variants} variants x 2-3 launch options x "
              f"{len(WORKLOADS)} workloads x {args.repeats} repeats -> {csv_path}")
        result = evaluate(csv_path, store)
    if result is None:
        return 1
    print(f"\nleave-one-cluster-out over {result['groups']} clusters ({result['picks']} picks, {result['metric']}):")
    print(f"{'':18}{'top1':>8}{'mean regret':>14}{'max regret':>12}{'incompatible':>14}")
    for name, row in [("model", result), *result["baselines"].items()]:
        print(f"{name:18}{row['top1']:>8.3f}{row['mean_regret']:>14.3f}{row['max_regret']:>12.3f}"
              f"{row['incompatible_picks']:>14}")
    ratio = excess_ratio(result)
    passed = ratio <= 0.7 and result["incompatible_picks"] == 0
    print(f"\nmodel excess regret / best baseline's: {ratio:.2f}")
    print(f"acceptance (<= 0.7, 0 incompatible picks): {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


def evaluate(csv_path: Path, store: Path, quiet: bool = False) -> dict[str, Any] | None:
    """Import, fit and evaluate leave-one-cluster-out through the planner's CLI; None when a step failed."""
    done = None
    for step in (["import", str(csv_path)], ["fit"], ["evaluate", "--group-by", "cluster", "--json"]):
        started = time.perf_counter()
        done = planner(*step, "--store", str(store))
        if done.returncode != 0:
            print(f"`planner {' '.join(step)}` failed ({done.returncode}):\n{done.stdout}{done.stderr}")
            return None
        if not quiet:
            print(f"planner {step[0]}: {time.perf_counter() - started:.1f} s")
            if step[0] != "evaluate":
                print("  " + done.stdout.strip().replace("\n", "\n  "))
    assert done is not None
    return json.loads(done.stdout)


def evaluate_with_truth(where: Path, clusters: int, variants: int, repeats: int, seed: int,
                        noise: float) -> dict[str, Any]:
    """`evaluate --group-by cluster` on a generated store, its picks scored both against the measured medians
    (as `evaluate` prints them) and against the ground truth (under "truth": the noise of the measured medians,
    shared by every pick, left out). Runs in this process: the ground truth is not something a store holds."""
    from planner.core.metrics import resolve_metric
    from planner.edges import column_reader
    from planner.edges.store import Store
    from planner.learn import evaluate as evaluation
    from planner.learn.catalog import Catalog

    read = []
    for truth in (False, True):
        csv_path = where / f"synthetic-{noise}-{seed}{'-truth' if truth else ''}.csv"
        store = csv_path.with_suffix(".sqlite")
        store.unlink(missing_ok=True)
        write_csv(csv_path, clusters, variants, repeats, seed, noise, truth=truth)
        done = planner("import", str(csv_path), "--store", str(store))
        if done.returncode != 0:
            raise SystemExit(f"`planner import {csv_path}` failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        with Store(store, create=False) as handle:
            read.append(column_reader.read(handle.db, [METRIC]))
    measured, truth_runs = read
    return evaluation.evaluate(measured, Catalog(), "cluster", resolve_metric(METRIC, None, [METRIC]),
                               truth=truth_runs).as_dict()


def excess_ratio(result: dict[str, Any]) -> float:
    """(model regret - 1) / (best baseline regret - 1): below 1 the model beats every simple rule."""
    best = min(row["mean_regret"] for row in result["baselines"].values())
    return (result["mean_regret"] - 1) / max(best - 1, 1e-9)


if __name__ == "__main__":
    sys.exit(main())
