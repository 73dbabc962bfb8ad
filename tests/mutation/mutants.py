"""`just mutants`: mutation testing of the guarantee code, its score per module, the guard
harness and the sampled CI step (docs/testing.md says what each proves).

    python -m tests.mutation.mutants [MODULE …]       mutmut on these modules (default: all)
    python -m tests.mutation.mutants --scores         the score table of the last run
    python -m tests.mutation.mutants --guards [MODULE …]   drop each WHERE condition
    python -m tests.mutation.mutants --sample [--count N] [--seed S] [--budget SECONDS]

A MODULE is a path (``service/domain/states.py``) or a dotted name (``service.domain.states``).
mutmut (configured in ``[tool.mutmut]`` of pyproject.toml) copies the tree into
``mutants/`` and runs, per mutant, the fast-tier tests that reach the mutated function.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from tests.mutation import guards

ROOT = Path(__file__).resolve().parents[2]
MUTANTS = ROOT / "mutants"
BIN = Path(sys.executable).parent

#: mutmut's exit codes that count as a kill (a test failed, errored or hung).
KILLED = {1, 3, 24, -24, 36, 37, 152, 255}
#: Not run at all (outside the chosen modules, or skipped): not part of the score.
NOT_RUN = {None, 34}

#: Fast tests for each module, for the sampled CI step (the full run lets mutmut choose).
SAMPLE_TESTS: dict[str, list[str]] = {
    "service/domain/states.py": ["tests/unit/test_states.py"],
    "service/domain/egress.py": ["tests/unit/test_egress_policy.py"],
    "service/domain/idempotency.py": ["tests/unit/test_admission_rules.py"],
    "service/domain/quotas.py": ["tests/unit/test_client_limits.py"],
    "service/domain/ratelimit.py": ["tests/unit/test_admission_rules.py"],
    "service/api/files.py": ["tests/unit/test_files_range.py"],
    "service/webhooks/signing.py": ["tests/unit/test_webhooks.py"],
    "service/db/transitions.py": ["tests/integration/test_guarantees.py"],
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


def results(path: str) -> dict[str, int | None]:
    meta = MUTANTS / f"{path}.meta"
    if not meta.exists():
        return {}
    exit_codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    return exit_codes


def scores(modules: list[str]) -> list[tuple[str, int, int, list[str]]]:
    """Per module: killed, tried, and the surviving mutants' names."""
    table = []
    for path in modules:
        tried = {k: v for k, v in results(path).items() if v not in NOT_RUN}
        killed = sum(1 for v in tried.values() if v in KILLED)
        survivors = sorted(k for k, v in tried.items() if v not in KILLED)
        table.append((path, killed, len(tried), survivors))
    return table


def print_scores(modules: list[str]) -> None:
    print(f"{'module':36} {'killed':>7} {'tried':>6} {'score':>7}")
    for path, killed, tried, survivors in scores(modules):
        score = f"{100 * killed / tried:.1f}%" if tried else "-"
        print(f"{path:36} {killed:7} {tried:6} {score:>7}")
        for name in survivors:
            print(f"    survived: {name}")


def mutmut(modules: list[str]) -> int:
    patterns = [f"{as_dotted(p)}.*" for p in modules]
    began = time.monotonic()
    code = subprocess.run(
        [
            str(BIN / "mutmut"),
            "run",
            "--max-children",
            os.environ.get("MUTANTS_JOBS", "2"),
            *patterns,
        ],
        cwd=ROOT,
        check=False,
    ).returncode
    print(f"mutmut: {time.monotonic() - began:.0f} s")
    print_scores(modules)
    return code


def generated() -> dict[str, list[str]]:
    """Every mutant of the sampled modules, by module (mutmut generates them first)."""
    if not all((MUTANTS / f"{p}.meta").exists() for p in SAMPLE_TESTS):
        # `mutmut run` on a name that matches no mutant only generates them.
        subprocess.run(
            [str(BIN / "mutmut"), "run", "none.matches.this"],
            cwd=ROOT,
            check=False,
            capture_output=True,
        )
    return {p: sorted(results(p)) for p in SAMPLE_TESTS}


def sample(count: int, seed: int, budget: float) -> int:
    """Run a seeded sample of the guarantee modules' mutants against their fast tests.

    Fails (exit 1) when a sampled mutant survives; stops at ``budget`` seconds and
    says how many it ran. Each mutant runs in a fresh pytest with mutmut's trampoline
    pointed at it (``MUTANT_UNDER_TEST``).
    """
    everything = [(p, name) for p, names in generated().items() for name in names]
    if not everything:
        print("sample: no mutants generated", file=sys.stderr)
        return 2
    chosen = random.Random(seed).sample(everything, min(count, len(everything)))
    began = time.monotonic()
    survivors, ran = [], 0
    for path, name in chosen:
        if time.monotonic() - began > budget:
            print(f"sample: budget of {budget:.0f} s spent after {ran} of {len(chosen)}")
            break
        env = {**os.environ, "MUTANT_UNDER_TEST": name}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
            + SAMPLE_TESTS[path],
            cwd=MUTANTS,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        ran += 1
        verdict = "killed" if result.returncode == 1 else f"SURVIVED (exit {result.returncode})"
        if result.returncode != 1:
            survivors.append(name)
        print(f"{verdict:10} {name}", flush=True)
    took = time.monotonic() - began
    print(f"sample: {ran} mutants (seed {seed}) in {took:.0f} s, {len(survivors)} survived")
    for name in survivors:
        print(f"    `mutmut show {name}` shows it; kill it or list it in docs/testing.md")
    return 1 if survivors else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--scores", action="store_true", help="the last run's score table")
    mode.add_argument("--guards", action="store_true", help="drop each WHERE condition")
    mode.add_argument("--sample", action="store_true", help="a seeded sample, for CI")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("MUTANTS_SEED", "19")))
    parser.add_argument("--budget", type=float, default=540.0, help="seconds, --sample only")
    args = parser.parse_args()
    if args.guards:
        modules = [as_path(m) for m in args.modules] or list(guards.GUARDED)
        survivors = guards.run(modules)
        print(f"guards: {survivors} survivor(s)")
        sys.exit(1 if survivors else 0)
    if args.sample:
        sys.exit(sample(args.count, args.seed, args.budget))
    modules = [as_path(m) for m in args.modules] or guarantee_modules()
    if args.scores:
        print_scores(modules)
        return
    sys.exit(mutmut(modules))


if __name__ == "__main__":
    main()
