"""Where an example's time goes, per clause: the implementation's save and load against the
suite's own work (building the model, reading the files with ``tf.saved_model.load``, the
checks), for each implementation, from the ``seconds`` the suite's report keeps per clause.

One suite run per implementation, without xdist, under the ``triage`` profile by default: the
ci profile's examples without shrinking, so that an implementation's failures (tf_keras has
expected ones) cost what a passing example costs and do not turn into shrink steps. A case a
property saves is shared by the clauses that only read it, so the first clause to meet a spec
pays for its build and save: compare the rows of all clauses, or the totals.

Target: the suite's own share of the reference's time at most 25 %.
"""

import json
import tempfile
from pathlib import Path

from bench import common

PHASES = ("save", "load", "build", "read", "checks")
IMPLEMENTATION_PHASES = ("save", "load")
QUICK_CLAUSES = "CALL-INFERENCE,VARS-EXACT,SAVE-OVERWRITE"
TARGET_SUITE_SHARE = 0.25


def run_suite(impl, clauses, profile, out_dir):
    """One suite run; its report's ``{clause: {examples, seconds}}`` and its exit code."""
    label = impl.partition(":")[0]
    log = Path(out_dir) / f"split-{label}.log"
    with tempfile.TemporaryDirectory(prefix="bench-split-") as cwd:
        report = Path(cwd) / "report.json"
        command = common.suite_command(None, report, impl, clauses, profile)
        returncode, wall = common.run_logged(command, cwd, common.suite_env(), log)
        document = json.loads(report.read_text()) if report.exists() else {"clauses": {}}
    clauses_seen = {
        clause_id: {"examples": result["examples"], "seconds": result["seconds"]}
        for clause_id, result in document["clauses"].items()
        if result.get("seconds")
    }
    return {"impl": impl, "exit_code": returncode, "wall_s": wall, "log": str(log),
            "clauses": clauses_seen}


def totals(clauses):
    """The phases summed over the clauses, and the examples."""
    out = dict.fromkeys((*PHASES, "total"), 0.0)
    examples = 0
    for result in clauses.values():
        examples += result["examples"]
        for phase in out:
            out[phase] += result["seconds"].get(phase, 0.0)
    return out, examples


def suite_share(seconds):
    """The suite's own share of the time: everything but the implementation's save and load."""
    total = seconds.get("total", 0.0)
    if not total:
        return None
    return 1 - sum(seconds.get(p, 0.0) for p in IMPLEMENTATION_PHASES) / total


def _row(name, examples, seconds):
    per = 1000 / examples if examples else None
    cells = [seconds.get(p, 0.0) * per if per else None for p in (*PHASES, "total")]
    share = suite_share(seconds)
    return [name, examples, *cells, None if share is None else f"{100 * share:.0f} %"]


def run(args):
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    impls = args.impl or ["reference", "tf_keras"]
    clauses = QUICK_CLAUSES if args.quick else args.clauses
    profile = args.profile or ("dev" if args.quick else "triage")
    print(f"\nsplit: {', '.join(impls)}, profile {profile}, clauses {clauses or 'all'}",
          flush=True)
    runs = [run_suite(impl, clauses, profile, out_dir) for impl in impls]
    headers = ["clause", "examples", *(f"{p} ms/ex" for p in PHASES), "total ms/ex",
               "suite share"]
    verdicts = {}
    for r in runs:
        rows = [_row(c, v["examples"], v["seconds"]) for c, v in sorted(r["clauses"].items())]
        seconds, examples = totals(r["clauses"])
        rows.append(_row("all clauses", examples, seconds))
        common.print_table(f"time per example by phase: {r['impl']} (exit {r['exit_code']})",
                           headers, rows)
        r["totals"] = {"examples": examples, "seconds": seconds,
                       "suite_share": suite_share(seconds)}
        verdicts[f"suite_share_{r['impl'].partition(':')[0]}"] = suite_share(seconds)
    reference = next((r for r in runs if r["impl"] == "reference"), None)
    if reference is not None and reference["totals"]["suite_share"] is not None:
        share = reference["totals"]["suite_share"]
        met = "met" if share <= TARGET_SUITE_SHARE else "MISSED"
        print(f"the suite's own share on the reference: {100 * share:.0f} % "
              f"(target <= {100 * TARGET_SUITE_SHARE:.0f} %: {met})")
    return {"profile": profile, "clauses": clauses or "all", "runs": runs,
            "verdicts": verdicts, "targets": {"suite_share": TARGET_SUITE_SHARE}}
