"""The planning core: domain types and keys, the experiment file, the plan, compatibility rules, launch
commands, CPU targets, app definitions (planner.core.apps: arguments, inputs, output parsing) and result
summaries. Pure: no files, no network, no processes.

Imports nothing from `learn`, `edges` or `cli` (an import-linter contract in pyproject.toml holds this).
"""
