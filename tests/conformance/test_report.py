"""The report's text: one compact block per failure, one line per message, a row per clause."""

from types import SimpleNamespace

from conformance.contract import CLAUSE_IDS
from conformance.plugin.report import (
    FAILURE_PROPERTY,
    compact_failure,
    first_line,
    markdown,
    summary_line,
)


def test_first_line_takes_the_line_that_says_what_went_wrong():
    assert first_line("AssertionError: outputs differ\n  output 0: ...") == (
        "AssertionError: outputs differ"
    )
    tf_error = (
        "ValueError: in user code:\n\n    File \"x.py\", line 3, in f\n        y = g(x)\n\n"
        "    ValueError: Tried to convert 'x' to a tensor and failed."
    )
    assert first_line(tf_error) == "ValueError: Tried to convert 'x' to a tensor and failed."
    assert first_line("x" * 500, limit=40).endswith("…") and len(first_line("x" * 500, 40)) == 40
    assert first_line("") == ""


def test_a_failure_is_one_block_with_the_spec_and_the_command():
    failure = {"message": "the saved root has no keras_api\nmore", "spec": "{}", "command": "c"}
    report = SimpleNamespace(
        user_properties=[("conformance_clause", "VARS-EXACT"), (FAILURE_PROPERTY, failure)]
    )
    block = compact_failure(report).splitlines()
    assert block[0] == "[VARS-EXACT] the saved root has no keras_api"
    assert block[1] == "  spec: {}" and block[2] == "  reproduce: c"
    assert compact_failure(SimpleNamespace(user_properties=[])) is None


def _document():
    clauses = {
        clause_id: {"status": "pass", "examples": 5, "tests": {}, "skip_reasons": [],
                    "failures": []}
        for clause_id in CLAUSE_IDS
    }  # fmt: skip
    clauses["CALL-INFERENCE"].update(
        status="fail",
        failures=[{"message": "serving_default outputs differ\n...", "spec": '{"a": 1}',
                   "command": "pytest --pyargs conformance -k x"}],
    )  # fmt: skip
    clauses["SAVE-ATOMIC"].update(status="not claimed", skip_reasons=["not claimed: X: why"])
    return {
        "implementation": "mine:Saver",
        "versions": {"tensorflow": "2.21.0"},
        "hypothesis": {"profile": "dev", "seed": None},
        "started": "2026-12-01 12:00:00 UTC",
        "duration_s": 42.0,
        "clauses": clauses,
    }


def test_markdown_has_a_summary_and_every_row_a_message_and_a_reproduction():
    document = _document()
    text = markdown(document)
    assert f"**{summary_line(document)}**" in text
    n = len(CLAUSE_IDS)
    assert f"1 fail, {n - 2} pass, 1 not claimed of {n} clauses" in text
    assert "profile `dev`; started 2026-12-01 12:00:00 UTC, 42.0 s" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == len(CLAUSE_IDS) + 1  # the header and one row per clause
    for row in rows[1:]:
        assert "pytest --pyargs conformance" in row, row
    fail = next(row for row in rows if row.startswith("| CALL-INFERENCE |"))
    assert "serving_default outputs differ" in fail and '{"a": 1}' in fail and "..." not in fail
    claimed = next(row for row in rows if row.startswith("| SAVE-ATOMIC |"))
    assert "not claimed: X: why" in claimed


def test_an_implementations_traced_error_keeps_who_raised_it():
    message = (
        "the implementation's save raised ValueError: in user code:\n\n    File \"m.py\"\n\n"
        "    ValueError: Tried to convert 'x' to a tensor and failed."
    )
    assert first_line(message) == (
        "the implementation's save raised ValueError: Tried to convert 'x' to a tensor and failed."
    )


def test_legacy_corpus_section_counts_per_writer():
    from conformance.plugin.report import legacy_counts, legacy_markdown

    counts = legacy_counts(
        {"tf-2.21": {"spec-00": "config", "mlp": "revived"}, "tf-2.15": {"spec-00": "failed"}}
    )
    assert counts["tf-2.21"] == {"config": 1, "revived": 1, "failed": 0, "failed_cases": []}
    assert counts["tf-2.15"]["failed_cases"] == ["spec-00"]
    lines = legacy_markdown({"clauses": {"LOAD-LEGACY": {"legacy": counts}}})
    assert "## Legacy corpus" in lines
    assert "| tf-2.15 | 0 | 0 | 1 | spec-00 |" in lines
    assert legacy_markdown({"clauses": {"LOAD-LEGACY": {}}}) == []
