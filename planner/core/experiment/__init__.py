"""The experiment file: apps, workloads, variants, clusters and sweeps, validated.

`load_experiment(path)` reads YAML and returns an `Experiment`, or raises `InputError` whose one-line
message names the file, the line and the field at fault and what would be accepted.

The package: `values` (what a value may be), `models` (the schema), `loader` (file to model), `checks`
(what the schema cannot see). Everything is importable from here, as before the split.
"""

from planner.core.experiment.checks import (  # noqa: F401
    _TEXT_OPTIONS,
    _check_flags,
    _check_option_names,
    _check_option_values,
    _check_references,
    _check_rules,
    _skipped_rules,
)
from planner.core.experiment.loader import (  # noqa: F401
    load_experiment,
    parse_experiment,
)
from planner.core.experiment.models import (  # noqa: F401
    _OWN_SHELL_OPTIONS,
    DEBIAN_PACKAGE,
    OPTION_NAMES,
    PMI_SERVICES,
    SHELL_OPTION,
    App,
    Cluster,
    Experiment,
    FomSpec,
    ImageBuild,
    LaunchRule,
    NativeRecipe,
    OptionMatrix,
    Options,
    Profiler,
    RuleAdds,
    RuleMatch,
    Source,
    Substitution,
    Sweep,
    Variant,
    Workload,
    _deprecated_recipe_keys,
    _friendly,
    _is_union_tag,
    _matches,
    _refuse_nul,
    _Strict,
    check_pmi,
    check_shell,
)
from planner.core.experiment.values import (  # noqa: F401
    _ENV_IN_VALUE,
    CODE_ENV,
    ENV_NAME,
    ENV_VALUE,
    MAX_POINTS,
    MAX_REPEATS,
    NAME,
    NAME_MAX,
    PARAMETER_WORD,
    Affinity,
    Count,
    Name,
    Pmi,
    Scalar,
    ShellOptions,
    _not_bool,
    _numbers_as_text,
    _on_off,
    check_args,
    check_env,
    check_option_env,
    check_preload,
    check_text,
    parameter_error,
    parameter_kind,
)
