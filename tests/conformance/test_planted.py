"""Each planted bug is caught by the clause named for it, with the ci profile's examples.

The suite runs in a subprocess per bug, on that clause only, with the ``triage`` profile: the
``ci`` profile's examples (derandomized, 20 a property) without shrinking, since catching is
what is measured here. The kill rate is printed at the end of the session.
"""

import os
import subprocess
from pathlib import Path

import pytest

from conformance.command import suite_command
from conformance.contract import CLAUSE_IDS
from tests.conformance.planted import PLANTED

ROOT = Path(__file__).resolve().parents[2]


def test_every_clause_has_a_planted_bug():
    caught_by = {bug.caught_by for bug in PLANTED}
    assert caught_by <= set(CLAUSE_IDS), sorted(caught_by - set(CLAUSE_IDS))
    missing = sorted(set(CLAUSE_IDS) - caught_by)
    assert not missing, f"clauses no planted bug shows catching anything: {missing}"
    assert len({bug.name for bug in PLANTED}) == len(PLANTED)
    every_run = {bug.caught_by for bug in PLANTED if not bug.nightly_only}
    assert every_run == caught_by, f"only nightly: {sorted(caught_by - every_run)}"


@pytest.mark.parametrize("bug", PLANTED, ids=lambda bug: bug.name)
def test_planted_bug_saves_and_loads(bug, tmp_path):
    """A planted bug changes what is saved or loaded; it does not make the save crash (a
    crash would be "caught" by any clause, whatever the bug)."""
    import keras

    from conformance.expected import fixtures
    from conformance.savedmodel import tree

    model = fixtures.small_functional(keras, name="guard")
    path = str(tmp_path / "model")
    bug().save(model, path)
    assert tree.load(path).signatures, f"{bug.name}: the saved model has no signature"
    assert bug().load(path) is not None or bug.caught_by == "LOAD-CORRUPT"


@pytest.mark.parametrize("bug", PLANTED, ids=lambda bug: bug.name)
def test_planted_bug_is_caught(bug, tmp_path, record_property):
    from conformance.plugin.drawing import current_profile_name

    if bug.nightly_only and current_profile_name() != "nightly":
        shown = [b.name for b in PLANTED if b.caught_by == bug.caught_by and not b.nightly_only]
        pytest.skip(
            f"nightly profile only: outside it one planted bug per clause runs "
            f"({bug.caught_by}: {', '.join(shown)})"
        )
    if bug.caught_by == "CONSUMER-ONNX":
        from conformance.consumers import EXTRA_HINT, missing_onnx_modules

        missing = missing_onnx_modules()
        if missing:
            pytest.skip(f"CONSUMER-ONNX needs {', '.join(missing)} ({EXTRA_HINT})")
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    command = suite_command(
        f"tests.conformance.planted:{bug.__name__}",
        clauses=bug.caught_by,
        profile="triage",
        python=True,
        quiet=True,
        extra=["-p", "no:cacheprovider", "-x", *bug.pytest_args],
    )
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
