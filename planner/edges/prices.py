"""Hourly prices of clusters, for `recommend --per-dollar`: the EC2 On-Demand list prices shipped with the
planner (`data/ec2_on_demand_prices.csv`, with their date and source), read once.

A cluster's own `price_per_hour` (the experiment's, or an imported row's `cluster.price_per_hour`) wins;
else its `instance_type`, else its name when that is an instance type (imported studies often name a
cluster after it), is looked up here. `planner.learn.recommend` takes the result as plain data.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

PRICES = Path(__file__).with_name("data") / "ec2_on_demand_prices.csv"


@functools.cache
def listed() -> dict[str, tuple[float, str]]:
    """Per instance type: (USD per hour, where the price comes from)."""
    with open(PRICES, newline="", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    date = next(line.split(":", 1)[1].strip().split(" ", 1)[0] for line in lines if line.startswith("# date:"))
    rows = csv.DictReader(line for line in lines if not line.startswith("#"))
    # the source says whether a page other than this file's own gave the same price (the file's header)
    return {row["instance_type"]: (float(row["usd_per_hour"]),
                                   f"EC2 On-Demand list price, {row['region']}, {date}"
                                   f"{'' if row['checked'] != 'unverified' else ', unverified'}") for row in rows}
