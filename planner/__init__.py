"""compat-lab planner: run matrices of app variants and launch options, learn, recommend."""

__version__ = "0.1.0"
