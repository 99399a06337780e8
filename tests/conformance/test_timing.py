"""The split of a test's time by phase (conformance.timing) and its sum in the report."""

import pytest

from conformance import timing
from conformance.plugin.report import TIMING_PROPERTY, ClauseReport, seconds_split


class _Saver:
    def save(self, model, path):
        with timing.phase("read"):  # inside the save: the implementation's time
            return f"saved {model} to {path}"

    def load(self, path):
        raise ValueError(f"cannot load {path}")


def test_phases_count_once_and_only_inside_a_test(monkeypatch):
    clock = iter(range(100))
    monkeypatch.setattr(timing.time, "perf_counter", lambda: float(next(clock)))
    with timing.phase("save"):
        pass  # no test running: nothing counted, nothing raised
    timing.start()
    with timing.phase("save"):
        with timing.phase("read"):
            pass
    with timing.phase("build"):
        pass
    seconds = timing.stop()
    assert seconds == {"save": 1.0, "load": 0.0, "build": 1.0, "read": 0.0}
    assert timing.stop() == dict.fromkeys(timing.PHASES, 0.0)


def test_instrumented_methods_return_raise_and_time_as_before():
    saver = timing.instrument(_Saver())
    assert timing.instrument(saver) is saver and saver.save.__conformance_timed__
    timing.start()
    assert saver.save("m", "p") == "saved m to p"
    with pytest.raises(ValueError, match="cannot load q"):
        saver.load("q")
    seconds = timing.stop()
    assert seconds["save"] > 0 and seconds["load"] > 0 and seconds["read"] == 0


def test_the_report_sums_a_clauses_tests_and_names_the_rest_checks():
    class Report:
        when, failed, skipped, passed = "call", False, False, True

        def __init__(self, nodeid, split):
            self.nodeid = nodeid
            self.user_properties = [(TIMING_PROPERTY, split)]

    report = ClauseReport()
    report.add("VARS-EXACT", Report("a", {"save": 1.0, "read": 0.5, "total": 2.0}))
    report.add("VARS-EXACT", Report("b", {"save": 0.5, "load": 1.0, "total": 2.0}))
    split = report.as_dict()["VARS-EXACT"]["seconds"]
    assert split == {"save": 1.5, "load": 1.0, "build": 0.0, "read": 0.5, "checks": 1.0,
                     "total": 4.0}
    assert "seconds" not in report.as_dict()["CALL-INFERENCE"]
    assert seconds_split({"save": 3.0, "total": 2.0})["checks"] == 0.0
