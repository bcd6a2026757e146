"""Report: PNG plots of the stored results and of the model, and an index.html that shows them.

- `fom_<app>_<workload>.png`: the metric per variant and launch options (median, min..max over runs),
  one figure per workload, best first;
- `heatmap.png`: variant x cluster, how close each variant's best choice came to the best measured
  there (geometric mean over workloads; x: never ran successfully);
- `failures.png`: failed and incompatible runs by reason;
- `predicted_vs_measured.png`: out-of-fold predictions of the cross-validation `fit` reports;
- `importances.png`: how much predictions move when one group of attributes is shuffled;
- `profiles.png`, where runs were profiled: the metric against the profiles that explain it best (the
  fit's strongest links, else run-queue wait, futex wait, context switches), one point per variant and
  launch options in a context, coloured by variant.
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from planner.core.metrics import Metric
from planner.learn import explain
from planner.learn.columns import Measured, Runs

#: At most this many bars per workload figure, rows and columns in the heatmap, workload figures.
MAX_BARS, MAX_ROWS, MAX_COLUMNS, MAX_WORKLOADS = 25, 40, 30, 8
#: Profiles plotted against the metric when the fit found no link: the HPCG study's ground truths first.
DEFAULT_PROFILES = ("ebpf.runq_wait_p99_us", "ebpf.futex_wait_seconds", "perf.context_switches",
                    "rusage.rank_maxrss_max_kb")
MAX_PROFILE_PANELS = 4


def write(runs: Runs, out: Path, metric: Metric, fit_report: dict[str, Any], model_text: str,
          notes: list[str]) -> dict[str, Any]:
    """Figures and the page for these runs and the fit that `fit_report` describes (as `fit --json` prints
    it); `model_text` is what `fit` printed about it."""
    import matplotlib

    matplotlib.use("Agg")
    sign = metric.sign
    measured = runs.measured(metric.name)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, str]] = []
    for (app, workload), items in _by_workload(runs, measured)[:MAX_WORKLOADS]:
        name = f"fom_{app}_{workload}.png"
        _fom_figure(out / name, app, workload, items, runs, metric.name, sign)
        figures.append((name, f"{metric.name} of {app} {workload} per variant and launch options: median of the "
                              "successful runs, bars from min to max; best first"))
    if _heatmap(out / "heatmap.png", runs, measured, sign):
        figures.append(("heatmap.png", "variant x cluster: the best choice of each variant over the best measured "
                                       "on that cluster (geometric mean over workloads); x: never ran successfully"))
    _failures(out / "failures.png", runs)
    figures.append(("failures.png", "failed and incompatible runs by reason"))
    sample = fit_report.get("foms", {}).get(metric.name, {}).get("sample")
    if sample:
        _predicted(out / "predicted_vs_measured.png", sample, metric.name)
        figures.append(("predicted_vs_measured.png", f"{metric.name}: out-of-fold predictions of the grouped "
                                                     "cross-validation against the measurements"))
    if fit_report.get("importances"):
        _importances(out / "importances.png", fit_report["importances"], metric.name)
        figures.append(("importances.png", "attribute groups: how far predictions move when a group is shuffled "
                                           "across points (log FOM; P(success) for the classifier)"))
    shown = _profile_panels(runs, metric.name, fit_report)
    if shown:
        _profiles(out / "profiles.png", runs, metric.name, shown)
        figures.append(("profiles.png", f"{metric.name} against the profiles measured beside it (one point per "
                                        "variant and launch options in a context, median of its runs; "
                                        "profiles explain, they never feed predictions)"))
    _page(out / "index.html", runs, measured, metric.name, sign, figures, model_text, notes)
    return {"out": str(out), "index": str(out / "index.html"), "figures": [name for name, _ in figures],
            "metric": metric.name}


def _label(runs: Runs, k: int) -> str:
    options = runs.choices[k].options()
    text = " ".join(f"{key}={value}" for key, value in sorted(options.items()) if key != "affinity")
    return f"{runs.choices[k].variant}  {text}".strip()


def _by_workload(runs: Runs, measured: dict[tuple[int, int], Measured]) -> list[
        tuple[tuple[str, str], list[tuple[int, int, Measured]]]]:
    groups: dict[tuple[str, str], list[tuple[int, int, Measured]]] = defaultdict(list)
    for (c, k), item in measured.items():
        if item.values:
            context = runs.contexts[c]
            groups[(context.app, context.workload)].append((c, k, item))
    return sorted(groups.items(), key=lambda kv: -len(kv[1]))


def _fom_figure(path: Path, app: str, workload: str, items: list[tuple[int, int, Measured]], runs: Runs,
                metric: str, sign: float) -> None:
    import matplotlib.pyplot as plt

    clusters = {runs.contexts[c].cluster for c, _, _ in items}
    items = sorted(items, key=lambda item: -sign * (item[2].median or 0.0))[:MAX_BARS]
    labels = [(f"[{runs.contexts[c].cluster}] " if len(clusters) > 1 else "") + _label(runs, k) for c, k, _ in items]
    medians = np.array([item.median for _, _, item in items])
    low = medians - np.array([min(item.values) for _, _, item in items])
    high = np.array([max(item.values) for _, _, item in items]) - medians
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.36 * len(items)))
    y = np.arange(len(items))[::-1]
    ax.barh(y, medians, xerr=[low, high], color="#4c72b0", ecolor="#222222", capsize=3)
    ax.set_yticks(y, labels, fontsize=8)
    for yy, value, item in zip(y, medians, items, strict=True):
        ax.text(max(item[2].values), yy, f"  {value:.3g} (n={len(item[2].values)})", va="center", fontsize=7)
    ax.set_xlabel(f"{metric} ({'higher' if sign > 0 else 'lower'} is better)")
    fig.suptitle(f"{app} {workload}: {metric} per variant and launch options", fontsize=11)
    ax.margins(x=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _heatmap(path: Path, runs: Runs, measured: dict[tuple[int, int], Measured], sign: float) -> bool:
    import matplotlib.pyplot as plt

    best: dict[int, float] = {}
    for (c, _), item in measured.items():
        if item.values:
            value = sign * math.log(item.median or 1.0)
            best[c] = max(best.get(c, -math.inf), value)
    # per (variant, cluster) and context: the variant's best choice relative to the context's best
    per: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    failed: set[tuple[str, str]] = set()
    for (c, k), item in measured.items():
        key = (runs.choices[k].variant, runs.contexts[c].cluster)
        if item.values:
            relative = sign * math.log(item.median or 1.0) - best[c]
            per[key][c] = max(per[key].get(c, -math.inf), relative)
        else:
            failed.add(key)
    variants = [v for v, _ in Counter(v for v, _ in per.keys() | failed).most_common(MAX_ROWS)]
    clusters = [c for c, _ in Counter(c for _, c in per.keys() | failed).most_common(MAX_COLUMNS)]
    if not variants or not clusters:
        return False
    variants.sort()
    clusters.sort()
    grid = np.full((len(variants), len(clusters)), np.nan)
    for i, variant in enumerate(variants):
        for j, cluster in enumerate(clusters):
            values = per.get((variant, cluster))
            if values:
                grid[i, j] = math.exp(float(np.mean(list(values.values()))))
    fig, ax = plt.subplots(figsize=(max(7.0, 4.5 + 0.45 * len(clusters)), 2.0 + 0.3 * len(variants)))
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for i, variant in enumerate(variants):
        for j, cluster in enumerate(clusters):
            if np.isnan(grid[i, j]) and (variant, cluster) in failed:
                ax.text(j, i, "x", ha="center", va="center", color="#c44e52", fontsize=9, fontweight="bold")
            elif not np.isnan(grid[i, j]) and len(clusters) <= 12:
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if grid[i, j] < 0.6 else "black")
    ax.set_xticks(range(len(clusters)), clusters, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(variants)), variants, fontsize=7)
    ax.set_title("each variant's best choice / best measured on the cluster", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="fraction of the best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _failures(path: Path, runs: Runs) -> None:
    import matplotlib.pyplot as plt

    counts = Counter((status, reason or status) for status, reason in zip(runs.status, runs.reason, strict=True)
                     if status != "ok")
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.4 * max(len(counts), 1)))
    if counts:
        items = counts.most_common()
        y = np.arange(len(items))[::-1]
        colors = ["#dd8452" if status == "failed" else "#8172b3" for (status, _), _ in items]
        ax.barh(y, [n for _, n in items], color=colors)
        ax.set_yticks(y, [f"{reason} ({status})" for (status, reason), _ in items])
        for yy, (_, n) in zip(y, items, strict=True):
            ax.text(n, yy, f" {n}", va="center", fontsize=8)
        ax.margins(x=0.12)
    else:
        ax.text(0.5, 0.5, f"all {len(runs)} runs succeeded", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel("runs")
    ax.set_title(f"failed and incompatible runs by reason ({sum(counts.values())} of {len(runs)})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _predicted(path: Path, sample: dict[str, list[float]], metric: str) -> None:
    import matplotlib.pyplot as plt

    measured, predicted = np.array(sample["measured"]), np.array(sample["predicted"])
    fig, ax = plt.subplots(figsize=(6.5, 6))
    ax.scatter(measured, predicted, s=8, alpha=0.5, color="#4c72b0")
    low, high = min(measured.min(), predicted.min()), max(measured.max(), predicted.max())
    line = np.array([low, high])
    ax.plot(line, line, color="#222222", lw=1, label="predicted = measured")
    ax.fill_between(line, line / 1.2, line * 1.2, color="#999999", alpha=0.2, label="within 20%")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"measured {metric}")
    ax.set_ylabel(f"predicted {metric} (out of fold)")
    within = float(np.mean(np.abs(np.log(predicted / measured)) <= math.log(1.2)))
    ax.set_title(f"cross-validated predictions: {within:.0%} of {len(measured)} within 20%")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _importances(path: Path, importances: dict[str, dict[str, float]], metric: str) -> None:
    import matplotlib.pyplot as plt

    panels = [(name, values) for name, values in importances.items() if values and (name == metric or
                                                                                   name == "success")]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(6 * max(len(panels), 1), 4.5), squeeze=False)
    for ax, (name, values) in zip(axes[0], panels, strict=False):
        items = sorted(values.items(), key=lambda kv: kv[1])
        ax.barh(range(len(items)), [v for _, v in items], color="#55a868" if name == "success" else "#4c72b0")
        ax.set_yticks(range(len(items)), [k for k, _ in items])
        ax.set_title("success classifier" if name == "success" else f"{name} regressor")
        ax.set_xlabel("mean |change| in P(success)" if name == "success" else "mean |change| in log FOM")
    fig.suptitle("attribute groups that drive the predictions")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _profile_panels(runs: Runs, metric: str, fit_report: dict[str, Any]) -> list[str]:
    measured = [name for name in explain.names(list(runs.values)) if not np.isnan(runs.values[name]).all()]
    linked = [link["profile"] for link in fit_report.get("profiles", {}).get(metric, [])]
    order = [*linked, *DEFAULT_PROFILES, *sorted(measured)]
    return [name for name in dict.fromkeys(order) if name in measured][:MAX_PROFILE_PANELS]


def _profiles(path: Path, runs: Runs, metric: str, shown: list[str]) -> None:
    import matplotlib.pyplot as plt

    points = explain.medians(runs, [metric, *shown])
    variants = sorted({choice.variant for _, choice in points})
    colors = {v: plt.get_cmap("tab10")(i % 10) for i, v in enumerate(variants)}
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 4.4), squeeze=False)
    for ax, name in zip(axes[0], shown, strict=True):
        for variant in variants:
            xy = [(values[name], values[metric]) for (_, choice), values in points.items()
                  if choice.variant == variant and name in values and metric in values]
            if xy:
                ax.scatter(*zip(*xy, strict=True), s=22, color=colors[variant], label=variant, alpha=0.8)
        ax.locator_params(axis="x", nbins=4)
        ax.set_xlabel(f"{name} (lower is better)")
        ax.set_ylabel(metric)
        ax.set_title(name, fontsize=9)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{metric} against its profiles, per variant")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _page(path: Path, runs: Runs, measured: dict[tuple[int, int], Measured], metric: str, sign: float,
          figures: list[tuple[str, str]], summary: str, notes: list[str]) -> None:
    ok = int(runs.ok.sum())
    clusters = sorted({c.cluster for c in runs.contexts})
    variants = sorted({k.variant for k in runs.choices})
    rows = []
    best: dict[int, tuple[float, int, Measured]] = {}
    for (c, k), item in measured.items():
        if item.values and (c not in best or sign * (item.median or 0) > sign * best[c][0]):
            best[c] = (item.median or 0.0, k, item)
    for c, (value, k, item) in sorted(best.items(), key=lambda kv: runs.contexts[kv[0]]):
        context = runs.contexts[c]
        rows.append(f"<tr><td>{_e(context.cluster)}</td><td>{_e(context.app)} {_e(context.workload)}</td>"
                    f"<td>{_e(_label(runs, k))}</td><td>{value:.4g}</td><td>{len(item.values)}</td></tr>")
    images = "\n".join(f'<figure><img src="{_e(name)}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption>'
                       f"</figure>" for name, caption in figures)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>compat-lab report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
img{{max-width:100%;border:1px solid #ddd}} figure{{margin:2em 0}} figcaption{{color:#555}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 8px;font-size:90%}}
pre{{background:#f4f4f4;padding:1em;white-space:pre-wrap}}</style></head><body>
<h1>compat-lab report</h1>
<p>{len(runs)} runs ({ok} ok, {len(runs) - ok} failed or incompatible) on {len(clusters)} cluster(s),
{len(variants)} variant(s); metric <b>{_e(metric)}</b> ({'higher' if sign > 0 else 'lower'} is better).</p>
<h2>Model</h2><pre>{_e(summary)}{''.join(chr(10) + 'note: ' + _e(n) for n in notes)}</pre>
<h2>Measured best per cluster and workload</h2>
<table><tr><th>cluster</th><th>workload</th><th>variant and options</th><th>median</th><th>runs</th></tr>
{''.join(rows)}</table>
<h2>Figures</h2>
{images}
</body></html>
"""
    path.write_text(page)


def _e(text: Any) -> str:
    return html.escape(str(text))
