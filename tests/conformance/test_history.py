"""``python -m conformance history``: the pages rendered from per-version reports, the page
read back by a real browser, and one real run on a stub environment (this interpreter standing
in for TensorFlow 2.21's), so CI needs no old TensorFlow."""

import html.parser
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.tools import history

ROOT = Path(__file__).resolve().parents[2]
SPEC = '{"name": "model", "nodes": [{"kind": "Dense"}]}'


def _report(statuses, *, fail_message="outputs differ by 0.5", tests=None):
    clauses = {}
    for clause_id, status in statuses.items():
        result = {"status": status, "examples": 3 if status == "pass" else 1,
                  "tests": tests or {f"test_x.py::test_{clause_id.lower()}": status},
                  "skip_reasons": [], "failures": []}
        if status == "fail":
            result["failures"] = [{"message": fail_message, "spec": SPEC,
                                   "command": "pytest --pyargs conformance ...",
                                   "test": "test_x.py::test_y"}]
        if status == "not claimed":
            result["skip_reasons"] = ["not claimed: the worker cannot see the live model"]
        clauses[clause_id] = result
    return {"clauses": clauses, "hypothesis": {"profile": "ci"}, "seconds": 12.5,
            "worker_versions": {"python": "3.11.7", "tensorflow": "2.15.1"}}


REPORTS = {
    "2.15": _report({"CALL-INFERENCE": "pass", "SAVE-ATOMIC": "not claimed",
                     "VARS-EXACT": "pass"}),
    "2.16": _report({"CALL-INFERENCE": "fail", "SAVE-ATOMIC": "not claimed",
                     "VARS-EXACT": "pass"}),
    "2.21": _report({"CALL-INFERENCE": "pass", "SAVE-ATOMIC": "not claimed",
                     "VARS-EXACT": "pass"}),
}


def test_cells_and_changes_between_neighbouring_versions():
    table = history.cells(REPORTS)
    assert table["CALL-INFERENCE"]["2.16"]["status"] == "fail"
    assert table["CALL-INFERENCE"]["2.16"]["spec"] == SPEC
    assert table["SAVE-ATOMIC"]["2.15"]["reason"].startswith("not claimed")
    moved = history.changes(table, list(REPORTS))
    assert moved == [("CALL-INFERENCE", "2.15", "2.16", "pass", "fail"),
                     ("CALL-INFERENCE", "2.16", "2.21", "fail", "pass")]
    assert history.counts(table, "2.16") == {"fail": 1, "not claimed": 1, "pass": 1}


def test_markdown_names_each_cell_and_the_failure():
    text = history.render_markdown(REPORTS, command="python -m conformance history")
    assert "do not edit by hand" in text
    row = next(line for line in text.splitlines() if line.startswith("| CALL-INFERENCE |"))
    assert row.split(" | ")[1:] == ["pass (3 ex.)", f"**fail**: `{SPEC}`",
                                    "pass (3 ex.) |"]
    assert "- CALL-INFERENCE: 2.15 pass → 2.16 fail" in text
    assert "outputs differ by 0.5" in text
    assert "tensorflow 2.15.1" in text


def test_an_error_document_fills_its_column_with_errors():
    reports = {"2.15": REPORTS["2.15"], "2.16": {"error": "pytest exited 3 without a report"}}
    table = history.cells(reports)
    assert {row["2.16"]["status"] for row in table.values()} == {"error"}
    assert "pytest exited 3" in history.render_markdown(reports)


def test_the_2_21_column_marks_what_the_tf_keras_expectations_list():
    # tf_keras.txt lists test_load.py::test_loaded_model_resumes_training (LOAD-RESUME).
    reports = {"2.21": _report({"LOAD-RESUME": "fail"},
                               tests={"test_load.py::test_loaded_model_resumes_training":
                                      "fail"})}
    cell = history.cells(reports)["LOAD-RESUME"]["2.21"]
    assert "44670" in cell["expected"]
    assert "in tf_keras.txt" in history.render_markdown(reports)


def test_usage_errors_name_what_is_valid(capsys):
    with pytest.raises(history.UsageError, match="known: 2.12"):
        history.parse_versions("2.12,3.0")
    with pytest.raises(history.UsageError, match="I/N"):
        history.parse_shard("3/2")
    with pytest.raises(history.UsageError, match="VERSION=PATH"):
        history.parse_pythons(["2.15"])
    assert history.parse_versions("2.21,2.12,2.21") == ["2.12", "2.21"]
    assert history.shard_versions(list("abcde"), (2, 2)) == ["b", "d"]


class _Table(html.parser.HTMLParser):
    """The history table as a browser's DOM holds it: {(clause, version): (status, text)}."""

    def __init__(self):
        super().__init__()
        self.cells, self._row, self._cell, self._text = {}, None, None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-clause" in attrs:
            self._row = attrs["data-clause"]
        elif tag == "td" and self._row:
            self._cell, self._text = (attrs["data-version"], attrs["data-status"],
                                      attrs.get("title", "")), []

    def handle_data(self, data):
        if self._cell:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell:
            version, status, title = self._cell
            self.cells[(self._row, version)] = (status, "".join(self._text), title)
            self._cell = None


def _browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_browser() is None, reason="no headless Chromium on this machine (Debian's "
                    "chromium package: .ci/run installs it where apt-get works)")
def test_the_html_page_renders_in_a_headless_browser_and_reads_back(tmp_path):
    page = tmp_path / "history.html"
    page.write_text(history.render_html(REPORTS), encoding="utf-8")
    proc = subprocess.run(
        [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    parsed = _Table()
    parsed.feed(proc.stdout)
    table = history.cells(REPORTS)
    assert set(parsed.cells) == {(c, v) for c in table for v in REPORTS}
    for (clause_id, version), (status, text, _title) in parsed.cells.items():
        assert status == table[clause_id][version]["status"]
        assert text.startswith(status)
    status, text, title = parsed.cells[("CALL-INFERENCE", "2.16")]
    assert "outputs differ by 0.5" in title and SPEC in text  # the hover and the click


def test_a_run_on_a_stub_environment_writes_both_pages(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "history", "--versions", "2.21",
         "--python", f"2.21={sys.executable}", "--clauses", "SAVE-OPTIMIZER,SAVE-ATOMIC",
         "--profile", "dev", "--reports-dir", str(tmp_path / "reports"),
         "--output", str(tmp_path / "history.md"), "--html", str(tmp_path / "history.html")],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    document = json.loads((tmp_path / "reports" / "tf-2.21.json").read_text())
    assert document["implementation"].endswith(":legacy_keras")
    assert document["worker_versions"]["tf_keras"]
    assert document["clauses"]["SAVE-OPTIMIZER"]["status"] == "pass"
    assert document["clauses"]["SAVE-ATOMIC"]["status"] == "not claimed"
    text = (tmp_path / "history.md").read_text()
    assert "| SAVE-OPTIMIZER | pass (" in text
    assert 'data-clause="SAVE-OPTIMIZER"' in (tmp_path / "history.html").read_text()
    # The reports alone render the page again, unchanged.
    again = subprocess.run(
        [sys.executable, "-m", "conformance", "history", "--versions", "2.21",
         "--render-only", "--reports-dir", str(tmp_path / "reports"),
         "--output", str(tmp_path / "again.md"), "--html", str(tmp_path / "again.html"),
         "--clauses", "SAVE-OPTIMIZER,SAVE-ATOMIC", "--profile", "dev"],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "again.md").read_text() == text


def test_unknown_version_is_a_usage_error():
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "history", "--versions", "2.11"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=120,
    )
    assert proc.returncode == 2
    assert "unknown TensorFlow version(s) 2.11" in proc.stderr
