"""CPU targets with archspec: one spelling for every name, and what a host can run. Pure.

Variants name their CPU target in many ways (`arm64`, `amd64`, archspec's `neoverse_v1`, GCC's
`-march=neoverse-v1`, `znver3`, `icelake-server`, `cortex-a53`); clusters name their microarchitecture.
`normalize` maps a name to an archspec microarchitecture where archspec knows it; `target` also
knows the GCC `-march`/`-mcpu` names archspec lacks (kept under their own name, with their family and
the instruction-set features GCC documents for them) and resolves `generic` and `native` against the
architecture of the machine in question. `family` is the one owner of the architecture spellings
(`amd64` = `x86_64`, `arm64` = `aarch64`); `can_run` and `distance` answer what a one-hot cannot see.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import archspec.cpu

#: Container platform names and other spellings of the architecture families.
_FAMILIES = {"amd64": "x86_64", "x86-64": "x86_64", "x64": "x86_64", "x86_64": "x86_64",
             "arm64": "aarch64", "aarch_64": "aarch64", "aarch64": "aarch64",
             "ppc64le": "ppc64le", "ppc64": "ppc64", "riscv64": "riscv64"}
_PLATFORMS = {"x86_64": "amd64", "aarch64": "arm64"}
#: GCC architecture-level spellings; archspec's compiler table names them only inside flag strings.
_GCC_LEVELS = {"x86-64": "x86_64", "x86-64-v2": "x86_64_v2", "x86-64-v3": "x86_64_v3", "x86-64-v4": "x86_64_v4",
               "armv8-a": "aarch64", "armv8.1-a": "armv8.1a", "armv8.2-a": "armv8.2a", "armv8.3-a": "armv8.3a",
               "armv8.4-a": "armv8.4a", "armv8.5-a": "armv8.5a", "armv8.6-a": "armv8.6a", "armv9-a": "armv9.0a"}
#: GCC names of targets archspec models under another GCC spelling: archspec's one `icelake` is
#: GCC's icelake-client and icelake-server; the others are GCC's older aliases of the same -march.
_GCC_ALIASES = {"icelake-server": "icelake", "core-avx2": "haswell", "core-avx-i": "ivybridge",
                "corei7-avx": "sandybridge", "corei7": "nehalem", "barcelona": "k10", "znver5": "zen5",
                "raptorlake": "alderlake", "knl": "mic_knl", "thunderx2t99": "thunderx2"}

# Instruction-set features (archspec's /proc/cpuinfo spellings) a compiler may emit code for by itself.
# Others (rdrand, adx, sha, aes, cpuid, ...) need intrinsics, and archspec's host lists miss many of
# them (its zen4 has no adx), so they do not decide whether a build can run.
_X86_CODEGEN = re.compile(r"^(sse|ssse3|avx|fma|f16c|bmi|abm|popcnt|movbe|xop|tbm|lzcnt)")
_ARM_CODEGEN = re.compile(r"^(fp|asimd|sve|atomics|lrcpc|ilrcpc|i8mm|bf16|fcma|jscvt|frint|fphp|dcpop)")

_X86_V2 = ("mmx", "sse", "sse2", "sse3", "ssse3", "sse4_1", "sse4_2", "popcnt", "cx16", "lahf_lm")
_ARMV8 = ("fp", "asimd", "crc32")
_ARMV82 = (*_ARMV8, "atomics", "asimdrdm", "fphp", "asimdhp", "dcpop")
_ARMV84 = (*_ARMV82, "lrcpc", "ilrcpc", "asimddp", "asimdfhm", "fcma", "jscvt", "flagm", "uscat")
_ARMV9 = (*_ARMV84, "sve", "sve2", "i8mm", "bf16", "svei8mm", "svebf16", "frint", "sb")


@dataclass(frozen=True)
class _GccOnly:
    family: str
    vendor: str
    features: tuple[str, ...]


#: GCC -march/-mcpu names archspec 0.2 has no target for, with the features GCC documents for each:
#: https://gcc.gnu.org/onlinedocs/gcc/x86-Options.html and
#: https://gcc.gnu.org/onlinedocs/gcc/AArch64-Options.html (the architecture and extensions each
#: -mcpu implies, as listed in GCC's aarch64-cores.def).
_GCC_ONLY = {
    # AMD low-power cores: btver1 "SSSE3, SSE4A, CX16, ABM"; btver2 adds "MOVBE, F16C, BMI, AVX, PCLMUL,
    # AES, SSE4.1, SSE4.2"
    "btver1": _GccOnly("x86_64", "AuthenticAMD", ("mmx", "sse", "sse2", "sse3", "ssse3", "sse4a", "abm", "cx16")),
    "btver2": _GccOnly("x86_64", "AuthenticAMD", (*_X86_V2, "sse4a", "abm", "movbe", "f16c", "bmi1", "avx",
                                                  "pclmulqdq", "aes", "xsave")),
    "cooperlake": _GccOnly("x86_64", "GenuineIntel", ()),  # cascadelake + AVX512BF16: filled below
    "tigerlake": _GccOnly("x86_64", "GenuineIntel", ()),  # icelake + MOVDIRI, MOVDIR64B, AVX512VP2INTERSECT
    "rocketlake": _GccOnly("x86_64", "GenuineIntel", ()),  # icelake client without SGX
    "graniterapids": _GccOnly("x86_64", "GenuineIntel", ()),  # sapphirerapids + AMX-FP16, PREFETCHI
    "emeraldrapids": _GccOnly("x86_64", "GenuineIntel", ()),  # sapphirerapids
    "bonnell": _GccOnly("x86_64", "GenuineIntel", ("mmx", "sse", "sse2", "sse3", "ssse3", "movbe", "cx16")),
    "silvermont": _GccOnly("x86_64", "GenuineIntel", (*_X86_V2, "movbe", "aes", "pclmulqdq", "rdrand")),
    "goldmont": _GccOnly("x86_64", "GenuineIntel", (*_X86_V2, "movbe", "aes", "pclmulqdq", "rdrand", "sha_ni",
                                                    "rdseed", "xsave")),
    "tremont": _GccOnly("x86_64", "GenuineIntel", (*_X86_V2, "movbe", "aes", "pclmulqdq", "rdrand", "sha_ni",
                                                   "rdseed", "xsave", "gfni")),
    "k8": _GccOnly("x86_64", "AuthenticAMD", ("mmx", "sse", "sse2", "3dnow", "3dnowext")),
    # AArch64 cores: armv8-a + CRC (crypto only with +crypto)
    "cortex-a35": _GccOnly("aarch64", "ARM", _ARMV8),
    "cortex-a53": _GccOnly("aarch64", "ARM", _ARMV8),
    "cortex-a57": _GccOnly("aarch64", "ARM", _ARMV8),
    "cortex-a73": _GccOnly("aarch64", "ARM", _ARMV8),
    "thunderx": _GccOnly("aarch64", "Cavium", _ARMV8),
    "xgene1": _GccOnly("aarch64", "APM", ("fp", "asimd")),
    # armv8.2-a + F16, RCPC, DOTPROD (cortex-x1, a77, a78 also SSBS and PROFILE, no new instructions)
    **{name: _GccOnly("aarch64", "ARM", (*_ARMV82, "lrcpc", "asimddp"))
       for name in ("cortex-a55", "cortex-a75", "cortex-a76", "cortex-a76ae", "cortex-a77", "cortex-a78",
                    "cortex-a78ae", "cortex-a78c", "cortex-x1", "cortex-x1c", "cortex-a65", "neoverse-e1")},
    "tsv110": _GccOnly("aarch64", "HiSilicon", (*_ARMV82, "asimddp")),
    "neoverse-512tvb": _GccOnly("aarch64", "ARM", (*_ARMV84, "sve", "i8mm", "bf16", "svei8mm", "svebf16")),
    # armv9-a cores: SVE2, I8MM, BF16 and the rest of armv8.6-a
    **{name: _GccOnly("aarch64", "ARM", _ARMV9)
       for name in ("cortex-a510", "cortex-a710", "cortex-a715", "cortex-x2", "cortex-x3", "cortex-x4",
                    "neoverse-n3", "neoverse-v3")},
}


def _extended(base: str, extra: tuple[str, ...], vendor: str = "GenuineIntel") -> _GccOnly:
    return _GccOnly("x86_64", vendor, tuple(sorted(archspec.cpu.TARGETS[base].features | set(extra))))


_GCC_ONLY.update({
    "cooperlake": _extended("cascadelake", ("avx512_bf16",)),
    "tigerlake": _extended("icelake", ("movdiri", "movdir64b", "avx512_vp2intersect")),
    "rocketlake": _extended("icelake", ()),
    "graniterapids": _extended("sapphirerapids", ("amx_fp16", "prefetchi")),
    "emeraldrapids": _extended("sapphirerapids", ()),
})

#: Build targets that are not a CPU: resolved against the architecture of the machine in question.
GENERIC, NATIVE = "generic", "native"


@dataclass(frozen=True)
class Target:
    """A CPU target as the planner understands it."""

    name: str  #: archspec's name, else the GCC name, else `native`
    family: str | None
    vendor: str | None
    features: frozenset[str]
    archspec: bool  #: archspec knows it (ancestry and `normalize` apply)


@functools.cache
def _gcc_names() -> dict[str, str]:
    """GCC -march/-mcpu names -> archspec names, from archspec's compiler table (every GCC version)."""
    names: dict[str, str] = {**_GCC_LEVELS, **_GCC_ALIASES}
    for name, target in archspec.cpu.TARGETS.items():
        for entry in target.compilers.get("gcc", []):
            if "name" in entry:
                names.setdefault(entry["name"], name)
            # -mcpu names a core; -march names one where it is not an architecture level (armv8.2-a ...)
            for match in re.finditer(r"-m(arch|cpu)=([\w.+-]+)", entry.get("flags", "").replace("{name}", "")):
                spelled = match.group(2).split("+")[0]
                if spelled and (match.group(1) == "cpu" or not spelled.startswith("armv")):
                    names.setdefault(spelled, name)
    return names


def _key(name: object) -> str:
    return str(name).strip().lower().removeprefix("-march=").removeprefix("-mcpu=").removeprefix("-mtune=")


@functools.cache
def normalize(name: str | None, arch: str | None = None) -> str | None:
    """The archspec name of a CPU target in any common spelling, or None when archspec does not know it.

    `generic` is the baseline of `arch`'s family (None without one); `native` is never an archspec name.
    """
    if not name:
        return None
    key = _key(name)
    if key == GENERIC:
        return family(arch)
    if key in _FAMILIES:
        return _FAMILIES[key]
    if key in archspec.cpu.TARGETS:
        return key
    if key.replace("-", "_") in archspec.cpu.TARGETS:
        return key.replace("-", "_")
    return _gcc_names().get(key)


@functools.cache
def target(name: str | None, arch: str | None = None) -> Target | None:
    """What the planner knows of a CPU target name, or None when it is no name GCC or archspec knows.

    `arch` is the architecture of the machine in question (a family, platform or microarchitecture
    name): `generic` resolves to its baseline, `native` to "built for that machine, features unknown".
    """
    if not name:
        return None
    key = _key(name)
    if key == NATIVE:
        return Target(NATIVE, family(arch), None, frozenset(), False)
    known = normalize(key, arch)
    if known is not None:
        micro = archspec.cpu.TARGETS[known]
        return Target(known, str(micro.family), str(micro.vendor), frozenset(micro.features), True)
    if key in _GCC_ONLY:
        gcc = _GCC_ONLY[key]
        return Target(key, gcc.family, gcc.vendor, frozenset(gcc.features), False)
    return None


def known(name: str | None) -> bool:
    """A CPU target name archspec or GCC knows (`generic` and `native` included)."""
    return bool(name) and (_key(name) in (GENERIC, NATIVE) or target(name) is not None)


def family(name: str | None, arch: str | None = None) -> str | None:
    """The architecture family (x86_64, aarch64, ppc64le, ...) of a target, platform or family name.

    The one place where `amd64` means `x86_64` and `arm64` means `aarch64`; `generic` and `native`
    take the family of `arch`. None when unknown.
    """
    if not name:
        return None
    key = _key(name)
    if key in _FAMILIES:
        return _FAMILIES[key]
    if key in (GENERIC, NATIVE):
        return family(arch) if arch and _key(arch) not in (GENERIC, NATIVE) else None
    found = target(key)
    return found.family if found else None


def _codegen(found: Target) -> frozenset[str]:
    pattern = _ARM_CODEGEN if found.family == "aarch64" else _X86_CODEGEN
    return frozenset(name for name in found.features if pattern.match(name))


def can_run(host: str | None, build: str | None) -> bool | None:
    """Can a host of microarchitecture `host` run code built for `build`? None when unknown.

    True when the host is the build's target or an archspec descendant of it; False when it is of
    another family or lacks an instruction-set extension the build may use; otherwise (another
    branch of archspec's tree whose features cover the build's, a GCC name archspec lacks, `native`)
    None: measurements and the classifier decide.
    """
    host_t = target(host)
    if host_t is None:
        return None
    build_t = target(build, host_t.family)
    if build_t is None or build_t.family is None:
        return None
    if build_t.family != host_t.family:
        return False
    if build_t.name == NATIVE:
        return None
    if build_t.name == host_t.name:
        return True
    if build_t.archspec and host_t.archspec:
        host_micro, build_micro = archspec.cpu.TARGETS[host_t.name], archspec.cpu.TARGETS[build_t.name]
        if build_micro in host_micro.ancestors:
            return True
    if build_t.archspec and not build_t.features:  # a family baseline (aarch64, armv8.2a): no extension known
        return True if build_t.vendor == "generic" and build_t.name == host_t.family else None
    return None if _codegen(build_t) <= host_t.features else False


def distance(host: str | None, build: str | None) -> int | None:
    """Generations between a host and a build it runs: 0 same, >0 host newer, -1 cannot run, None unknown."""
    verdict = can_run(host, build)
    if verdict is None:
        return None
    if not verdict:
        return -1
    host_name, build_name = normalize(host), normalize(build, host)
    if host_name is None or build_name is None or host_name == build_name:
        return 0
    return _depth(archspec.cpu.TARGETS[host_name]) - _depth(archspec.cpu.TARGETS[build_name])


def _depth(micro: archspec.cpu.Microarchitecture) -> int:
    return len(micro.ancestors)


@functools.cache
def separation(one: str | None, other: str | None) -> int | None:
    """Steps between two microarchitectures through their nearest common ancestor in archspec's tree
    (0: the same; zen3 and zen4: 1; cascadelake and broadwell: 3); None when either is unknown to
    archspec or they share no ancestor (another family)."""
    first, second = normalize(one), normalize(other)
    if first is None or second is None:
        return None
    up_first, up_second = _steps_up(first), _steps_up(second)
    common = set(up_first) & set(up_second)
    return min(up_first[name] + up_second[name] for name in common) if common else None


def _steps_up(name: str) -> dict[str, int]:
    """Each ancestor of a microarchitecture (itself included) with the fewest parent steps to it."""
    steps, frontier, level = {name: 0}, [archspec.cpu.TARGETS[name]], 0
    while frontier:
        level += 1
        frontier = [parent for micro in frontier for parent in micro.parents if parent.name not in steps]
        for parent in frontier:
            steps.setdefault(parent.name, level)
    return steps


def vendor(name: str | None) -> str | None:
    found = target(name)
    return found.vendor if found else None


def platform_name(name: str | None, arch: str | None = None) -> str | None:
    """Container platform spelling of a target's family: amd64 or arm64 (others unchanged)."""
    fam = family(name, arch)
    return _PLATFORMS.get(fam, fam) if fam else None


def vector_width(name: str | None, host: str | None = None) -> int | None:
    """Widest vector extension a build for `name` uses: x86 0 none, 1 SSE4.2, 2 AVX, 3 AVX2, 4 AVX-512;
    Arm 1 NEON, 2 SVE, 3 SVE2. `native` and `generic` are resolved against `host`; None when unknown."""
    found = target(name, host)
    if found is not None and found.name == NATIVE:
        found = target(host)
    if found is None:
        return None
    features = found.features
    if found.family == "aarch64":
        return 3 if "sve2" in features else 2 if "sve" in features else 1
    return next((level for level, flag in ((4, "avx512f"), (3, "avx2"), (2, "avx"), (1, "sse4_2")) if flag in features),
                0)
