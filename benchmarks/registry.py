#!/usr/bin/env python3
"""`variants fetch` of the 20 lammps-matrix artifacts from a real local registry (target < 2 s).

Starts docker-registry on 127.0.0.1, seeds it as lammps-matrix publishes (18 images, 20 `<tag>-compspec`
artifacts; with --artifacts DIR, the JSON files found there, named `ghcr.io-rse-ops-lammps-matrix-<tag>-compspec.json`,
else artifacts generated from tests/registry/data), then times `python -m planner variants fetch` as a user
runs it: cold (empty cache), warm (every digest cached: tags are still resolved), and the in-process fetch
alone (without the interpreter's start-up). Prints wall and CPU seconds (on a shared, loaded machine the
wall time is mostly waiting for a core) and their ratio to the 2 s target.

    python benchmarks/registry.py [--artifacts DIR] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from planner.core.compspec import ImageRef  # noqa: E402
from planner.core.experiment import load_experiment  # noqa: E402
from planner.edges import registry  # noqa: E402
from planner.edges.compspec_cache import ArtifactCache  # noqa: E402
from tests.registry.conftest import push_image, push_like_lammps_matrix, start_registry  # noqa: E402
from tests.registry.matrix import ALIASES, MATRIX, artifact_of  # noqa: E402
from tests.registry.matrix import REPO as MATRIX_REPO  # noqa: E402

TARGET = 2.0


def seed(host: str, artifacts: Path | None) -> list[str]:
    """Push the images and their artifacts; returns the tags."""
    client = registry.Client(host)
    tags = {image.split(":")[1]: image for image in MATRIX}
    tags.update({alias: f"ghcr.io/{MATRIX_REPO}:{target}" for alias, target in ALIASES.items()})
    for tag, image in tags.items():
        ref = ImageRef(host, MATRIX_REPO, tag)
        push_image(client, ref, "arm64" if tag.endswith("arm64") else "amd64")
        data = (artifacts / f"ghcr.io-rse-ops-lammps-matrix-{tag}-compspec.json").read_bytes() if artifacts \
            else artifact_of(image)
        push_like_lammps_matrix(client, ref, data)
    return list(tags)


def experiment(tmp: Path, tags: list[str]) -> Path:
    """The default experiment plus the two images lammps-matrix tags without an architecture: 20 images."""
    text = (REPO / "experiments" / "lammps.yaml").read_text()
    declared = {line.split(":")[-1].strip() for line in text.splitlines() if "image: docker://" in line}
    extra = "".join(f"  {tag}:\n    image: docker://ghcr.io/{MATRIX_REPO}:{tag}\n" for tag in tags
                    if tag not in declared)
    path = tmp / "lammps-20.yaml"
    path.write_text(text.replace("\nvariants:\n", f"\nvariants:\n{extra}", 1))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=None, help="directory of lammps-matrix artifacts")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="compat-lab-registry-") as name:
        tmp = Path(name)
        reg = start_registry(tmp / "registry")
        try:
            tags = seed(reg.host, args.artifacts)
            exp_path = experiment(tmp, tags)
            env = {**os.environ, "COMPAT_LAB_REGISTRY_MIRRORS": f"ghcr.io={reg.host}", "PYTHONPATH": str(REPO)}
            cold: list[tuple[float, float]] = []
            warm: list[tuple[float, float]] = []
            inproc: list[tuple[float, float]] = []
            for i in range(args.repeats):
                store = tmp / f"run{i}" / "planner.sqlite"
                for times in (cold, warm):
                    started, cpu = time.perf_counter(), _children_cpu()
                    subprocess.run([sys.executable, "-m", "planner", "variants", "fetch", "-e", str(exp_path),
                                    "--store", str(store)], env=env, check=True, capture_output=True, cwd=REPO)
                    times.append((time.perf_counter() - started, _children_cpu() - cpu))
                cache = ArtifactCache(tmp / f"inproc{i}")
                started, cpu = time.perf_counter(), time.process_time()
                report = registry.fetch(load_experiment(exp_path), cache, {"ghcr.io": reg.host})
                inproc.append((time.perf_counter() - started, time.process_time() - cpu))
                assert len(report.entries) == 20 and not (report.failed or report.missing or report.invalid), report
        finally:
            reg.stop()
    source = f"artifacts from {args.artifacts}" if args.artifacts else "artifacts generated from tests/registry/data"
    print(f"variants fetch of 20 artifacts from a local docker-registry ({source}), median of {args.repeats}:")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for label, times in (("cold cache, CLI", cold), ("warm cache, CLI", warm), ("cold cache, fetch() alone", inproc)):
        wall, cpu = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
        print(f"  {label:<26} wall {wall:6.3f} s (ratio to {TARGET:.0f} s: {wall / TARGET:.2f})   "
              f"cpu {cpu:6.3f} s (ratio {cpu / TARGET:.2f})")
    return 0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
