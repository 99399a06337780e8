"""The suite's command line, built in one place: reproduce commands, the matrix, benchmarks."""

import shlex
import sys


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
