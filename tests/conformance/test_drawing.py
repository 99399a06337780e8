"""The suite's example streams depend on their seed alone, not on what the session imported."""

import importlib
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.plugin import drawing


def _derandomized_draws():
    seen = []

    @settings(derandomize=True, max_examples=40, database=None)
    @given(st.lists(st.integers(), min_size=25, max_size=25))
    def record(values):
        seen.append(values)

    record()
    return seen


def test_a_derandomized_stream_ignores_constants_of_modules_imported_later(tmp_path, monkeypatch):
    # Hypothesis draws literals from imported non-test, non-library modules now and then:
    # a session that imported one more module of the project drew other ci examples.
    assert drawing.pin_local_constants(), "Hypothesis moved its local constants"
    before = _derandomized_draws()
    module = tmp_path / "constants_for_drawing.py"
    module.write_text("VALUES = (" + ", ".join(str(987_654_321 + i) for i in range(64)) + ")\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "constants_for_drawing", raising=False)
    importlib.import_module("constants_for_drawing")
    after = _derandomized_draws()
    assert len(before) == len(after) > 1
    assert before == after
    assert not any(987_654_321 <= v < 987_654_385 for draw in after for v in draw)
