"""``just bench [SCENARIO ...] [--smoke] [--out PATH]``: run the benchmarks, print the
table, and (for a full run of every scenario) write ``docs/benchmarks.md``.

Scenarios: submit, small, large, table, engine, idle, subscriptions, dashboard (all
when none is named).
``--smoke`` runs every code path on tiny sizes in under a minute; its figures are
not compared with the targets. ``--notes-only`` refreshes the hand-written analysis
at the end of the report without measuring anything. A scenario that fails is reported and the
others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import infra
from bench.procs import REPO
from bench.report import Outcome, markdown, table_text, with_notes, write
from bench.scenarios import SCENARIOS, load
from bench.sizes import FULL, SMOKE
from bench.stack import Context

DEFAULT_OUT = REPO / "docs" / "benchmarks.md"
ANALYSIS = Path(__file__).with_name("analysis.md")


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="just bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], metavar="SCENARIO")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, under a minute")
    parser.add_argument(
        "--out",
        type=Path,
        help="where to write the Markdown report (default: docs/benchmarks.md for a full "
        "run of every scenario; otherwise nothing is written)",
    )
    parser.add_argument(
        "--notes-only",
        action="store_true",
        help="measure nothing: replace the analysis at the end of the report (--out, default "
        "docs/benchmarks.md) with bench/analysis.md",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _args(argv)
    if args.notes_only:
        target = args.out or DEFAULT_OUT
        write(target, with_notes(target.read_text(), ANALYSIS.read_text()))
        print(f"refreshed the analysis in {target}")
        return 0
    names = args.scenarios or list(SCENARIOS)
    sizes = SMOKE if args.smoke else FULL
    out = args.out
    if out is None and not args.smoke and names == list(SCENARIOS):
        out = DEFAULT_OUT
    infra.wait_for_services("bench")
    ctx = Context(infra.new_run_id(), Path(tempfile.mkdtemp(prefix="haul-bench-")))
    outcomes: dict[str, Outcome] = {}
    failed = []
    began = time.monotonic()
    try:
        for name in names:
            scenario = load(name)
            print(f"== {scenario.TITLE}", flush=True)
            started = time.monotonic()
            try:
                outcome = scenario.run(ctx, sizes)
            except Exception:
                failed.append(name)
                outcome = Outcome(sections=[("FAILED", f"```\n{traceback.format_exc()}\n```")])
                traceback.print_exc()
            outcomes[scenario.TITLE] = outcome
            print(f"   done in {time.monotonic() - started:.0f} s", flush=True)
    finally:
        infra.drop_template(ctx.run_id)
        shutil.rmtree(ctx.scratch, ignore_errors=True)
    elapsed = time.monotonic() - began
    figures = [f for o in outcomes.values() for f in o.figures]
    print()
    print(table_text(figures))
    print(f"\n{len(names)} scenario(s) in {elapsed / 60:.1f} min" + (", smoke sizes" * sizes.smoke))
    if out is not None:
        notes = None if sizes.smoke or not ANALYSIS.exists() else ANALYSIS.read_text()
        write(out, markdown(outcomes, sizes, elapsed, notes))
        print(f"wrote {out}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
