"""Each planted bug is caught by the clause named for it, with the ci profile's examples.

The suite runs in a subprocess per bug, on that clause only, with the ``triage`` profile: the
``ci`` profile's examples (derandomized, 20 a property) without shrinking, since catching is
what is measured here. The kill rate is printed at the end of the session.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from planted import PLANTED

HERE = Path(__file__).parent


@pytest.mark.parametrize("bug", PLANTED, ids=lambda bug: bug.name)
def test_planted_bug_is_caught(bug, tmp_path, record_property):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--pyargs",
        "conformance",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "-x",
        "-q",
        f"--conformance-impl=planted:{bug.__name__}",
        f"--conformance-clauses={bug.caught_by}",
        "--hypothesis-profile=triage",
        *bug.pytest_args,
    ]
    proc = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    caught = proc.returncode == pytest.ExitCode.TESTS_FAILED and f"[{bug.caught_by}]" in proc.stdout
    record_property("planted_bug", bug.name)
    record_property("planted_caught", caught)
    assert caught, (
        f"{bug.name} ({bug.__doc__.strip()}) was not caught by {bug.caught_by} "
        f"(exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    )
