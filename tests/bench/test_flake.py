"""bench flake's comparison of runs: a pure function over report documents."""

import copy

from bench.flake import NO_REPORT, compare_reports, figure


def _report(**clauses):
    """A --conformance-report document: clause id -> (status, examples); the rest not run."""
    document = {"clauses": {
        "CALL-INFERENCE": {"status": "not run", "examples": 0, "tests": {}},
    }}
    for clause_id, (status, examples) in clauses.items():
        document["clauses"][clause_id.replace("_", "-")] = {
            "status": status, "examples": examples, "tests": {"t": status},
        }
    return document


def test_identical_runs():
    first = _report(SAVE_SIGNATURES=("pass", 1), SIG_STABLE=("pass", 48))
    comparison = compare_reports([first, copy.deepcopy(first)])
    assert comparison["identical"] and comparison["differing"] == []
    assert set(comparison["clauses"]) == {"SAVE-SIGNATURES", "SIG-STABLE"}  # not "not run"
    assert comparison["clauses"]["SIG-STABLE"]["examples"] == [48, 48]
    assert figure(comparison) == "2 runs: identical"


def test_a_different_status_or_example_count_differs():
    first = _report(SAVE_SIGNATURES=("pass", 1), SIG_STABLE=("pass", 48), LOAD_REVIVE=("xfail", 21))
    second = _report(SAVE_SIGNATURES=("pass", 1), SIG_STABLE=("pass", 24), LOAD_REVIVE=("fail", 21))
    comparison = compare_reports([first, second])
    assert not comparison["identical"]
    assert comparison["differing"] == ["LOAD-REVIVE", "SIG-STABLE"]
    assert comparison["clauses"]["LOAD-REVIVE"]["statuses"] == ["xfail", "fail"]
    assert comparison["clauses"]["SAVE-SIGNATURES"]["identical"]
    assert figure(comparison) == "2 runs: DIFFER (differing clauses: LOAD-REVIVE, SIG-STABLE)"


def test_a_clause_one_run_left_out_and_a_run_without_report_differ():
    first = _report(SAVE_SIGNATURES=("pass", 1), SAVE_OVERWRITE=("pass", 1))
    second = _report(SAVE_SIGNATURES=("pass", 1))
    comparison = compare_reports([first, second, None])
    assert comparison["clauses"]["SAVE-OVERWRITE"]["statuses"] == ["pass", "not run", NO_REPORT]
    assert comparison["clauses"]["SAVE-OVERWRITE"]["examples"] == [1, None, None]
    assert comparison["runs_without_report"] == [3]
    assert not comparison["identical"]
    assert "no report from run(s) 3" in figure(comparison)


def test_load_hostile_outcome_counts_must_agree():
    first = _report(LOAD_HOSTILE=("pass", 300))
    first["clauses"]["LOAD-HOSTILE"]["hostile"] = {"clean-error": 190, "model": 110}
    second = copy.deepcopy(first)
    assert compare_reports([first, copy.deepcopy(first)])["identical"]
    second["clauses"]["LOAD-HOSTILE"]["hostile"] = {"clean-error": 189, "model": 111}
    comparison = compare_reports([first, second])
    assert comparison["differing"] == ["LOAD-HOSTILE"]
    assert comparison["clauses"]["LOAD-HOSTILE"]["outcomes"][1] == {"clean-error": 189,
                                                                   "model": 111}
