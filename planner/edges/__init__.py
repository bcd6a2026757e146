"""The edges: everything that touches the outside world. The SQLite store and its dataset readers, model
files, the ansible-runner adapter and its watchdog, sweeps, variants and clusters on disk, cloud state,
CSV import and the report's plots.

Imports `core` and `learn`; never `cli`.
"""
