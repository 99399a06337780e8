"""Prints the planted-bug kill rate at the end of a session that ran those tests.

Here, at the top of tests/, so that the xdist controller loads it too: it sees every
report, and the rate covers all workers.
"""

import os

import pytest

_RESULTS = {}


def pytest_runtest_logreport(report):
    props = dict(report.user_properties)
    if report.when == "call" and "planted_bug" in props:
        _RESULTS[props["planted_bug"]] = bool(props.get("planted_caught"))


def pytest_terminal_summary(terminalreporter):
    if not _RESULTS:
        return
    caught = sum(_RESULTS.values())
    terminalreporter.section("planted bugs")
    for name, was_caught in sorted(_RESULTS.items()):
        terminalreporter.write_line(f"  {'caught' if was_caught else 'MISSED'}  {name}")
    terminalreporter.write_line(
        f"kill rate: {caught}/{len(_RESULTS)} ({100 * caught / len(_RESULTS):.0f} %)"
    )


@pytest.fixture(scope="session")
def worker_id():
    """xdist's worker id ("gw0"...), or "master" in a session without xdist.

    Defined here too so that the tests run under ``-p no:xdist``; xdist sets the variable
    in every worker.
    """
    return os.environ.get("PYTEST_XDIST_WORKER", "master")
