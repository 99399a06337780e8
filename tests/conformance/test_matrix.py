"""``python -m conformance matrix``: rendering from report documents, the command line."""

import json
import subprocess
import sys

from conformance.contract import CLAUSE_IDS
from conformance.tools import matrix

SPEC_JSON = json.dumps({"inputs": [], "nodes": [], "outputs": ["n0"], "topology": "functional"})


def _clauses(**statuses):
    out = {}
    for clause_id in CLAUSE_IDS:
        status = statuses.get(clause_id, "pass")
        out[clause_id] = {
            "status": status,
            "examples": 20 if status == "pass" else 3,
            "tests": {f"conformance/test_x.py::test_{clause_id.lower()}": status},
            "skip_reasons": [f"not claimed: {clause_id}"] if status == "not claimed" else [],
            "failures": [],
        }
    return out


def _report(impl, **statuses):
    return {
        "implementation": impl,
        "versions": {"python": "3.11.7", "tensorflow": "9.9", "keras": "8.8", "tf_keras": "7.7"},
        "hypothesis": {"profile": "ci", "seed": None},
        "clauses": _clauses(**statuses),
        "seconds": 12.5,
    }


def _fake_reports():
    failing = _report("reference", **{"SIG-SERVING": "fail"})
    failing["clauses"]["SIG-SERVING"]["failures"] = [
        {
            "spec": SPEC_JSON,
            "command": "pytest --pyargs conformance --conformance-clauses=SIG-SERVING",
            "message": "serving_default outputs ['output_0'], expected ['n0_dense']",
            "test": "conformance/test_signatures.py::test_serving_signature_names",
        }
    ]
    export = _report("keras_export", **{"FORMAT-KERAS-API": "not claimed"})
    return {"reference": failing, "keras_export": export}


def test_render_shows_versions_profile_cells_and_summary():
    text = matrix.render(
        _fake_reports(), None, profile="ci", command="python -m conformance matrix"
    )
    assert "TensorFlow 9.9, Keras 8.8, tf_keras 7.7" in text
    assert "Hypothesis profile: `ci`" in text
    assert "| clause | `reference` | `keras_export` |" in text
    row = next(line for line in text.splitlines() if line.startswith("| SIG-SERVING |"))
    assert "**fail** [1]" in row and SPEC_JSON.replace("|", "\\|")[:40] in row
    assert "pass (20 ex.)" in row
    # keras_export's real reason for not claiming FORMAT-KERAS-API is shown.
    row = next(line for line in text.splitlines() if line.startswith("| FORMAT-KERAS-API |"))
    assert "not claimed: export writes no `keras_api`" in row
    assert "1. `reference` · SIG-SERVING" in text
    assert "reproduce: `pytest --pyargs conformance --conformance-clauses=SIG-SERVING`" in text
    assert f"`reference`: {len(CLAUSE_IDS) - 1} pass, 1 fail of {len(CLAUSE_IDS)} clauses" in text
    assert "`keras_export`: " in text and "1 not claimed" in text


def test_summary_line_of_a_run_without_a_report():
    line = matrix.summary_line("broken", {"error": "pytest exited 4 without a report: boom"})
    assert line.startswith("`broken`: suite did not run") and "boom" in line


def test_xfail_reasons_come_from_the_expectations_file():
    from conformance.expectations import read_xfails

    path = matrix.expectations_file("tf_keras")
    assert path is not None and path.name == "tf_keras.txt"
    entries = read_xfails(str(path)).entries
    document = _report("tf_keras", **{"SAVE-OVERWRITE": "xfail", "SAVE-NO-MUTATION": "xfail"})
    mutation = document["clauses"]["SAVE-NO-MUTATION"]
    mutation["tests"] = {"conformance/clauses/test_save.py::test_model_unchanged_by_save": "xfail"}
    reasons = matrix.xfail_reasons("tf_keras", document)
    # A clause entry and a test entry, each with its own reason from the file; nothing else.
    assert reasons["SAVE-OVERWRITE"] == entries["SAVE-OVERWRITE"]
    assert reasons["SAVE-NO-MUTATION"] == entries["test_save.py::test_model_unchanged_by_save"]
    assert "VARS-EXACT" not in reasons and "SIG-STABLE" not in reasons
    text = matrix.render({"tf_keras": document}, None, profile="ci", command="c")
    row = next(line for line in text.splitlines() if line.startswith("| SAVE-OVERWRITE |"))
    assert "xfail (expected)" in row


def test_render_saver_loader_and_signature_tables():
    differential = {
        "implementations": ["reference", "keras_export"],
        "specs": {"spec-00": "{}"},
        "per_spec": {
            "spec-00": {
                "saves": {"reference": None, "keras_export": None},
                "pairs": {
                    "reference | keras_export": {
                        "fields": [
                            {"field": "output keys", "equal": False, "a": ["d"], "b": ["output_0"]}
                        ],
                        "outputs": None,
                        "originals": None,
                    }
                },
                "cross": {
                    "reference": {
                        "tf.saved_model.load": {"ok": True},
                        "keras_export": {"ok": True},
                    },
                    "keras_export": {
                        "tf.saved_model.load": {"ok": True},
                        "reference": {"error": "NotASavedModelError: no keras_metadata.pb"},
                    },
                },
                "kept": {},
            }
        },
    }
    text = matrix.render(_fake_reports(), differential, profile="triage", command="c")
    assert "## Saver × loader" in text
    row = next(line for line in text.splitlines() if line.startswith("| `keras_export` |"))
    assert "ok 1/1" in row and "**fails 1/1**: spec-00: NotASavedModelError" in row
    row = next(line for line in text.splitlines() if line.startswith("| output keys |"))
    assert '**differs 1/1**, e.g. spec-00: ["d"] vs ["output_0"]' in row
    row = next(line for line in text.splitlines() if line.startswith("| serving outputs |"))
    assert "equal 1/1" in row


def test_suite_command_uses_the_expectations_file():
    command = matrix.suite_command("tf_keras", "/tmp/r.json", "ci", "2")
    assert command[:5] == [sys.executable, "-m", "pytest", "--pyargs", "conformance"]
    assert "--conformance-impl=tf_keras" in command and "--hypothesis-profile=ci" in command
    assert "--conformance-report=/tmp/r.json" in command
    assert command[command.index("-n") + 1] == "2"
    xfails = [part for part in command if part.startswith("--conformance-xfails=")]
    assert xfails == [f"--conformance-xfails={matrix.expectations_file('tf_keras')}"]
    assert matrix.expectations_file("reference") is None
    reference = matrix.suite_command("reference", "/tmp/r.json", "ci", "0")
    assert not any(part.startswith("--conformance-xfails=") for part in reference)


def _matrix(*args):
    """``python -m conformance matrix ARGS`` in a subprocess, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "conformance", "matrix", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_matrix_command_line(tmp_path):
    proc = _matrix("--help")
    assert proc.returncode == 0, proc.stderr
    for option in ("--profile", "--impls", "--output", "--workers", "--differential-specs"):
        assert option in proc.stdout
    proc = _matrix("--impls", "nope", "--output", str(tmp_path / "m.md"))
    assert proc.returncode == 2 and "unknown implementation(s) ['nope']" in proc.stderr


def test_matrix_renders_from_reused_reports(tmp_path):
    reports = _fake_reports()
    for name, document in reports.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(document))
    output = tmp_path / "matrix.md"
    proc = _matrix(
        "--impls",
        "reference,keras_export",
        "--reports-dir",
        str(tmp_path),
        "--reuse",
        "--differential-specs",
        "0",
        "--output",
        str(output),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = output.read_text()
    assert "suite report reused from an earlier run" in text
    assert "## Saver × loader" not in text
    assert "`reference`: " in proc.stdout


def test_skip_suites_marks_missing_reports(tmp_path):
    output = tmp_path / "matrix.md"
    proc = _matrix(
        "--impls",
        "reference",
        "--reports-dir",
        str(tmp_path),
        "--skip-suites",
        "--differential-specs",
        "0",
        "--output",
        str(output),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "`reference`: suite did not run (not run (--skip-suites))" in output.read_text()


def test_render_legacy_corpus_writers_by_loader():
    reports = _fake_reports()
    reports["reference"]["clauses"]["LOAD-LEGACY"]["legacy"] = {
        "tf-2.12": {"config": 30, "revived": 6, "failed": 0, "failed_cases": []},
        "tf-2.9": {"config": 1, "revived": 0, "failed": 1, "failed_cases": ["spec-01"]},
    }
    reports["keras_export"]["clauses"]["LOAD-LEGACY"]["legacy"] = {
        "tf-2.12": {"config": 0, "revived": 10, "failed": 26, "failed_cases": ["multi-io"]},
    }
    text = matrix.render(reports, None, profile="ci", command="python -m conformance matrix")
    lines = text.splitlines()
    at = lines.index("## Legacy corpus")
    table = lines[at:]
    assert "| writer | `reference` | `keras_export` |" in table
    # writers in version order (2.9 before 2.12), a writer one loader never read shows "—"
    rows = [line for line in table if line.startswith("| tf-")]
    assert rows[0] == "| tf-2.9 | 1 / 0 / 1 (failed: spec-01) | — |"
    assert rows[1] == "| tf-2.12 | 30 / 6 / 0 | 0 / 10 / 26 (failed: multi-io) |"


def test_render_has_no_legacy_section_without_legacy_counts():
    text = matrix.render(_fake_reports(), None, profile="ci", command="m")
    assert "## Legacy corpus" not in text
