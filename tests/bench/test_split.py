"""``python -m bench split``: each clause's time per example by phase, from the report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import split

ROOT = Path(__file__).resolve().parents[2]


def test_totals_and_the_suite_share():
    clauses = {
        "VARS-EXACT": {"examples": 2, "seconds": {"save": 3.0, "load": 1.0, "build": 0.5,
                                                   "read": 0.5, "checks": 1.0, "total": 6.0}},
        "SAVE-OVERWRITE": {"examples": 1, "seconds": {"save": 1.0, "checks": 1.0,
                                                       "total": 2.0}},
    }
    seconds, examples = split.totals(clauses)
    assert examples == 3 and seconds["save"] == 4.0 and seconds["total"] == 8.0
    assert split.suite_share(seconds) == pytest.approx(3 / 8)  # all but save 4 and load 1
    assert split.suite_share({"total": 0.0}) is None
    row = split._row("VARS-EXACT", 2, clauses["VARS-EXACT"]["seconds"])
    assert row[:3] == ["VARS-EXACT", 2, 1500.0] and row[-1] == "33 %"


def test_a_run_prints_the_split_and_keeps_it_in_the_json(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "split", "--impl", "reference", "--profile", "dev",
         "--clauses", "SAVE-OVERWRITE", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "time per example by phase: reference" in proc.stdout
    assert "the suite's own share on the reference:" in proc.stdout
    document = json.loads((tmp_path / "split.json").read_text())
    run = document["runs"][0]
    seconds = run["clauses"]["SAVE-OVERWRITE"]["seconds"]
    assert seconds["save"] > 0 and seconds["total"] >= seconds["save"]
    assert 0 <= document["verdicts"]["suite_share_reference"] < 1
