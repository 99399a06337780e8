"""``python -m bench bigmodels``: the ratios it prints (the runs themselves take minutes)."""

import pytest

from bench import bigmodels


def test_ratios_over_the_bare_save_and_tf_keras():
    results = {
        "reference": {"models": {"M": {"save_s": 3.0, "load_s": 1.0, "save_peak_mib": 300.0}}},
        "tf_keras": {"models": {"M": {"save_s": 6.0, "load_s": 2.0, "save_peak_mib": 400.0}}},
        "bare": {"models": {"M": {"save_s": 2.0, "load_s": 1.0, "save_peak_mib": 100.0}}},
    }
    found = bigmodels.ratios(results, ["M"])["M"]
    assert found["save_time_over_bare"] == pytest.approx(1.5)
    assert found["save_peak_over_bare"] == pytest.approx(3.0)
    assert found["save_load_over_tf_keras"] == pytest.approx(0.5)


def test_a_failed_row_gives_no_ratio():
    results = {"reference": {"models": {"M": {"error": "ValueError: no"}}},
               "bare": {"models": {"M": {"save_s": 2.0, "load_s": 1.0, "save_peak_mib": 1.0}}}}
    found = bigmodels.ratios(results, ["M"])["M"]
    assert set(found.values()) == {None}
