"""`just mutants`: mutation testing of the guarantee code, its score per module, the guard
harness and the sampled CI step (docs/testing.md says what each proves).

    python -m tests.mutation.mutants [MODULE …]       mutmut on these modules (default: all)
    python -m tests.mutation.mutants MODULE --function F --tests FILE …
                                                      some functions, against chosen tests
    python -m tests.mutation.mutants --scores         the score table of the last run
    python -m tests.mutation.mutants --guards [MODULE …]   drop each WHERE condition
    python -m tests.mutation.mutants --sample [--count N] [--seed S] [--budget SECONDS]

A MODULE is a path (``service/domain/states.py``) or a dotted name (``service.domain.states``).
mutmut (configured in ``[tool.mutmut]`` of pyproject.toml) copies the tree into
``mutants/``. For the unit tier mutmut also runs the mutants (forked from one pytest,
each against the unit tests that reach the mutated function). A run that includes
integration tests instead runs each mutant in a fresh pytest of the chosen files
(:func:`fresh`): mutmut's forked children share the test run's identity, so two of them
at once use the same databases and queues (docs/testing.md, "Mutation testing").
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from tests.mutation import guards

if TYPE_CHECKING:
    from collections.abc import Iterable

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: One mutant's tests: stop at the first failure, Hypothesis deterministic (plugin.py).
PYTEST = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
PYTEST += ["-p", "tests.mutation.plugin"]

#: mutmut's exit codes that count as a kill (a test failed, errored or hung).
KILLED = {1, 3, 24, -24, 36, 37, 152, 255}
#: Not run at all (outside the chosen modules, or skipped): not part of the score.
NOT_RUN = {None, 34}
#: What :func:`fresh` stores for a mutant whose pytest hung past its deadline (mutmut's
#: "timeout", a kill), and for one whose pytest neither passed nor failed (an error:
#: mutmut's "suspicious", not a kill, so it shows among the survivors).
TIMED_OUT, ERRORED = 36, 35

#: The test files a database module is measured against when no ``--tests`` are named:
#: those that exercise its in-scope functions, small enough for a run of minutes.
MEASURE_TESTS: dict[str, list[str]] = {
    "service/db/transitions.py": [
        "tests/integration/db/test_transitions.py",
        "tests/integration/work/test_guarantees.py",
    ],
    "service/db/finders.py": [
        "tests/integration/db/test_finders.py",
        "tests/integration/db/test_trees.py",
        "tests/integration/fleet/test_sweeps.py",
    ],
    "service/work/claim.py": ["tests/integration/work/test_claim.py"],
    "service/work/lease.py": ["tests/integration/work/test_lease.py"],
    "service/work/outcomes.py": ["tests/integration/work/test_outcomes.py"],
    "service/intake/admission.py": [
        "tests/integration/intake/test_admission.py",
        "tests/integration/intake/test_admission_replay.py",
    ],
}

#: Fast tests for each module, for the sampled CI step (the full run lets mutmut choose).
#: The modules whose full run has been measured; a database module joins when its has
#: (``db/finders.py`` and ``db/transitions.py`` have), so that CI fails on a new survivor,
#: not on an old one.
SAMPLE_TESTS: dict[str, list[str]] = {
    "service/domain/states.py": ["tests/unit/domain/test_states.py"],
    "service/domain/egress.py": [
        "tests/unit/domain/test_egress.py",
        "tests/unit/domain/test_guarantee_rules.py",
    ],
    "service/domain/idempotency.py": [
        "tests/unit/domain/test_idempotency.py",
        "tests/unit/domain/test_admission_rules.py",
    ],
    "service/domain/quotas.py": [
        "tests/unit/domain/test_quotas.py",
        "tests/unit/domain/test_guarantee_rules.py",
    ],
    "service/domain/ratelimit.py": [
        "tests/unit/domain/test_ratelimit.py",
        "tests/unit/domain/test_admission_rules.py",
    ],
    "service/webhooks/signing.py": ["tests/unit/webhooks/test_signing.py"],
    "service/api/files.py": ["tests/unit/api/test_files.py"],
    # Since 2026-12-01: measured whole, its survivors listed; its own tests first, so a
    # killed mutant stops in seconds.
    "service/db/finders.py": MEASURE_TESTS["service/db/finders.py"],
    "service/db/transitions.py": MEASURE_TESTS["service/db/transitions.py"],
    "service/work/claim.py": MEASURE_TESTS["service/work/claim.py"],
    "service/work/lease.py": MEASURE_TESTS["service/work/lease.py"],
    "service/intake/admission.py": MEASURE_TESTS["service/intake/admission.py"],
    "service/work/outcomes.py": MEASURE_TESTS["service/work/outcomes.py"],
}


def guarantee_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["mutmut"]["only_mutate"])


def as_path(module: str) -> str:
    """``service.domain.states`` or ``service/domain/states.py`` → the latter."""
    if module.endswith(".py"):
        return module
    return module.replace(".", "/") + ".py"


def as_dotted(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


#: The tests mutmut may choose from, per tier: the pure modules need only the unit tier.
TIERS = {"unit": ["tests/unit"], "fast": ["tests/unit", "tests/integration"]}


#: Tests that read the source's structure rather than run it: mutmut's copy rewrites every
#: function into variants and a trampoline, so they fail there whatever the mutant.
STRUCTURE_TESTS = ["tests/unit/work/test_ending.py", "tests/unit/mutation"]


def workdir(tier: str) -> Path:
    """Where mutmut runs for a tier: a copy of the tree whose mutmut config selects the
    tier's tests (mutmut reads its config only from the working directory)."""
    return ROOT / ".mutants" / (tier + os.environ.get("MUTANTS_LABEL", ""))


def prepare(tier: str, ignore: list[str], tests: list[str] | None = None) -> Path:
    """A fresh copy for ``tier``; ``tests`` (files) replace the tier's own selection, for a
    database module whose full fast tier is hours of runs (docs/testing.md says the scope)."""
    work = workdir(tier)
    if work.exists():
        shutil.rmtree(work)
    guards.copy_tree(work)
    config = (work / "pyproject.toml").read_text()
    chosen = re.sub(
        r"^pytest_add_cli_args_test_selection = .*$",
        f"pytest_add_cli_args_test_selection = {json.dumps(tests or TIERS[tier])}",
        config,
        flags=re.M,
    )
    extra = "".join(f', "--ignore={p}"' for p in [*STRUCTURE_TESTS, *ignore])
    chosen = re.sub(r"^(pytest_add_cli_args = \[.*)\]$", rf"\1{extra}]", chosen, flags=re.M)
    (work / "pyproject.toml").write_text(chosen)
    return work


def results(path: str, tier: str) -> dict[str, int | None]:
    meta = workdir(tier) / "mutants" / f"{path}.meta"
    if not meta.exists():
        return {}
    exit_codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    return exit_codes


#: Modules of which only some functions are guarantee code: the score counts those.
SCOPE: dict[str, tuple[str, ...]] = {
    # Range parsing; the streaming response around it is the API's (integration tests).
    "service/api/files.py": ("parse_range",),
    # Signing and key rotation; the event body is the payload, not the signature.
    "service/webhooks/signing.py": (
        "new_secret",
        "secret_key",
        "sign",
        "headers",
        "signing_secrets",
    ),
}


def in_scope(path: str, name: str) -> bool:
    functions = SCOPE.get(path)
    if functions is None:
        return True
    short = name.rpartition(".")[2].split("__mutmut_")[0]
    return short.removeprefix("x_").rpartition("ǁ")[2] in functions


def scores(modules: list[str], tier: str) -> list[tuple[str, int, int, list[str]]]:
    """Per module (its in-scope functions): killed, tried, and the survivors' names."""
    table = []
    for path in modules:
        mine = {k: v for k, v in results(path, tier).items() if in_scope(path, k)}
        tried = {k: v for k, v in mine.items() if v not in NOT_RUN}
        killed = sum(1 for v in tried.values() if v in KILLED)
        survivors = sorted(k for k, v in tried.items() if v not in KILLED)
        table.append((path, killed, len(tried), survivors))
    return table


def print_scores(modules: list[str], tier: str) -> None:
    print(f"{'module':36} {'killed':>7} {'tried':>6} {'score':>7}  (tier: {tier})")
    for path, killed, tried, survivors in scores(modules, tier):
        score = f"{100 * killed / tried:.1f}%" if tried else "-"
        print(f"{path:36} {killed:7} {tried:6} {score:>7}")
        for name in survivors:
            print(f"    survived: {name}")


def mutmut(
    modules: list[str],
    tier: str,
    ignore: list[str],
    tests: list[str] | None = None,
    functions: list[str] | None = None,
    mutants: list[str] | None = None,
) -> int:
    """Run mutmut on ``modules`` (only the module-level ``functions``, if named); a run
    that includes integration tests goes to :func:`fresh` instead (which can also take
    single ``mutants``, to re-run the few a test was written for)."""
    if tests is None and all(m in MEASURE_TESTS for m in modules):
        tests = sorted({t for m in modules for t in MEASURE_TESTS[m]})
    selection = tests or TIERS[tier]
    if any(t.startswith("tests/integration") for t in selection):
        if tests is None:
            sys.exit(
                "the integration tier runs each mutant in a fresh pytest of chosen files: "
                "name them with --tests (every mutant against the whole tier takes days)"
            )
        return fresh(modules, tier, ignore, tests, functions, mutants)
    if mutants:
        sys.exit("--mutant needs the fresh runner: a database module, or integration --tests")
    work = prepare(tier, ignore, tests)
    if functions:
        # matches the function (mutmut picks its tests by this) and its mutants
        patterns = [f"{as_dotted(p)}.x_{f}*" for p in modules for f in functions]
    else:
        patterns = [f"{as_dotted(p)}.*" for p in modules]
    jobs = os.environ.get("MUTANTS_JOBS", "2")
    began = time.monotonic()
    code = subprocess.run(
        [str(BIN / "mutmut"), "run", "--max-children", jobs, *patterns], cwd=work, check=False
    ).returncode
    print(f"mutmut: {time.monotonic() - began:.0f} s")
    print_scores(modules, tier)
    return code


def choose(
    path: str, names: Iterable[str], functions: list[str] | None, mutants: list[str] | None
) -> list[str]:
    """The in-scope mutants of ``path`` to run, in order: those of the ``functions`` (globs)
    and ``mutants`` (short names, ``x_heartbeat__mutmut_5``) when named."""
    return [
        name
        for name in sorted(names, key=lambda n: (n.split("__mutmut_")[0], len(n), n))
        if in_scope(path, name)
        and (not functions or any(fnmatch.fnmatchcase(_function_of(name), f) for f in functions))
        and (not mutants or name.rpartition(".")[2] in mutants)
    ]


def _function_of(name: str) -> str:
    """``service.db.transitions.x_claim__mutmut_3`` → ``claim`` (a method: its name)."""
    mangled = name.rpartition(".")[2].split("__mutmut_")[0]
    return mangled.removeprefix("x_").rpartition("ǁ")[2]


#: The fresh pytests running now (each its own process group), ended with the run.
_LIVE: set[subprocess.Popen[bytes]] = set()


def _end_live(signum: int, frame: object) -> None:
    """SIGTERM or Ctrl-C: end the running pytests (their own sessions) too, then stop."""
    for proc in list(_LIVE):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    os._exit(128 + signum)


def _pytest(tests: list[str], ignore: list[str], mutant: str, cwd: Path, limit: float) -> int:
    """One fresh pytest of ``tests`` with the trampoline pointed at ``mutant``; its exit
    code, or :data:`TIMED_OUT` (its process group killed) after ``limit`` seconds."""
    args = [*PYTEST, *tests, *(f"--ignore={p}" for p in ignore)]
    env = {**os.environ, "MUTANT_UNDER_TEST": mutant}
    with subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    ) as proc:
        _LIVE.add(proc)
        try:
            return proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return TIMED_OUT
        finally:
            _LIVE.discard(proc)


def fresh(
    modules: list[str],
    tier: str,
    ignore: list[str],
    tests: list[str],
    functions: list[str] | None = None,
    mutants: list[str] | None = None,
) -> int:
    """Each mutant in a fresh pytest of ``tests``, as the CI sample runs them.

    Why not mutmut's forked children: they are forked from the process that ran the
    stats, so they share its ``RUN_ID`` and fixture counters (tests/support/postgres.py,
    tests/conftest.py). Two children at once create and drop the same databases, the
    same template and the same queues, and fail each other: mutmut reports a kill the
    mutant did not cause. And a statement built at import (``_CLAIM`` in
    ``db/transitions.py``) was built in that parent without any mutant, so its mutants
    never take effect in a child. A fresh process per mutant imports the mutated module
    with ``MUTANT_UNDER_TEST`` already set and names its databases and queues itself.

    mutmut still writes the mutants (:func:`generate`); the verdicts go into its
    ``.meta`` files, so ``--scores`` and ``mutmut show`` read them as usual.
    """
    signal.signal(signal.SIGTERM, _end_live)
    signal.signal(signal.SIGINT, _end_live)
    work = prepare(tier, ignore, tests)
    subprocess.run(
        [sys.executable, "-c", "from tests.mutation.mutants import generate; generate()"],
        cwd=work,
        check=True,
        capture_output=True,
    )
    here = work / "mutants"
    metas = {p: here / f"{p}.meta" for p in modules}
    chosen = [
        (path, name)
        for path, meta in metas.items()
        for name in choose(
            path, json.loads(meta.read_text())["exit_code_by_key"], functions, mutants
        )
    ]
    skip = [*STRUCTURE_TESTS, *ignore]
    began = time.monotonic()
    clean = _pytest(tests, skip, "", here, 1800)
    took = time.monotonic() - began
    print(f"clean run: pytest exit {clean} in {took:.0f} s", flush=True)
    if clean != 0:
        print("the chosen tests fail without any mutant: nothing to measure")
        return 1
    if _pytest(tests, skip, "fail", here, 1800) == 0:
        print("the chosen tests pass with every mutated function raising: they reach none")
        return 1
    limit = max(120.0, 3 * took + 60)
    jobs = int(os.environ.get("MUTANTS_JOBS", "2"))
    print(f"fresh: {len(chosen)} mutants, {jobs} at a time, {limit:.0f} s each at most")

    def one(item: tuple[str, str]) -> tuple[str, str, int, float]:
        start = time.monotonic()
        code = _pytest(tests, skip, item[1], here, limit)
        return item[0], item[1], code, time.monotonic() - start

    data = {p: json.loads(meta.read_text()) for p, meta in metas.items()}
    with ThreadPoolExecutor(jobs) as pool:
        for path, name, code, spent in pool.map(one, chosen):
            # pytest's 2 (an error while collecting) or 4 (a conftest that fails to import)
            # after a clean run that passed: the mutated module, or one importing it, no
            # longer imports, which any use of it would notice.
            data[path]["exit_code_by_key"][name] = {
                0: 0,
                1: 1,
                2: 1,
                4: 1,
                TIMED_OUT: TIMED_OUT,
            }.get(code, ERRORED)
            metas[path].write_text(json.dumps(data[path], indent=4))  # a stopped run keeps these
            shown = {
                0: "SURVIVED",
                1: "killed",
                2: "killed (import)",
                4: "killed (import)",
                TIMED_OUT: "timeout",
            }.get(code, f"error (pytest exit {code})")
            print(f"{shown:10} {spent:6.1f}s  {name}", flush=True)
    print(f"fresh: {time.monotonic() - began:.0f} s")
    print_scores(modules, tier)
    return 0


def generate() -> None:
    """Write mutmut's mutants into ``./mutants`` without running any test (mutmut's own
    ``run`` would first run the whole selection once, for its coverage map)."""
    from mutmut.__main__ import create_mutants
    from mutmut.mutation.trampoline import set_mutant_under_test
    from mutmut.utils.file_utils import (
        copy_also_copy_files,
        copy_src_dir,
        setup_source_paths,
    )

    set_mutant_under_test("mutant_generation")
    Path("mutants").mkdir(exist_ok=True)
    copy_src_dir()
    copy_also_copy_files()
    setup_source_paths()
    create_mutants(int(os.environ.get("MUTANTS_JOBS", "2")))


def known_survivors(text: str | None = None) -> set[str]:
    """Mutants listed in docs/testing.md as equivalent: each full name, and each ``…_N``
    after one on the same line (the same function's mutant number N)."""
    if text is None:
        text = (ROOT / "docs" / "testing.md").read_text()
    names: set[str] = set()
    for line in text.splitlines():
        full = re.findall(r"`(service\.[\w.ǁ]+__mutmut_)(\d+)`", line)
        names.update(prefix + number for prefix, number in full)
        if full:
            prefix = full[0][0]
            names.update(prefix + n for n in re.findall(r"`…_(\d+)`", line))
    return names


#: Seconds one sampled mutant's pytest may take (the slowest clean run is about 30 s).
SAMPLE_LIMIT = 120.0


def sample(count: int, seed: int, budget: float) -> int:
    """Run a seeded sample of the guarantee modules' mutants against their fast tests.

    Works in a copy of the tree, so it neither needs nor disturbs ``mutants/``. Fails
    (exit 1) when a sampled mutant survives that docs/testing.md does not list as
    equivalent; stops at ``budget`` seconds and says how many it ran. Each mutant runs
    in a fresh pytest with mutmut's trampoline pointed at it (``MUTANT_UNDER_TEST``).
    """
    signal.signal(signal.SIGTERM, _end_live)  # each pytest is its own session (_pytest)
    signal.signal(signal.SIGINT, _end_live)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="haul-mutants-") as tmp:
        copy = Path(tmp)
        guards.copy_tree(copy)
        subprocess.run(
            [sys.executable, "-c", "from tests.mutation.mutants import generate; generate()"],
            cwd=copy,
            check=True,
            capture_output=True,
        )
        skip = known_survivors()
        everything = []
        for path in SAMPLE_TESTS:
            meta = json.loads((copy / "mutants" / f"{path}.meta").read_text())
            names = sorted(n for n in meta["exit_code_by_key"] if in_scope(path, n))
            everything += [(path, n) for n in names if n not in skip]
        chosen = random.Random(seed).sample(everything, min(count, len(everything)))
        print(f"sample: {len(chosen)} of {len(everything)} mutants (seed {seed})", flush=True)
        survivors, ran = [], 0
        for path, name in chosen:
            if time.monotonic() - began > budget:
                print(f"sample: budget of {budget:.0f} s spent after {ran} of {len(chosen)}")
                break
            # A mutant that hangs a test (as mutmut counts it: a kill) must not spend the
            # budget alone: the database module's tests wait on conditions for seconds.
            start = time.monotonic()
            code = _pytest(SAMPLE_TESTS[path], [], name, copy / "mutants", SAMPLE_LIMIT)
            ran += 1
            # as in fresh(): a failing test, a mutated module that no longer imports, a hang
            killed = code in (1, 2, 4, TIMED_OUT)
            if not killed:
                survivors.append(name)
            verdict = "killed" if killed else f"SURVIVED (pytest exit {code})"
            print(f"{verdict:10} {time.monotonic() - start:6.1f}s  {name}", flush=True)
    took = time.monotonic() - began
    print(f"sample: {ran} mutants in {took:.0f} s, {len(survivors)} survived")
    for name in survivors:
        print(f"    {name}: kill it with a test, or list it in docs/testing.md as equivalent")
    return 1 if survivors else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--scores", action="store_true", help="the last run's score table")
    mode.add_argument("--guards", action="store_true", help="drop each WHERE condition")
    mode.add_argument("--sample", action="store_true", help="a seeded sample, for CI")
    parser.add_argument("--only", action="append", help="--guards: variants whose key has this")
    parser.add_argument("--list", action="store_true", help="--guards: list the variants only")
    parser.add_argument("--tier", choices=sorted(TIERS), default="fast", help="tests to run")
    parser.add_argument("--ignore", action="append", default=[], help="a test file to leave out")
    parser.add_argument("--tests", action="append", help="run these test files, not the tier's")
    parser.add_argument("--function", action="append", help="mutate only this function")
    parser.add_argument("--mutant", action="append", help="only this mutant (x_f__mutmut_N)")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("MUTANTS_SEED", "19")))
    parser.add_argument("--budget", type=float, default=540.0, help="seconds, --sample only")
    args = parser.parse_args()
    if args.guards:
        modules = [as_path(m) for m in args.modules] or list(guards.GUARDED)
        if args.list:
            guards.check_equivalents(modules)
            print(
                "\n".join(
                    f"{v.key}    (line {v.line})" for m in modules for v in guards.variants(m)
                )
            )
            return
        survivors = guards.run(modules, args.only)
        print(f"guards: {survivors} survivor(s)")
        sys.exit(1 if survivors else 0)
    if args.sample:
        sys.exit(sample(args.count, args.seed, args.budget))
    modules = [as_path(m) for m in args.modules] or guarantee_modules()
    if args.scores:
        print_scores(modules, args.tier)
        return
    sys.exit(mutmut(modules, args.tier, args.ignore, args.tests, args.function, args.mutant))


if __name__ == "__main__":
    main()
