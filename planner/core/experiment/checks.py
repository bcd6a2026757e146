"""The checks a schema cannot make: names that must exist elsewhere in the file, flags an app allows,
option values against the workloads they reach. Pure.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from planner.core import apps
from planner.core.experiment.models import OPTION_NAMES, Experiment, Options, Sweep, Workload, _friendly
from planner.core.experiment.values import parameter_error


def _check_references(exp: Experiment) -> None:
    """Names that must exist elsewhere in the file: the mistakes a schema cannot see."""
    for name, variant in exp.variants.items():
        if variant.app is None:
            raise exp.error(f"`app` is needed where the file declares several apps ({', '.join(exp.apps)})",
                            "variants", name)
        if variant.app not in exp.apps:
            raise exp.error(f"unknown app {variant.app!r}; known: {', '.join(exp.apps)}", "variants", name, "app")
        base = variant.native.binary_from if variant.native else None
        if base is not None and (base not in exp.variants or exp.variants[base].native is None):
            native = [n for n, v in exp.variants.items() if v.native is not None and n != name]
            raise exp.error(f"binary_from names {base!r}, which is not a native variant; "
                            f"known: {', '.join(native)}", "variants", name, "native", "binary_from")
        if variant.build is not None and variant.image is not None and not variant.image.endswith(f":{name}"):
            raise exp.error(f"a built image is published under its variant's name: the image must end in :{name} "
                            f"(got {variant.image})", "variants", name, "image")
    for name in exp.variants:
        chain = [name]
        while (native := exp.variants[chain[-1]].native) is not None and native.binary_from:
            if native.binary_from in chain:
                raise exp.error(f"binary_from goes round in a circle ({' -> '.join([*chain, native.binary_from])}); "
                                "it must end at a variant that installs the app itself",
                                "variants", name, "native", "binary_from")
            chain.append(native.binary_from)
    for app_name, app in exp.apps.items():
        definition = apps.resolve(app_name, app)
        if app.definition is not None and apps.definition(app.definition) is None:
            raise exp.error(f"no app definition {app.definition!r}; registered: {', '.join(apps.BUILTIN)}",
                            "apps", app_name, "definition")
        for workload_name, workload in app.workloads.items():
            for key, default in workload.parameters.items():
                error = definition.value_error(key, default)
                if error:
                    raise exp.error(error, "apps", app_name, "workloads", workload_name, "parameters", key)
    _check_rules(exp)
    for index, sweep in enumerate(exp.sweeps):
        where = ("sweeps", index)
        if sweep.app is None:
            raise exp.error(f"`app` is needed where the file declares several apps ({', '.join(exp.apps)})", *where)
        if sweep.app not in exp.apps:
            raise exp.error(f"unknown app {sweep.app!r}; known: {', '.join(exp.apps)}", *where, "app")
        for i, cluster in enumerate(sweep.clusters):
            if cluster not in exp.clusters:
                raise exp.error(f"unknown cluster {cluster!r}; known: {', '.join(exp.clusters)}",
                                *where, "clusters", i)
        workloads = exp.apps[sweep.app].workloads
        for i, workload in enumerate(sweep.workloads):
            if workload not in workloads:
                raise exp.error(f"unknown workload {workload!r} of {sweep.app}; known: {', '.join(workloads)}",
                                *where, "workloads", i)
        if sweep.variants != "*":
            for i, variant in enumerate(sweep.variants):
                if variant not in exp.variants:
                    raise exp.error(f"unknown variant {variant!r}; known: {', '.join(exp.variants)}",
                                    *where, "variants", i)
        parameters = set().union(*(workloads[w].parameters for w in sweep.workloads))
        _check_option_names(exp, sweep, where, parameters)
        _check_option_values(exp, sweep, where, [workloads[w] for w in sweep.workloads])


def _check_flags(exp: Experiment, app_names: tuple[str, ...], args: tuple[str, ...], *loc: Any) -> None:
    """App flags as the definition of each app they may reach accepts them."""
    for app_name in app_names:
        try:
            apps.resolve(app_name, exp.apps[app_name]).check_args(args)
        except ValueError as err:
            raise exp.error(str(err), *loc) from None


def _check_rules(exp: Experiment) -> None:
    seen: dict[str, int] = {}
    for index, rule in enumerate(exp.launch_rules):
        if rule.name in seen:
            raise exp.error(f"launch rule {rule.name!r} is already defined (launch_rules[{seen[rule.name]}]); "
                            "names must be unique: `skip_rules` refers to them", "launch_rules", index, "name")
        seen[rule.name] = index
        for i, app in enumerate(rule.match.app):
            if app not in exp.apps:
                raise exp.error(f"unknown app {app!r}; known: {', '.join(exp.apps)}",
                                "launch_rules", index, "match", "app", i)
        _check_flags(exp, rule.match.app or tuple(exp.apps), rule.add.args, "launch_rules", index, "add", "args")


def _skipped_rules(exp: Experiment, value: Any, loc: tuple[Any, ...]) -> None:
    for name in value if isinstance(value, list | tuple) else [value]:
        if not any(rule.name == name for rule in exp.launch_rules):
            known = ", ".join(rule.name for rule in exp.launch_rules) or "none"
            raise exp.error(f"skip_rules names {name!r}, which is not a launch rule; known: {known}", *loc)


def _check_option_names(exp: Experiment, sweep: Sweep, where: tuple[Any, ...], parameters: set[str]) -> None:
    accepted = set(OPTION_NAMES) | parameters
    matrix = sweep.options
    sections: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        (("set",), matrix.set), (("vary",), matrix.vary),
        *((("zip", i), group) for i, group in enumerate(matrix.zip)),
        *((("exclude", i), entry) for i, entry in enumerate(matrix.exclude)),
    ]
    for path, section in sections:
        for key in section:
            if key in accepted or (path[0] == "exclude" and key in {"variant", "workload", "cluster"}):
                continue
            raise exp.error(f"unknown option {key!r}; accepted: {', '.join(sorted(accepted))}",
                            *where, "options", *path, key)


#: launch options whose values reach a command line or an environment as text
_TEXT_OPTIONS = ("env", "preload", "bind", "pmi", "shell", "args", "skip_rules")


def _check_option_values(exp: Experiment, sweep: Sweep, where: tuple[Any, ...], workloads: list[Workload]) -> None:
    """Each value a sweep gives to a workload parameter or a text option, with the line it is on: a value
    reaches the app's input (`-v name value`, a generated input file) or the run's environment."""
    matrix = sweep.options
    definition = apps.resolve(sweep.app or "", exp.apps[sweep.app or ""])
    sections: list[tuple[tuple[Any, ...], dict[str, Any], bool]] = [
        (("set",), matrix.set, False), (("vary",), matrix.vary, True),
        *((("zip", i), group, True) for i, group in enumerate(matrix.zip)),
    ]
    for path, section, listed in sections:
        for key, values in section.items():
            for index, value in (enumerate(values) if listed else [(None, values)]):
                loc = (*where, "options", *path, key, *(() if index is None else (index,)))
                if key in _TEXT_OPTIONS:
                    try:
                        Options.model_validate({key: value})
                    except ValidationError as err:
                        raise exp.error(_friendly(err.errors()[0]), *loc) from None
                    if key == "skip_rules":
                        _skipped_rules(exp, value, loc)
                    if key == "args":
                        _check_flags(exp, (sweep.app or "",), tuple(value), *loc)
                    continue
                for workload in workloads:
                    if key in workload.parameters:
                        error = (parameter_error(key, workload.parameters[key], value)
                                 or definition.value_error(key, value))
                        if error:
                            raise exp.error(error, *loc)
