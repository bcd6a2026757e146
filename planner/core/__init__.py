"""The planning core: domain types and keys, the experiment file, the plan, compatibility rules, launch
commands, CPU targets, LAMMPS logs and result summaries. Pure: no files, no network, no processes.

Imports nothing from `learn`, `edges` or `cli` (an import-linter contract in pyproject.toml holds this).
"""
