"""python -m bench [SECTION ...] [--quick]: the project's benchmarks, as tables and JSON.

Sections: saveload (per corpus spec, every built-in), scaling (chains and nesting), profile
(cProfile of a 40-layer reference save), throughput (the ci-profile suite with -n 0 and -n 2;
minutes of full CPU: run it on an idle machine), firstrun (a broken adapter's first run
against the reference's, same profile, side by side), split (each clause's time per example by
phase: the implementation's save and load, the suite's build, reading and checks; reference
and tf_keras, triage profile). Without a section all six run.
flake (the ci-profile suite --runs times, default 10, with -n workers, default 2: per-clause
statuses and example counts compared across runs; exit 1 when they differ) runs only when
named; so does bigmodels (MobileNetV3Small, EfficientNetB0 and ResNet50 saved by the
reference, tf_keras and a bare tf.saved_model.save: seconds and peak memory, minutes of CPU).
--quick checks the machinery in a few minutes: fewer specs, sizes and runs, and a
three-clause suite under the dev profile (flake: 2 runs of two clauses). Figures go to stdout
and to bench/out/<section>.json. The benchmarks live in the repository, not in the installed
package: run them from a clone.
"""

import argparse
import sys
import time
from pathlib import Path

from bench import (
    bigmodels,
    common,
    first_run,
    flake,
    profile_save,
    saveload,
    scaling,
    split,
    throughput,
)

SECTIONS = {
    "saveload": saveload.run,
    "scaling": scaling.run,
    "profile": profile_save.run,
    "throughput": throughput.run,
    "firstrun": first_run.run,
    "flake": flake.run,
    "split": split.run,
    "bigmodels": bigmodels.run,
}
# What runs without a section: flake is N whole suite runs, only when asked for.
DEFAULT_SECTIONS = ("saveload", "scaling", "profile", "throughput", "firstrun", "split")
# Profiles that draw the same examples every run (derandomized, no database): flake compares
# runs, and the others differ by design.
REPEATABLE_PROFILES = ("ci", "triage")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", metavar="SECTION",
                        help=f"any of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer specs, sizes and runs")
    parser.add_argument("--runs", type=int, default=None,
                        help="timed runs per spec after the warm-up (default 5, quick 2); "
                        f"flake: suite runs to compare (default {flake.DEFAULT_RUNS}, quick "
                        f"{flake.QUICK_RUNS}, at least 2)")
    parser.add_argument("--impl", action="append",
                        help="implementation(s) to measure (default: every built-in; "
                        "scaling, split, bigmodels: reference and tf_keras; profile, throughput: "
                        "reference)")
    parser.add_argument("--workers", default="0,2",
                        help="throughput: comma-separated -n values (default 0,2)")
    parser.add_argument("-n", "--numprocesses", type=int, default=None, metavar="N",
                        help=f"flake: xdist workers of each run (-n N; default "
                        f"{flake.DEFAULT_WORKERS}, 0 without xdist)")
    parser.add_argument("--profile", default=None,
                        help="throughput: Hypothesis profile (default ci; quick: dev); split: "
                        "default triage; flake: "
                        f"{' or '.join(REPEATABLE_PROFILES)} (default ci)")
    parser.add_argument("--clauses", default=None,
                        help="throughput, flake, split: only these clause ids (comma-separated)")
    parser.add_argument("--out", default=str(common.DEFAULT_OUT), help="where JSON goes")
    args = parser.parse_args(argv)
    unknown = [name for name in args.sections if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}: choose from {', '.join(SECTIONS)}")
    if "flake" in args.sections:
        if args.runs is not None and args.runs < 2:
            parser.error(f"--runs {args.runs}: flake compares runs, give at least 2")
        if args.profile is not None and args.profile not in REPEATABLE_PROFILES:
            parser.error(
                f"--profile {args.profile}: flake compares runs, which only the derandomized "
                f"profiles repeat: {', '.join(REPEATABLE_PROFILES)}"
            )
    if args.runs is not None and args.runs < 1:
        parser.error(f"--runs {args.runs}: give a positive number of runs")
    if args.numprocesses is not None and args.numprocesses < 0:
        parser.error(f"-n {args.numprocesses}: give 0 (no xdist) or a number of workers")
    if args.clauses is not None:
        from conformance.contract import parse_clause_list

        try:
            parse_clause_list(args.clauses)
        except ValueError as exc:
            parser.error(f"--clauses: {exc}")
    if args.impl:
        args.impl = [name for value in args.impl for name in value.split(",") if name]
        bad = [name for name in args.impl if not _known_implementation(name)]
        if bad:
            from conformance.api import BUILTIN

            parser.error(
                f"--impl: unknown implementation(s) {', '.join(map(repr, bad))}: give built-in "
                f"names ({', '.join(sorted(BUILTIN))}) or importable package.module:Attr, "
                "repeated or comma-separated"
            )
    return args


def _known_implementation(name):
    """A built-in name, or ``module:Attr`` whose module can be found (imported later, in the
    benchmark's worker, where a failure would only show as an empty row)."""
    import importlib.util

    from conformance.api import BUILTIN

    if name in BUILTIN:
        return True
    module, sep, attr = name.partition(":")
    if not (sep and module and attr):
        return False
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    status = 0
    for name in args.sections or list(DEFAULT_SECTIONS):
        start = time.perf_counter()
        document = SECTIONS[name](args)
        document = {"section": name, "quick": args.quick, "environment": common.environment(),
                    "elapsed_s": time.perf_counter() - start, **document}
        common.write_json(out / f"{name}{'-quick' if args.quick else ''}.json", document)
        status = max(status, document.get("exit_status", 0))
    return status


if __name__ == "__main__":
    sys.exit(main())
