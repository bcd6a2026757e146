"""Values a user writes that reach command lines and environments, and the checks they pass. Pure.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
)

Scalar = str | int | float | bool
NAME = r"^[a-z0-9][a-z0-9_.-]*$"
#: Names become directory and file names (a variant's prefix), which the file system caps at 255 bytes.
NAME_MAX = 64
Name = Annotated[str, Field(pattern=NAME, max_length=NAME_MAX)]
#: Repeats per point, in the file and on the command line.
MAX_REPEATS = 100
#: Points one sweep's option matrix may expand to: refused before expanding, not after filling memory.
MAX_POINTS = 100_000
#: what a shell (and execve) takes as an environment variable name
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: a string workload parameter: one word of the app's input language (`-v name value`) that cannot start a
#: switch, quote, comment or add a command
PARAMETER_WORD = re.compile(r"[A-Za-z0-9_.,:/+@%=][A-Za-z0-9_.,:/+@%=-]*")


def check_env(env: dict[str, str]) -> dict[str, str]:
    """Environment given to a launch (experiment options, variant recipes, imported `option.env`)."""
    for name, value in env.items():
        if not ENV_NAME.fullmatch(name):
            raise ValueError(f"environment variable name {name!r} is not [A-Za-z_][A-Za-z0-9_]*")
        if "\0" in value:
            raise ValueError(f"the value of {name} holds a NUL byte")
    return env


#: environment variables whose value the dynamic loader or a shell runs as code: never a launch option's
#: (a preloaded library has its own option, `preload`, checked as one word)
CODE_ENV = {"LD_PRELOAD": "use the `preload` option", "LD_AUDIT": "the dynamic loader runs the library it names",
            "BASH_ENV": "bash runs the file it names", "ENV": "sh runs the file it names",
            "PROMPT_COMMAND": "bash runs it", "SHELLOPTS": "it changes how every bash behaves",
            "PYTHONSTARTUP": "python runs the file it names", "PERL5OPT": "perl takes it as options"}


#: a launch option's or rule's environment value: a string parameter's word (`PARAMETER_WORD`), with `^` too (MPI's
#: "all but": `OMPI_MCA_btl: ^openib`), or empty
ENV_VALUE = re.compile(r"(?:[A-Za-z0-9_.,:/+@%=^][A-Za-z0-9_.,:/+@%=^-]*)?")
#: `,NAME=` in a value: Singularity's and Apptainer's `--env K=V` split at commas and read it as one more variable,
#: past the name check (apptainer/singularity#6088)
_ENV_IN_VALUE = re.compile(r",[A-Za-z_][A-Za-z0-9_]*=")


def check_option_env(env: dict[str, str]) -> dict[str, str]:
    """Environment a launch option or rule adds: names as `check_env`, and none the loader or a shell runs; values
    checked as string parameters are (`ENV_VALUE`)."""
    check_env(env)
    for name, value in env.items():
        if name in CODE_ENV or name.startswith("BASH_FUNC_"):
            raise ValueError(f"environment variable {name} is not a launch option's: "
                             f"{CODE_ENV.get(name, 'bash runs it as a function')}")
        if not ENV_VALUE.fullmatch(value):
            raise ValueError(f"the value of {name}, {value!r}, is not one word of letters, digits and "
                             "_ . , : / + @ % = ^ - not starting with -")
        if _ENV_IN_VALUE.search(value):
            raise ValueError(f"the value of {name}, {value!r}, sets another variable (',NAME=' is how a container "
                             "runtime's --env separates them); give each variable its own key")
    return env


def check_args(args: tuple[str, ...]) -> tuple[str, ...]:
    """App flags (`args` of an option, a rule): flags, and values each one word as a string parameter's
    (`PARAMETER_WORD`): what reaches the app's command line is checked as what reaches its input. Which flags,
    and how many values each takes, is the app definition's (apps.Definition.check_args, in `_check_flags`)."""
    for word in args:
        if not (word.startswith("-") and not word[1:2].isdigit()) and not PARAMETER_WORD.fullmatch(word):
            raise ValueError(f"app flag value {word!r} is not one word of letters, digits and _ . , : / + @ % = -")
    return args


def check_preload(value: str | None) -> str | None:
    """A library to preload (LD_PRELOAD): paths as a string parameter's words, colon-separated."""
    if value is not None and not PARAMETER_WORD.fullmatch(value):
        raise ValueError(f"preload {value!r} is not a library path: one word of letters, digits and "
                         "_ . , : / + @ % = - not starting with -")
    return value


def check_text(value: str | None) -> str | None:
    if value is not None and "\0" in value:
        raise ValueError(f"{value!r} holds a NUL byte")
    return value


def parameter_kind(default: Scalar) -> str:
    """A workload parameter's kind is its default's: number, string or boolean."""
    if isinstance(default, bool):
        return "boolean"
    return "string" if isinstance(default, str) else "number"


def parameter_error(name: str, default: Scalar, value: Any) -> str | None:
    """Why `value` cannot be given to the workload parameter `name` (passed to the app, e.g. as `-v name value`)."""
    kind = parameter_kind(default)
    if kind == "boolean":
        return None if isinstance(value, bool) else f"{name} is a boolean (default {default!r}); got {value!r}"
    if kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return None
        return f"{name} is a number (default {default!r}); got {value!r}"
    if isinstance(value, str) and PARAMETER_WORD.fullmatch(value):
        return None
    return (f"{name} is a string (default {default!r}): one word of letters, digits and _ . , : / + @ % = - "
            f"not starting with -; got {value!r}")

#: Launch option names every sweep may vary; workload parameters (x, y, z, steps, ...) may be varied too.


def _not_bool(value: Any) -> Any:
    # pydantic reads `true` as 1 for an int field; YAML's `tasks: true` is a mistake, not one task
    if isinstance(value, bool):
        raise ValueError(f"a whole number is needed, not {str(value).lower()}")
    return value


Count = Annotated[int, BeforeValidator(_not_bool)]


def _on_off(value: Any) -> Any:
    # YAML 1.1 reads an unquoted `off` as false and `on` as true; `pmi: off` and `affinity: off` mean the words
    return ("on" if value else "off") if isinstance(value, bool) else value


def _numbers_as_text(value: Any) -> Any:
    # a Flux shell option's value is text on the command line: `pmi-simple.exchange.k: 2` means "2"
    if isinstance(value, dict):
        return {key: str(item) if isinstance(item, int | float) and not isinstance(item, bool) else item
                for key, item in value.items()}
    return value


Affinity = Annotated[Literal["default", "on", "per-task", "off"], BeforeValidator(_on_off)]
Pmi = Annotated[str | None, BeforeValidator(_on_off)]
ShellOptions = Annotated[dict[str, str], BeforeValidator(_numbers_as_text)]
