"""The run commands: plan, sweep, results, parse-log.

"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from planner.cli import args as cli_args
from planner.cli import variants as variants_cli
from planner.core import apps, files, profilers
from planner.core.errors import InputError
from planner.core.experiment import load_experiment
from planner.core.metrics import default_metric, resolve_metric
from planner.core.summary import options_label, summarize
from planner.edges.store import FILTERS, Store

#: Share of the plan an adaptive sweep may run without --budget.
DEFAULT_BUDGET = 0.25
#: Bytes of a log `parse-log` reads (a long run's output included).
MAX_LOG_BYTES = 512 << 20

# ------------------------------------------------------------------------------------------------ plan


def _plan_rows(ws: Any, plan: Any, stored: set[str], unknown: dict[str, list[str]]) -> list[dict[str, Any]]:
    rows = []
    for run in plan.runs:
        launch = ws.launch(run)
        rows.append({"id": run.id, "cluster": run.cluster, "workload": run.workload, "variant": run.variant,
                     "options": run.key()["options"], "repeat": run.repeat, "stored": run.id in stored,
                     "command": launch.shell(), "profile": list(launch.profile), "unknown": unknown.get(run.id, []),
                     "rules": [dataclasses.asdict(rule) for rule in run.rules], "warnings": list(run.warnings)})
    return rows


def show_plan(args: argparse.Namespace, ws: Any, plan: Any) -> list[dict[str, Any]]:
    """Print the plan (JSON or text) with what the store already holds; returns its rows."""
    stored: set[str] = set()
    if cli_args.store_path(args).exists():
        with Store(cli_args.store_path(args)) as store:
            stored = store.ids(run.id for run in plan.runs)
    notes = variants_cli.plan_notes(ws, plan)
    rows = _plan_rows(ws, plan, stored, notes["unknown"])
    excluded = [{"cluster": x.cluster, "workload": x.workload, "variant": x.variant, "options": x.options,
                 "reason": x.reason, "detail": x.detail} for x in plan.excluded]
    miniclusters = {name: [config.as_dict() for config in configs] for name, configs in plan.miniclusters.items()}
    if args.json:
        print(json.dumps({"runs": rows, "excluded": excluded, "variants": notes["variants"],
                          "miniclusters": miniclusters}, indent=2))
    else:
        _print_plan(rows, excluded, ws, args.cluster)
        _print_miniclusters(miniclusters)
        variants_cli.print_plan_notes(notes)
    return rows


def _print_miniclusters(miniclusters: dict[str, list[dict[str, Any]]]) -> None:
    """Which MiniCluster configuration serves which planned image, the cluster's own first."""
    console = cli_args.console()
    for name, configs in miniclusters.items():
        for index, config in enumerate(configs):
            how = ("as configured" if not config["chosen"] else "chosen from the images' os.* attributes") \
                if index == 0 else "another MiniCluster, for what the first cannot serve"
            console.print(f"[bold]MiniCluster on {name}[/] ({how}): -e minicluster_flux_view_image="
                          f"{config['flux_view']} -e minicluster_image={config['pod_image']}", soft_wrap=True)
            console.print(f"  view {config['flux_view_os']}; pods {config['pod_image_os']}", soft_wrap=True,
                          markup=False)
            console.print(f"  serves: {', '.join(config['variants']) or 'none'}", soft_wrap=True, markup=False)
            if config["problem"]:
                console.print(f"  [yellow]warning[/]: {escape(config['problem'])}", soft_wrap=True)


def cmd_plan(args: argparse.Namespace) -> int:
    from planner.edges.sweep import Workspace, prepare

    ws = Workspace.load(load_experiment(args.experiment), artifacts=variants_cli.artifacts(args))
    plan, _ = prepare(ws, args.cluster, args.workload, args.variant, None, cli_args.console(), install=False)
    show_plan(args, ws, plan)
    return 0


def _print_plan(rows: list[dict[str, Any]], excluded: list[dict[str, Any]], ws: Any, cluster: str) -> None:
    """One entry per configuration (repeats folded) with its command; exclusions grouped by reason."""
    console = cli_args.console()
    stored = sum(r["stored"] for r in rows)
    console.print(f"[bold]Plan on {cluster}[/]: {len(rows)} runs ({stored} stored), {len(excluded)} points excluded")
    configs: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        configs.setdefault((row["workload"], row["variant"], options_label(row["options"])), []).append(row)
    for (workload, variant, options), group in configs.items():
        done = sum(r["stored"] for r in group)
        console.print(f"  [cyan]{workload}[/] {variant}  {options}  "
                      f"[dim]x{len(group)} repeats, {done} stored[/]", soft_wrap=True)
        console.print(f"    $ {group[0]['command']}", soft_wrap=True, markup=False)
        for rule in group[0]["rules"]:
            kept = f" (kept {rule['kept']})" if rule["kept"] else ""
            console.print(f"    rule {rule['name']}: {rule['why']} -> {rule['adds']}{kept}", soft_wrap=True,
                          markup=False)
        for warning in group[0]["warnings"]:
            console.print(f"    [yellow]warning[/]: {escape(warning)}", soft_wrap=True)
        if group[0]["profile"]:
            console.print(f"    [dim]profiled: {', '.join(group[0]['profile'])}[/]")
    if excluded:
        console.print(f"[bold]Excluded on {cluster}[/]:")
        reasons: dict[tuple[str, str], list[str]] = {}
        for row in excluded:
            reasons.setdefault((row["variant"], row["detail"]), []).append(row["workload"])
        for (variant, detail), workloads in reasons.items():
            console.print(f"  {variant}: {detail} [dim]({len(workloads)} points: "
                          f"{', '.join(sorted(set(workloads)))})[/]", soft_wrap=True)
    pending = [name for name, v in ws.variants.items() if v.kind == "native" and not v.installed]
    if pending and ws.clusters[cluster].kind == "local":
        console.print(f"[yellow]not installed yet[/]: {', '.join(pending)} (sweep installs them; their app's "
                      "packages are checked once installed)")


# ----------------------------------------------------------------------------------------------- sweep


def cmd_sweep(args: argparse.Namespace) -> int:
    from planner.edges.sweep import (
        SweepReport,
        Workspace,
        check_profiles,
        execute,
        prepare,
        recover,
        stage_inputs,
        sweep_lock,
    )

    if args.json and not args.dry_run:
        raise InputError("--json prints the plan of a dry run; add --dry-run (a sweep itself reports in text)",
                         field="--json")
    console = cli_args.console()
    exp = load_experiment(args.experiment)
    path = cli_args.store_path(args)
    ws = Workspace.load(exp, artifacts=variants_cli.artifacts(args))
    ws.profile_override = args.profile
    ws.side_by_side = args.side_by_side
    _check_adaptive_args(args)
    plan, _ = prepare(ws, args.cluster, args.workload, args.variant, args.repeats, console, install=False)
    check_profiles(ws, plan.runs)  # what the experiment asks of the cluster, before whether it is up
    cluster = ws.clusters.get(args.cluster)
    if cluster is not None and cluster.kind == "eks" and not args.dry_run:
        from planner.edges import cloud

        cloud.require_up(args.cluster)
    if cluster is not None and cluster.kind == "slurm" and not args.dry_run:
        from planner.edges import slurm

        # an image fetched from the registry (`variants fetch --images`) is as ready as one built here
        slurm.require_up(args.cluster, sorted({run.variant for run in plan.runs
                                               if not ws.variants[run.variant].installed}))
    if args.dry_run and args.adaptive:
        return _adaptive_dry_run(args, ws, plan, console)
    if args.dry_run:
        rows = show_plan(args, ws, plan)
        if not args.json:
            console.print(f"dry run: {sum(not r['stored'] for r in rows)} of {len(rows)} runs would execute")
        return 0
    _refuse_unrunnable(args, ws, plan)
    # the store is checked before anything runs (a variant install included): a read-only store or a
    # full disk found after the runs would waste them
    with Store(path) as store, sweep_lock(store):
        store.check_writable()
        plan, install_seconds = prepare(ws, args.cluster, args.workload, args.variant, args.repeats, console,
                                        install=True)
        _refuse_unrunnable(args, ws, plan)
        report = SweepReport(install_seconds=install_seconds)
        if args.adaptive:
            return _adaptive_sweep(args, ws, store, plan, console, report)
        stored = store.ids(run.id for run in plan.runs)
        retry = store.ids((run.id for run in plan.runs), status="failed") if args.retry_failed else set()
        report.stored_before = len(stored) - len(retry)
        left = recover(ws, store, [run for run in plan.runs if run.id not in stored])
        report.recovered = len(plan.runs) - len(stored) - len(left)
        left += [run for run in plan.runs if run.id in retry]
        if report.recovered:
            console.print(f"recovered {report.recovered} run(s) that finished after the last sweep stopped")
        if ws.clusters[args.cluster].kind == "slurm":
            from planner.edges import slurm

            leftovers = slurm.cancel_leftovers(run.id for run in plan.runs if run.id not in left)
            if leftovers:
                console.print(f"cancelled {len(leftovers)} job(s) Slurm still had of runs stored already: "
                              f"{', '.join(leftovers)}")
        if install_seconds:
            console.print(f"variants installed in {install_seconds:.1f} s")
        if not left:
            console.print(f"0 runs to do: all {len(plan.runs)} runs of this plan are stored in {store.path}")
        else:
            again = f", {len(retry)} failed run(s) to run again" if retry else ""
            console.print(f"{len(left)} of {len(plan.runs)} runs to do on {args.cluster} "
                          f"({report.stored_before + report.recovered} already stored{again})")
            stage_inputs(ws, left)
            execute(ws, store, left, console, report)
        planned = {run.id for run in plan.runs}
        records = [r for r in store.records(cluster=args.cluster) if r.id in planned]
    _print_summary(console, records, f"Sweep results on {args.cluster}")
    return _sweep_end(console, report, plan, args.cluster, args.experiment)


def _sweep_end(console: Console, report: Any, plan: Any, cluster: str, experiment: str) -> int:
    """What every sweep says at its end (runs, time, failures, what next) and its exit code."""
    from planner.edges import cloud
    from planner.edges.sweep import INTERRUPTED

    if report.executed:
        overhead = report.run_seconds / report.app_seconds if report.app_seconds else float("nan")
        console.print(f"executed {report.executed} runs ({report.ok} ok, {report.failed} failed) in "
                      f"{report.run_seconds:.1f} s; app processes {report.app_seconds:.1f} s; "
                      f"orchestration ratio {overhead:.3f}")
    if report.failed:
        console.print(f"{report.failed} run(s) failed in the app and are stored with their reason (a result, "
                      "exit 0); `sweep --retry-failed` runs them again")
    if report.executed and not report.interrupted:
        named = "" if experiment == cli_args.default_experiment(plan.runs[0].app) else f" -e {experiment}"
        console.print(f"next: python -m planner fit{named} && python -m planner recommend "
                      f"{plan.runs[0].app} {plan.runs[0].workload} --cluster {cluster}{named}")
    if bill := cloud.billing(cluster):
        console.print(bill)
    if report.interrupted:
        console.print(f"[yellow]interrupted[/]: {report.executed} run(s) stored this time; "
                      "run the same command again to resume")
        for failure in report.cancel_failures:
            console.print(f"[red]the sweep's jobs on {cluster} may still run[/] (cancelling them failed: "
                          f"{failure}); the next sweep cancels a job of the same run before it starts it again")
        return INTERRUPTED
    if report.playbook_failures:
        for failure in report.playbook_failures:
            console.print(f"[red]error[/]: {failure}")
        return 1
    return 0


def _profilers(text: str) -> tuple[str, ...]:
    try:
        return profilers.parse_names(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(err.detail) from None


def _check_adaptive_args(args: argparse.Namespace) -> None:
    if args.budget is not None and not args.adaptive:
        raise InputError("sets how many runs an adaptive sweep may do: add --adaptive", field="--budget")
    if args.adaptive and args.retry_failed:
        raise InputError("--retry-failed runs every failed run again, while an adaptive sweep chooses its runs: "
                         "use one or the other", field="--adaptive")
    for flag, value in (("--metric", args.metric), ("--goal", args.goal)):
        if value is not None and not args.adaptive:
            raise InputError("sets what an adaptive sweep optimizes: add --adaptive", field=flag)


def _adaptive_metric(args: argparse.Namespace, plan: Any) -> Any:
    """What an adaptive sweep optimizes: --metric (default: the planned app's default figure of merit) towards
    --goal (default: the metric's own)."""
    from planner.core.metrics import metric_of

    return metric_of(args.metric or default_metric(plan.runs[0].app if plan.runs else None), args.goal)


def _budget(args: argparse.Namespace, plan: Any) -> Any:
    from planner.learn.acquisition import Budget

    budget = args.budget or Budget(share=DEFAULT_BUDGET)
    try:
        budget.of(len(plan.runs))
    except ValueError as err:
        raise InputError(str(err), field="--budget") from None
    return budget


def _adaptive_dry_run(args: argparse.Namespace, ws: Any, plan: Any, console: Console) -> int:
    from planner.edges import adaptive_sweep

    _refuse_unrunnable(args, ws, plan)
    budget = _budget(args, plan)
    path = cli_args.store_path(args)
    store = Store(path, create=False) if path.exists() else None
    try:
        result = adaptive_sweep.first_batch(ws, store, plan, budget, _adaptive_metric(args, plan))
    finally:
        if store is not None:
            store.close()
    rows = [{"id": c.run.id, "workload": c.run.workload, "variant": c.run.variant,
             "options": c.run.key()["options"], "repeat": c.run.repeat, "command": ws.launch(c.run).shell(),
             "why": c.why} for c in result.first]
    if args.json:
        print(json.dumps({"adaptive": True, "cluster": args.cluster, "budget": result.budget,
                          "plan_runs": result.plan_runs, "spent": result.spent, "prior": result.prior,
                          "first_batch": rows, "stopped": result.stopped}, indent=2))
        return 0
    console.print(f"[bold]Adaptive sweep on {args.cluster}[/] (dry run): budget {result.budget} of the plan's "
                  f"{result.plan_runs} runs ({budget}), {result.spent} spent before; {result.prior}")
    if not rows:
        console.print(f"nothing to run: {_stopped_text(result.stopped)}")
    for row in rows:
        console.print(f"  [cyan]{row['workload']}[/] {row['variant']} {options_label(row['options'])} repeat "
                      f"{row['repeat']}: {row['why']}", soft_wrap=True)
        console.print(f"    $ {row['command']}", soft_wrap=True, markup=False)
    console.print(f"dry run: the first batch of {len(rows)} run(s); later batches depend on what these measure")
    return 0


def _stopped_text(stopped: str | None) -> str:
    from planner.learn.acquisition import CHANCE, MARGIN

    return {"budget": "the budget is spent",
            "confident": f"the chance that an unmeasured point, or one that can run again, beats the best measured "
                         f"one by {math.exp(MARGIN) - 1:.0%} or more fell below {CHANCE:.0%}",
            "exhausted": "every planned run is done"}.get(stopped or "", "interrupted")


def _adaptive_sweep(args: argparse.Namespace, ws: Any, store: Store, plan: Any, console: Console,
                    report: Any) -> int:
    from planner.edges import adaptive_sweep

    result = adaptive_sweep.run(ws, store, plan, _budget(args, plan), console, report, _adaptive_metric(args, plan))
    planned = {run.id for run in plan.runs}
    records = [r for r in store.records(cluster=args.cluster) if r.id in planned]
    _print_summary(console, records, f"Adaptive sweep results on {args.cluster}")
    console.print(f"adaptive sweep: {result.spent} of {result.budget} budgeted runs spent ({result.plan_runs} in "
                  f"the plan); stopped: {_stopped_text(result.stopped)}")
    for outcome in result.outcomes:
        item = adaptive_sweep.describe(outcome, result.metric)
        best = item["best"]
        if best is None:
            console.print(f"  {item['workload']}: nothing measured successfully yet")
            continue
        likeliest = item["likeliest"]
        also = f" (likeliest: {likeliest['variant']} {options_label(likeliest['options'])}, " \
               f"{likeliest['chance']:.0%})" if likeliest and likeliest["chance"] >= 0.005 else ""
        console.print(f"  {item['workload']}: best {best['variant']} {options_label(best['options'])}: "
                      f"{result.metric.name} {best['median']:.4g} (median of {best['runs']} run(s)); chance an "
                      f"unmeasured point beats it by 5% or more: {item['chance_unmeasured_beats_by_5pct']:.0%}{also}",
                      soft_wrap=True)
    left = sum(outcome.runs_left for outcome in result.outcomes)
    wall = adaptive_sweep.median_wall(result)
    cost = f" (~{_duration(left * wall)} at the median {wall:.1f} s per run here)" if wall else ""
    console.print(f"an exhaustive sweep would still run {left} of the plan's {result.plan_runs} runs{cost}")
    refits = sum(result.refit_seconds)
    if report.run_seconds:
        console.print(f"model: prior fitted in {result.fit_seconds:.2f} s, {len(result.refit_seconds)} refit(s) in "
                      f"{refits:.3f} s: {(result.fit_seconds + refits) / report.run_seconds:.1%} of the "
                      f"{report.run_seconds:.1f} s the runs took ({refits / report.run_seconds:.2%} for the refits)")
    return _sweep_end(console, report, plan, args.cluster, args.experiment)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


def _refuse_unrunnable(args: argparse.Namespace, ws: Any, plan: Any) -> None:
    """Exit 2 when a --variant cannot run on the cluster, or when nothing can."""
    for name in args.variant:
        if not any(run.variant == name for run in plan.runs):
            why = next((x.detail for x in plan.excluded if x.variant == name), None) or _why_not(ws, args.cluster, name)
            raise InputError(f"variant {name} cannot run on cluster {args.cluster}: {why}", field="--variant")
    unknown = sorted({run.variant for run in plan.runs
                      if ws.variants[run.variant].kind == "container" and not ws.variants[run.variant].attributes})
    if unknown:  # an image of another architecture would be pulled and run for nothing
        raise InputError(f"attributes unknown for {', '.join(unknown)}: run `python -m planner variants fetch` "
                         "first (or type their attributes in the experiment)", file=args.experiment)
    if not plan.runs:
        raise InputError(f"nothing to run on {args.cluster}: every point is excluded (see `planner plan "
                         f"--cluster {args.cluster}`)", file=args.experiment)


def _why_not(ws: Any, cluster: str, variant: str) -> str:
    """Why a variant no sweep pairs with this cluster could not run there anyway (or that no sweep pairs them)."""
    from planner.core import compat
    from planner.core.experiment import Options

    app = ws.exp.apps[ws.exp.variants[variant].app]
    for name, workload in app.workloads.items():
        reason = compat.check(ws.clusters[cluster], ws.variants[variant], name, workload, Options())
        if reason:
            return reason
    return "no sweep of the experiment pairs them"


# --------------------------------------------------------------------------------------------- results


def _print_summary(console: Console, records: list[Any], title: str, name: str | None = None) -> None:
    """The table of `results` and of a sweep's end: `name`, else each app's default figure of merit."""
    summaries = summarize(records)
    shown = {item.app: name or default_metric(item.app) for item in summaries}
    label = name or (next(iter(shown.values())) if len(set(shown.values())) == 1 else "(each app's default)")
    table = Table(title=title)
    for column in ("workload", "variant", "options", "ok/n", f"median {label}", "spread", "wall s", "failures"):
        table.add_column(column, overflow="fold")
    for item in summaries:
        metric = item.median.get(shown[item.app])
        table.add_row(item.workload, item.variant, options_label(item.options), f"{item.ok}/{item.runs}",
                      f"{metric:.4g}" if metric is not None else "-",
                      f"{item.spread.get(shown[item.app], 0) * 100:.1f}%" if metric is not None else "-",
                      f"{item.median['process_wall']:.3g}" if "process_wall" in item.median else "-",
                      ", ".join([*(f"{k} x{v}" for k, v in item.reasons.items()), *_unprofiled(item)]))
    console.print(table)


def _unprofiled(item: Any) -> list[str]:
    """What a profiler could not record, as the failures column says it."""
    return [f"no {profiler} x{n}: {why}" for profiler, counts in item.profiles.items()
            for why, n in counts["unavailable"].items()]


def cmd_results(args: argparse.Namespace) -> int:
    with Store(cli_args.store_path(args), create=False) as store:
        records = store.records(app=args.app, workload=args.workload, cluster=args.cluster)
    summaries = summarize(records)
    if args.compare is not None:
        return _compare(args, summaries)
    metric = None
    if args.metric is not None:
        measured = {name for s in summaries for name in s.median}
        metric = resolve_metric(args.metric, None, measured).name
        summaries = [s.only(metric) for s in summaries]
    if args.json:
        print(json.dumps([s.as_dict() for s in summaries], indent=2))
    elif args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["cluster", "app", "workload", "variant", "options", "runs", "ok", "metric", "median",
                         "spread"])
        for s in summaries:
            for name, value in s.median.items():
                writer.writerow([s.cluster, s.app, s.workload, s.variant, options_label(s.options), s.runs, s.ok,
                                 name, f"{value:.6g}", f"{s.spread[name]:.4f}"])
    else:
        title = f"Stored results: {len(records)} runs, {len(summaries)} configurations"
        _print_summary(cli_args.console(), records, title, metric)
    return 0


def _compare(args: argparse.Namespace, summaries: list[Any]) -> int:
    """`results --compare REF`: exit 1 when a figure regressed beyond its tolerance, 0 otherwise."""
    from planner.core import references
    from planner.core.metrics import default_metric, goal_of

    limit = None
    if args.tolerance is not None:
        try:
            limit = references.tolerance(args.tolerance)
        except ValueError as err:
            raise InputError(str(err), field="--tolerance") from None
    path = files.require_regular(args.compare, "reference")
    try:
        with path.open("rb") as handle:
            header = handle.read(16)
    except OSError as err:
        raise InputError(f"cannot read the reference ({err.strerror})", file=str(path)) from None
    if header == b"SQLite format 3\0":
        with Store(path, create=False) as earlier:
            before = summarize(earlier.records(app=args.app, workload=args.workload, cluster=args.cluster))
        reference = references.from_summaries(before, lambda app: [args.metric or default_metric(app)], str(path))
    else:
        reference = references.parse_reference(
            files.read_text(path, "reference", references.MAX_REFERENCE_BYTES), str(path))
    checks = references.compare(reference, summaries, goal_of, limit)
    regressions = [check for check in checks if check.status == "regression"]
    if args.junit:
        report = references.junit(checks, f"compat-lab results --compare {path.name}")
        try:
            Path(args.junit).write_text(report)
        except OSError as err:
            raise InputError(f"cannot write the JUnit report: {err.strerror}", file=args.junit) from None
    if args.json:
        print(json.dumps({"reference": str(path), "regressions": len(regressions),
                          "checks": [check.as_dict() for check in checks]}, indent=2))
    else:
        table = Table(title=f"Compared with {path}: {len(regressions)} regression(s) in {len(checks)} figures")
        for column in ("workload", "variant", "options", "metric", "reference", "current", "change", "status"):
            table.add_column(column, overflow="fold")
        colour = {"regression": "red", "improved": "green", "missing": "yellow", "ok": ""}
        for check in checks:
            table.add_row(check.workload, check.variant or "*", check.options, check.metric, f"{check.reference:.4g}",
                          "-" if check.current is None else f"{check.current:.4g}",
                          "-" if check.change is None else f"{check.change * 100:+.1f}%",
                          f"[{colour[check.status]}]{check.status}[/]" if colour[check.status] else check.status)
        cli_args.console().print(table)
    return 1 if regressions else 0


# ------------------------------------------------------------------------------------------- parse-log


def cmd_parse_log(args: argparse.Namespace) -> int:
    definition = apps.resolve(args.app)
    out = []
    for name in args.files:
        text = files.read_text(name, "log", MAX_LOG_BYTES, errors="replace")
        out.append({"file": name, **definition.parse(text, tasks=args.tasks).as_dict()})
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for item in out:
            shown = {fom.name for fom in definition.foms_declared if fom.name != "procs"}
            foms = ", ".join(f"{k}={v:g}" for k, v in item["foms"].items() if k in shown)
            why = f" {item['reason']}: {item['detail']}" if item["status"] != "ok" else ""
            print(f"{item['file']}: {item['status']}{why} {foms}".rstrip())
    return 0


# ---------------------------------------------------------------------------------------------- forget


def cmd_forget(args: argparse.Namespace) -> int:
    """List (or with --yes remove) the stored runs matching every filter given."""
    import shutil

    filters = {name: getattr(args, name) for name in FILTERS}
    if not any(filters.values()):
        raise InputError("name at least one filter (--cluster, --app, --workload, --variant, --source, --status "
                         "or --id); to start afresh, move the store aside", field="forget")
    with Store(cli_args.store_path(args), create=False) as store:
        runs = store.matching(filters)
        removed = store.delete(run["id"] for run in runs) if args.yes else 0
        own = store.side(".runs")
    logs = 0
    for run in runs if args.yes else ():
        # a run's directory goes only when it is this store's own (never a shared old-layout directory)
        directory = own / run["id"]
        if run["log_path"] and Path(run["log_path"]).parent == directory and directory.is_dir():
            shutil.rmtree(directory)
            logs += 1
    groups: dict[tuple[str, ...], int] = {}
    for run in runs:
        key = (run["cluster"], run["app"], run["workload"], run["variant"], run["source"], run["status"])
        groups[key] = groups.get(key, 0) + 1
    if args.json:
        print(json.dumps({"matched": len(runs), "removed": removed, "run_dirs_removed": logs,
                          "groups": [dict(zip(("cluster", "app", "workload", "variant", "source", "status", "runs"),
                                              (*key, n), strict=True)) for key, n in groups.items()]}, indent=2))
        return 0
    for (cluster, app, workload, variant, source, status), n in groups.items():
        print(f"  {n:6d}  {cluster} {app} {workload} {variant} ({source}, {status})")
    if args.yes:
        print(f"forgot {removed} run(s) and removed {logs} run director{'y' if logs == 1 else 'ies'}")
    else:
        print(f"{len(runs)} run(s) match; nothing removed: add --yes to forget them")
    return 0


# ------------------------------------------------------------------------------------------------ main


def add_commands(sub: Any) -> None:
    p = sub.add_parser("sweep", help="run the plan (skips stored runs; progress with ETA)",
                       description="Run the experiment's matrix on a cluster. Native variants are installed "
                                   "first on the local cluster. Runs already stored are skipped, so an "
                                   "interrupted sweep resumes where it stopped; each run is stored as it ends. "
                                   "Exit 0 when every run was executed and stored, runs that failed in the app "
                                   "included (they are results); 1 when runs could not be executed or stored; "
                                   "2 bad input (a read-only or full store included), before anything runs; "
                                   "130 interrupted.")
    cli_args.selection_args(p)
    p.add_argument("--repeats", type=cli_args.repeats, default=None, metavar="N",
                   help="repeats per point, at most 100 (default: the sweep's)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their commands; run nothing")
    p.add_argument("--retry-failed", action="store_true",
                   help="run again the runs stored as failed (killed, timed out, ...), replacing their records "
                        "(default: every stored run is skipped)")
    p.add_argument("--adaptive", action="store_true",
                   help="model-guided: start from what the store and the model know (other clusters, other "
                        "workloads), run first the points that can change the answer, refit after each batch, stop "
                        "at the budget or when no unmeasured point has a 10%% chance of beating the best by 5%%; "
                        "an interrupted adaptive sweep resumes its decisions")
    p.add_argument("--budget", type=cli_args.budget, default=None, metavar="N|P%",
                   help=f"with --adaptive: at most N runs, or P%% of the plan's runs (default: "
                        f"{DEFAULT_BUDGET:.0%}%); repeats count like any run")
    p.add_argument("--metric", default=None, metavar="M",
                   help="with --adaptive: the figure of merit to optimize (default: the app's default one)")
    cli_args.goal_arg(p)
    p.add_argument("--json", action="store_true",
                   help="with --dry-run: print the plan (with --adaptive: the first batch) as JSON")
    p.add_argument("--profile", type=_profilers, default=None, metavar="P[,P]...",
                   help="record profiles beside the figures of merit, for this sweep's runs: rusage (per rank), "
                        "perf (perf stat software events), ebpf (bpftrace: run-queue wait, on-CPU, futex and "
                        "poll waits); default: the sweep's `profile:` (none). What the kernel denies is recorded "
                        "as unavailable, and the runs go on")
    together = p.add_mutually_exclusive_group()
    together.add_argument("--side-by-side", dest="side_by_side", action="store_true", default=True,
                          help="on a cluster with a scheduler (local-slurm, a MiniCluster), start runs that fit its "
                               "cores together side by side, each still its own job; each run records what ran "
                               "beside it (the default: the cluster bills or waits for every core either way)")
    together.add_argument("--alone", dest="side_by_side", action="store_false",
                          help="one run at a time, for figures measured with nothing beside them")
    cli_args.store_arg(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("plan", help="the expanded matrix, with every excluded point and its reason",
                       description="Expand the experiment for one cluster: each run with its exact launch "
                                   "command, and each excluded point with the reason.")
    cli_args.selection_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    cli_args.store_arg(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("results", help="stored runs summarized per configuration (median, spread, n)",
                       description="Summarize stored runs per configuration: median and spread of every "
                                   "figure of merit over ok runs, counts and failure reasons.")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--csv", action="store_true", help="print CSV (one row per configuration and metric)")
    p.add_argument("--app", default=None, help="only this app")
    p.add_argument("--workload", default=None, help="only this workload")
    p.add_argument("--cluster", default=None, help="only this cluster")
    p.add_argument("--metric", default=None, metavar="M",
                   help="show this figure of merit or profile (e.g. ebpf.runq_wait_p99_us); with --json or "
                        "--csv, only it (default: each app's default figure of merit in the table, every metric "
                        "in JSON and CSV); "
                        "with --compare, the figure compared with an earlier store (default: each app's default "
                        "figure of merit)")
    p.add_argument("--compare", metavar="REF",
                   help="flag figures that moved beyond the tolerance against REF, a YAML file of declared values "
                        "or an earlier store (the same points' medians); exit 1 when one regressed")
    p.add_argument("--tolerance", metavar="T", help="relative tolerance, e.g. 5%% or 0.05 (default: the reference "
                                                    "file's, else 5%%)")
    p.add_argument("--junit", metavar="FILE", help="with --compare: write a JUnit XML report (a regression is a "
                                                   "failing test case)")
    cli_args.store_arg(p)
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("forget", help="remove stored runs by filter (undo a bad import)",
                       description="List the stored runs matching every filter given (each filter repeatable: "
                                   "any of its values); with --yes remove them, their figures of merit and "
                                   "their run directories in this store's own runs directory. Without --yes "
                                   "nothing changes.")
    for name in ("cluster", "app", "workload", "variant"):
        p.add_argument(f"--{name}", action="append", default=[], metavar=name.upper(), help=f"only this {name}")
    p.add_argument("--source", action="append", default=[], choices=("import", "sweep"),
                   help="only runs imported from CSV, or measured by a sweep")
    p.add_argument("--status", action="append", default=[], choices=("ok", "failed", "incompatible"),
                   help="only runs with this status")
    p.add_argument("--id", action="append", default=[], metavar="ID", help="only this run id")
    p.add_argument("--yes", action="store_true", help="remove them (default: only list what matches)")
    cli_args.store_arg(p)
    cli_args.json_arg(p)
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("parse-log", help="parse app logs: status, failure reason, figures of merit",
                       description="Parse an app's logs with its definition (local runs, Flux MiniCluster "
                                   "output). A log of a failed run is parsed like any other (exit 0); its status "
                                   "and reason say so. Reasons: " + ", ".join(apps.REASONS))
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--app", default=apps.BUILTIN[0], choices=apps.BUILTIN,
                   help=f"the app whose output the files are (default: {apps.BUILTIN[0]})")
    p.add_argument("--json", action="store_true", help="print JSON: one object per file {file, status, reason, foms}")
    p.add_argument("--tasks", type=cli_args.positive, metavar="N",
                   help="the MPI tasks the run asked for: a log of fewer procs (singleton runs) is failed, reason mpi")
    p.set_defaults(func=cmd_parse_log)
