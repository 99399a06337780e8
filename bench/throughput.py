"""Suite throughput: examples checked per minute by the ci profile, without and with xdist.

Runs the suite as a user does (``pytest --pyargs conformance --hypothesis-profile=ci``, from
an empty directory) once per worker count, timing the whole process, and counts the
examples in the ``--conformance-report`` JSON it writes. Every run is CPU-bound: the figures
mean something only on an otherwise idle machine (the load average is recorded beside them).

Targets, on 2 cores: ``-n 2`` at least 1.7x faster than ``-n 0``; the full ci profile in at
most 10 minutes.
"""

import json
import os
import re
import tempfile
from pathlib import Path

from bench import common

# --quick checks the machinery, not the figures: one property clause (5 examples under the
# dev profile) and two single-example ones.
QUICK_CLAUSES = "FORMAT-KERAS-API,SAVE-SIGNATURES,SAVE-OVERWRITE"
TARGET_SPEEDUP = 1.7
TARGET_WALL_S = 600


def examples_in(report_path):
    document = json.loads(Path(report_path).read_text())
    return sum(clause["examples"] for clause in document["clauses"].values()), {
        clause_id: clause["status"] for clause_id, clause in document["clauses"].items()
    }


def session_seconds(log):
    """pytest's own session time ("... in 12.34s"): the wall time less start-up and exit."""
    found = re.findall(r" in ([0-9.]+)s", Path(log).read_text(errors="replace"))
    return float(found[-1]) if found else None


def run_suite(workers, impl, clauses, profile, out_dir):
    log = Path(out_dir) / f"throughput-n{workers}.log"
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as cwd:
        report = Path(cwd) / "report.json"
        command = common.suite_command(workers, report, impl, clauses, profile)
        load = os.getloadavg()[0]
        returncode, wall = common.run_logged(command, cwd, dict(os.environ, CI="true"), log)
        examples, statuses = examples_in(report) if report.exists() else (None, {})
    per_minute = examples / (wall / 60) if examples else None
    return {
        "workers": workers, "command": " ".join(command[2:]), "exit_code": returncode,
        "wall_s": wall, "session_s": session_seconds(log), "examples": examples,
        "examples_per_minute": per_minute,
        "load_average_before": load,
        "clauses_failed": sorted(c for c, s in statuses.items() if s == "fail"),
    }


def run(args):
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    clauses = QUICK_CLAUSES if args.quick else args.clauses
    impl = (args.impl or ["reference"])[0]
    profile = args.profile or ("dev" if args.quick else "ci")
    print(f"\nthroughput: {impl}, profile {profile}, clauses {clauses or 'all'}", flush=True)
    runs = [run_suite(w, impl, clauses, profile, out_dir) for w in args.workers.split(",")]
    rows = [[r["workers"], r["wall_s"], r["session_s"], r["examples"], r["examples_per_minute"],
             r["exit_code"], r["load_average_before"], ",".join(r["clauses_failed"])]
            for r in runs]
    common.print_table(
        "suite throughput",
        ["-n", "wall s", "pytest s", "examples", "examples/min", "exit", "load before",
         "failed clauses"],
        rows,
    )
    by_workers = {r["workers"]: r for r in runs}
    serial = by_workers.get("0")
    verdicts = {}
    for workers, r in by_workers.items():
        if workers != "0" and serial and r["wall_s"]:
            speedup = serial["wall_s"] / r["wall_s"]
            verdicts[f"speedup_n{workers}"] = speedup
            met = "met" if speedup >= TARGET_SPEEDUP else "MISSED"
            print(f"speed-up -n {workers} over -n 0: {speedup:.2f}x "
                  f"(target >= {TARGET_SPEEDUP} for -n 2 on 2 cores: {met})")
    if not clauses and profile == "ci":
        best = min(r["wall_s"] for r in runs)
        verdicts["full_ci_wall_s"] = best
        met = "met" if best <= TARGET_WALL_S else "MISSED"
        print(f"full ci profile: {best:.0f} s at best (target <= {TARGET_WALL_S} s: {met})")
    elif clauses:
        print("(a clause subset: the speed-up is indicative; the 10-minute target needs the "
              "full suite: python -m bench throughput)")
    return {"implementation": impl, "profile": profile, "clauses": clauses or "all",
            "cpus": os.cpu_count(), "runs": runs, "verdicts": verdicts,
            "targets": {"speedup": TARGET_SPEEDUP, "full_ci_wall_s": TARGET_WALL_S}}
