"""The suite's command line, built in one place: reproduce commands, the matrix, benchmarks."""

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def suite_command(
    impl,
    *,
    clauses=None,
    profile=None,
    report=None,
    xfails=None,
    workers=None,
    select=None,
    seed=None,
    python=None,
    quiet=False,
    extra=(),
):
    """``pytest --pyargs conformance ...`` as an argument list.

    ``workers=None`` runs without xdist (``-p no:xdist``: one process, as a reproduction
    wants); ``python`` runs pytest as ``python -m pytest`` with that interpreter (``True``:
    this one). ``select`` is a ``-k`` expression.
    """
    if python is True:
        python = sys.executable
    command = [python, "-m", "pytest"] if python else ["pytest"]
    command += ["--pyargs", "conformance", f"--conformance-impl={impl}"]
    if clauses:
        command.append(f"--conformance-clauses={clauses}")
    if xfails:
        command.append(f"--conformance-xfails={xfails}")
    if report:
        command.append(f"--conformance-report={report}")
    if profile:
        command.append(f"--hypothesis-profile={profile}")
    if seed is not None:
        command.append(f"--hypothesis-seed={seed}")
    if workers is None:
        command += ["-p", "no:xdist"]
    else:
        command += ["-p", "no:cacheprovider", "-n", str(workers)]
    if quiet:
        command.append("-q")
    if select:
        command += ["-k", select]
    return command + list(extra)


def reproduce_script_command(clause_id, test, report=None):
    """``python -m conformance reproduce ...``: the standalone script of a failure, one line."""
    command = ["python", "-m", "conformance", "reproduce", report or "REPORT.json"]
    command += ["--clause", clause_id, "--test", test]
    where = "" if report else "  (REPORT.json: the run's --conformance-report)"
    return shell(command) + where


def shell(command):
    return shlex.join(command)


def run_for_report(command, report, log_path, *, timeout=None, prefix="conformance-"):
    """Run a suite command from a temporary directory, this checkout first on ``PYTHONPATH``,
    its output in ``log_path``; the report it wrote with ``exit_code`` and ``seconds``, or an
    error document saying why there is none."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    report = Path(report)
    report.unlink(missing_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=prefix) as cwd, open(
        log_path, "w", encoding="utf-8"
    ) as log:
        log.write(shell(command) + "\n")
        log.flush()
        try:
            returncode = subprocess.run(
                command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            returncode = None
    seconds = round(time.perf_counter() - started, 1)
    if returncode is None:
        document = {"error": f"the suite ran past --timeout ({timeout} s); log: {log_path}"}
    elif report.exists():
        document = json.loads(report.read_text(encoding="utf-8"))
        document["exit_code"] = returncode
    else:
        tail = Path(log_path).read_text(encoding="utf-8", errors="replace")[-1500:]
        document = {"error": f"pytest exited {returncode} without a report: {tail}"}
    document["seconds"] = seconds
    return document
