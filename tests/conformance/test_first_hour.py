"""The implementer's first hour: the smallest possible adapter, run as the README says.

``naive_saver.py`` saves with plain ``tf.saved_model.save`` and loads with
``tf.saved_model.load``: a SavedModel, not the Keras format. The suite runs on it from a
directory outside the repository, with no ``PYTHONPATH``, as a new user's first run does;
every failing clause must say in words what the files lack.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from bench.first_run import NAIVE_SAVER  # the README walk-through's adapter
from conformance.contract import CLAUSE_IDS

# What a message from the suite's own helpers looks like when a check did not look first.
RAW_EXCEPTION = re.compile(
    r"^(TypeError|AttributeError|KeyError|IndexError|NameError|UnboundLocalError): "
)
TF_NOISE = ("cpu_feature_guard", "oneDNN custom operations", "cuInit", "absl::", "I0000 ")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("user-project")
    (workdir / "naive_saver.py").write_text(NAIVE_SAVER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and "XDIST" not in k}
    env.pop("CI", None)  # the default profile a user gets: dev
    command = [
        sys.executable, "-m", "pytest", "--pyargs", "conformance", "-p", "no:cacheprovider",
        "-n", "2", "--conformance-impl=naive_saver:NaiveSaver",
        "--conformance-report=report.json",
    ]  # fmt: skip
    proc = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=1800
    )
    report = json.loads((workdir / "report.json").read_text())
    return workdir, proc, report


def test_the_adapter_imports_from_the_working_directory(first_run):
    _, proc, report = first_run
    assert "cannot import module" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-3000:]
    assert report["implementation"] == "naive_saver:NaiveSaver"
    assert report["hypothesis"]["profile"] == "dev"


def test_every_failing_clause_says_what_the_files_lack(first_run):
    _, _, report = first_run
    failing = {c: r for c, r in report["clauses"].items() if r["status"] == "fail"}
    assert "FORMAT-KERAS-API" in failing and "CALL-INFERENCE" in failing
    for clause_id, result in failing.items():
        assert result["failures"], f"{clause_id} failed without a recorded failure"
        for failure in result["failures"]:
            message = failure["message"]
            first = message.splitlines()[0]
            assert not RAW_EXCEPTION.match(first), f"{clause_id}: a raw exception: {first}"
            assert failure["command"].startswith("pytest --pyargs conformance"), failure
            assert "--conformance-impl=naive_saver:NaiveSaver" in failure["command"]


def test_the_terminal_shows_one_block_per_failure_and_no_noise(first_run):
    _, proc, _ = first_run
    output = proc.stdout + proc.stderr
    for noise in TF_NOISE:
        assert noise not in output, f"TensorFlow noise in the output: {noise}"
    assert "DeprecationWarning" not in output
    assert "Falsifying example" not in proc.stdout, "Hypothesis' full dump belongs behind -v"
    assert "report written to report.json" in proc.stdout


def test_the_markdown_report_has_a_message_and_a_command_on_every_failing_row(first_run):
    from conformance.plugin.report import markdown

    workdir, _, report = first_run
    text = markdown(report)
    rows = [line for line in text.splitlines() if line.startswith("| ") and " fail " in line]
    assert rows, text
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert all(cells), f"an empty cell: {row}"
        assert "pytest --pyargs conformance" in row, row
    assert set(report["clauses"]) == set(CLAUSE_IDS)


def test_a_printed_reproduce_command_runs_from_the_same_directory(first_run):
    workdir, _, report = first_run
    failure = report["clauses"]["CALL-INFERENCE"]["failures"][-1]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and "XDIST" not in k}
    proc = subprocess.run(
        failure["command"], shell=True, cwd=workdir, env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-2000:] + proc.stderr
    assert "[CALL-INFERENCE]" in proc.stdout
