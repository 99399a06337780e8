"""Flakiness: the ci-profile suite run N times, its per-clause results compared across runs.

Each run is a subprocess ``python -m pytest --pyargs conformance --hypothesis-profile=ci``
from an empty temporary directory, with a ``--conformance-report`` JSON there. The ci profile
is derandomized and uses no example database, so every run should give each clause the same
status (pass, fail, xfail...) and the same number of examples (LOAD-HOSTILE: the same loads
per outcome too): the figure is "N runs: identical", or the clauses whose results differ.
``python -m bench`` exits 1 when the runs differ.
"""

import json
import tempfile
from pathlib import Path

from bench import common

QUICK_CLAUSES = "SAVE-SIGNATURES,SAVE-OVERWRITE"
DEFAULT_RUNS = 10
QUICK_RUNS = 2
DEFAULT_WORKERS = 2
NO_REPORT = "no report"  # the status of every clause in a run that wrote no report


def run_once(index, workers, impl, clauses, profile, out_dir):
    """One suite run: its exit code, wall time and report (None when it wrote none)."""
    log = Path(out_dir) / f"flake-run{index}.log"
    with tempfile.TemporaryDirectory(prefix="bench-flake-") as cwd:
        report = Path(cwd) / "report.json"
        command = common.suite_command(workers, report, impl, clauses, profile)
        returncode, wall = common.run_logged(
            command, cwd, common.suite_env(), log, label=f"run {index}: "
        )
        document = json.loads(report.read_text()) if report.exists() else None
    return {"run": index, "exit_code": returncode, "wall_s": wall, "log": str(log),
            "report": document}


def clause_results(document):
    """clause id -> (status, examples, outcome counts) of the clauses a report ran (not
    "not run"); the counts are LOAD-HOSTILE's loads per outcome, None for other clauses."""
    if document is None:
        return {}
    return {
        clause_id: (result["status"], result["examples"], result.get("hostile"))
        for clause_id, result in document["clauses"].items()
        if result["status"] != "not run"
    }


def compare_reports(documents):
    """Per-clause statuses and example counts across runs' report documents (None: a run
    that wrote no report), and the clauses where runs differ.

    Returns ``{"runs", "identical", "differing": [clause ids], "clauses": {clause id:
    {"statuses": [...], "examples": [...], "outcomes": [...], "identical": bool}}}``, one
    list entry per run, in run order (``outcomes``: LOAD-HOSTILE's loads per outcome, which
    must agree too). A clause that one run ran and another did not differs (status "not run"
    there, or ``NO_REPORT`` for a run without a report, examples None).
    """
    per_run = [clause_results(document) for document in documents]
    clause_ids = sorted({clause_id for results in per_run for clause_id in results})
    clauses = {}
    for clause_id in clause_ids:
        statuses, examples, outcomes = [], [], []
        for document, results in zip(documents, per_run):
            status, count, tally = results.get(
                clause_id, (NO_REPORT if document is None else "not run", None, None)
            )
            statuses.append(status)
            examples.append(count)
            outcomes.append(tally)
        same = (len(set(statuses)) == 1 and len(set(examples)) == 1
                and all(tally == outcomes[0] for tally in outcomes))
        clauses[clause_id] = {"statuses": statuses, "examples": examples,
                              "outcomes": outcomes, "identical": same}
    differing = [clause_id for clause_id, entry in clauses.items() if not entry["identical"]]
    missing = [i + 1 for i, document in enumerate(documents) if document is None]
    identical = not differing and not missing and bool(documents)
    return {"runs": len(documents), "identical": identical, "differing": differing,
            "runs_without_report": missing, "clauses": clauses}


def _tally(values):
    """``"pass ×9, fail ×1"``, or the one value when every run agrees."""
    counts = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    if len(counts) == 1:
        return common.fmt(values[0])
    return ", ".join(f"{common.fmt(v)} ×{n}" for v, n in counts.items())


def figure(comparison):
    """``"10 runs: identical"``, or what differs."""
    n = comparison["runs"]
    if comparison["identical"]:
        return f"{n} runs: identical"
    parts = []
    if comparison["differing"]:
        parts.append("differing clauses: " + ", ".join(comparison["differing"]))
    missing = comparison["runs_without_report"]
    if missing:
        parts.append("no report from run(s) " + ", ".join(map(str, missing)))
    if not comparison["clauses"] and not missing:
        parts.append("no clause ran")
    return f"{n} runs: DIFFER ({'; '.join(parts)})"


def run(args):
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    clauses = args.clauses or (QUICK_CLAUSES if args.quick else None)
    runs = args.runs or (QUICK_RUNS if args.quick else DEFAULT_RUNS)
    workers = DEFAULT_WORKERS if args.numprocesses is None else args.numprocesses
    impl = (args.impl or ["reference"])[0]
    profile = args.profile or "ci"
    print(f"\nflake: {impl}, profile {profile}, clauses {clauses or 'all'}, -n {workers}, "
          f"{runs} runs", flush=True)
    results = [run_once(i, workers, impl, clauses, profile, out_dir) for i in range(1, runs + 1)]
    comparison = compare_reports([r["report"] for r in results])
    rows = [
        [clause_id, _tally(entry["statuses"]), _tally(entry["examples"]),
         "yes" if entry["identical"] else "NO"]
        for clause_id, entry in comparison["clauses"].items()
    ]
    common.print_table("per-clause results across runs",
                       ["clause", "status", "examples", "identical"], rows)
    common.print_table(
        "runs", ["run", "exit", "wall s", "examples"],
        [[r["run"], r["exit_code"], r["wall_s"],
          sum(c["examples"] for c in r["report"]["clauses"].values()) if r["report"] else None]
         for r in results],
    )
    print(f"\n{figure(comparison)}", flush=True)
    return {
        "implementation": impl, "profile": profile, "clauses": clauses or "all",
        "workers": workers, "figure": figure(comparison), "comparison": comparison,
        "runs": [{k: v for k, v in r.items() if k != "report"} for r in results],
        "exit_status": 0 if comparison["identical"] else 1,
    }
