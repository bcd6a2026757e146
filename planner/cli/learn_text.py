"""What `fit`, `report` and `recommend` print without --json: the fit's summary and a recommendation.

(`evaluate`'s table is in `planner.cli.learn`: this module is loaded by `recommend`, which never
imports scikit-learn, and `planner.learn.evaluate` does.)"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planner.learn.recommend import LeftOut, Recommendation


def fit_summary(report: dict[str, Any], directory: Path) -> str:
    """Sizes, times, cross-validated errors, where the model went; `report` as `fit --json` prints it."""
    lines = [f"fitted on {report['runs']} runs ({report['points']} points, {report['features']} features) in "
             f"{report['seconds']['fit']:.1f} s; predictions tabulated in {report['seconds']['table']:.1f} s"]
    success = report["success"]
    if "note" in success:
        lines.append(f"success classifier: {success['note']}")
    elif "balanced_accuracy" in success:
        lines.append(f"success classifier: {success['failed']} of {success['runs']} runs failed or were "
                     f"incompatible; {success['folds']}-fold grouped CV on {success['cv_runs']} runs: accuracy "
                     f"{success['accuracy']:.3f}, balanced accuracy {success['balanced_accuracy']:.3f} "
                     f"({success['false_ok']} failures predicted ok)")
    for metric, cv in report["foms"].items():
        if "mae_log" not in cv:
            lines.append(f"{metric}: fitted on {cv['runs']} runs; too few points to cross-validate")
            continue
        lines.append(f"{metric} (log scale): {cv['folds']}-fold grouped CV on {cv['cv_runs']} runs: median error "
                     f"x{cv['median_factor']:.3f}, mean |log error| {cv['mae_log']:.3f}; where nothing was measured "
                     f"in a context its level is predicted with mean |log error| {cv['level_error_log']:.3f} "
                     f"(x{math.exp(cv['level_error_log']):.2f})")
        if "ranking" in cv:
            check = cv["ranking"]
            regrets = ", ".join(f"{name} {value:.3f}" for name, value in check["mean_regret"].items())
            lines.append(f"{metric} ({cv.get('goal', 'max')}) ranking, first pick in {check['contexts']} contexts of "
                         f"held-out {check['held_out']}s ({check['folds']} folds), mean regret: {regrets}; ranked by "
                         f"{check['ranked_by']}: {check['why']}")
    for metric, found in report.get("profiles", {}).items():
        for link in found:
            way = "higher" if link["rho"] > 0 else "lower"
            lines.append(f"why (profiles, measured only, never features): {metric} is {way} where {link['profile']} "
                         f"is higher (rank correlation {link['rho']:+.2f} over {link['configurations']} "
                         f"configurations in {link['contexts']} context(s))")
    lines.append(f"saved to {directory}")
    return "\n".join(lines)


def recommendation(result: Recommendation) -> str:
    goal = "higher" if result.goal == "max" else "lower"
    where = f"on {result.cluster}" if result.cluster else "on every known cluster"
    sizes = sorted({_params(p) for p in result.params.values()})
    lines = [f"{result.app} {result.workload} {where} ({'; '.join(sizes)}): {result.metric}, {goal} is better"]
    if result.model.stale:
        lines.append(f"note: the model was fitted on {result.model.fitted_on_runs} runs and the store has "
                     "changed since; measured values are current (`python -m planner fit` refreshes predictions)")
    lines += [f"note: {note}" for note in result.notes]
    if not result.recommendations:
        lines.append("no candidate can run here (see the left-out points below)")
    for row in result.recommendations:
        options = " ".join(f"{k}={v}" for k, v in sorted(row.options.items())) or "(default options)"
        cluster = f"[{row.cluster}] " if not result.cluster else ""
        if row.measured:
            m = row.measured
            value = f"measured {m.median:.4g} (n={m.ok}, {m.min:.4g}..{m.max:.4g})"
        else:
            assert row.predicted is not None
            p = row.predicted
            value = f"predicted {p.value:.4g} ({p.low:.4g}..{p.high:.4g})"
            if row.share_of_best is not None:
                s = row.share_of_best
                value += f"; {s.value:.0%} of the best here ({s.low:.0%}..{s.high:.0%})"
        lines.append(f"{row.rank:>2}. {cluster}{row.variant}  {options}")
        lines.append(f"    {value}" + ("" if row.confidence == "high" else
                                        f"  LOW CONFIDENCE: {', '.join(row.low_confidence_because)}"))
        if row.per_dollar is not None:
            d = row.per_dollar
            run = "" if d.run_seconds is None else f"; one run {d.run_seconds:.4g} s, ${d.run_cost:.4g}"
            lines.append(f"    {row.source}: {d.work_per_dollar:.4g} {d.unit} at ${d.price_per_hour:.4g}/h "
                         f"({d.price_source}){run}")
        lines.append(f"    $ {row.command}" if row.command else f"    command {row.command_note}")
        lines.append(f"    why: {row.why}")
    if result.excluded:
        by: dict[str, list[LeftOut]] = {}
        for item in result.excluded:
            by.setdefault(item.by, []).append(item)
        parts = [f"{len(items)} by {name} (e.g. {items[0].variant}: {items[0].reason})" for name, items in by.items()]
        lines.append(f"left out: {'; '.join(parts)}")
    return "\n".join(lines)


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(params.items())) or "no parameters"
