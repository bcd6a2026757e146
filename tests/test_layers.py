"""The package's folders are its layers: the import-linter contracts hold and no module imports itself back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grimp

from tests.conftest import REPO


def test_the_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    # this checkout's planner, whatever else is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([str(lint), "--no-cache"], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout


def test_no_import_cycle() -> None:
    graph = grimp.build_graph("planner", cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain is not None:
                cycles.append(" -> ".join((module, *chain)))
    assert not cycles, "\n".join(cycles)
