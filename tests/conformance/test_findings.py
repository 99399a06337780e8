"""``python -m conformance findings``: docs/findings.md is current, and its parsing.

The check runs without TensorFlow (the page's reproducer scripts are read from docs/findings/);
one test rebuilds the smallest script with the reproduce tool (TensorFlow, no save) and
compares it with the committed one.
"""

import os
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from conformance.tools import findings

ROOT = Path(__file__).resolve().parents[2]

MADE_UP = """\
# Expected failures of the built-in `tf_keras` adapter: tf_keras 9.1.0 `model.save`,
# TensorFlow 9.2.0. Reason after '#'.

# ci: {"dict_inputs": false, "dtype": "float32", "extra": {}, "inputs": [{"batch_size": null, "dtype": "float32", "name": "in_0", "shape": [1], "vocab": null}], "name": "model", "nodes": [{"id": "n0", "inputs": ["in_0"], "kind": "Dense", "layer_name": "n0_dense", "out_shape": [1], "params": {"activation": "linear", "units": 1, "use_bias": true}, "regularizers": [], "shares": null, "submodel": null}], "outputs": ["n0"], "seed": 0, "topology": "sequential"}
test_signatures.py::test_serving_signature_names  # batch fixed: [1, 1], not [None, 1]. Upstream: keras-team/keras#1, #2

# triage (first failing example; not shrunk for lack of time): {"inputs": [{"name": "in_0", "shape": [3], "dtype": "string", "vocab": 4}], "nodes": [{"id": "n0", "inputs": ["in_0"], "kind": "StringLookup"}, {"id": "n1", "inputs": ["n0"], "kind": "Sub", "submodel": {"inputs": [], "nodes": [{"id": "s0", "kind": "Dense"}, {"id": "s1", "kind": "Dense"}]}}]}
test_variables.py::test_layer_tree_mirrors_model  # empty keras_api. Not reported upstream as far as a search shows (related: keras-team/tf-keras#29)

# fixture: a model saved as signatures={'name': fn}
SAVE-SIGNATURES  # an extra serving_default

# the whole corpus, two lines
# of context
test_legacy.py::test_legacy_file_loads[tf-2.12/a]  # revived A silently: nothing says so
test_legacy.py::test_legacy_file_loads[tf-2.13/b]  # revived B silently: nothing says so
LOAD-CORRUPT  # a bit flip raises KeyError. Related upstream: tensorflow/tensorflow#9
"""  # noqa: E501


def _made_up():
    found = findings.parse_expectations(MADE_UP, "tf_keras")
    findings.resolve_clauses(found, findings.clause_of_tests())
    for number, finding in enumerate(found, start=1):
        finding.number = number
    return found


def test_committed_page_is_current():
    """Fails when an expectations file (or the reproduce tool) changed and nobody ran
    `python -m conformance findings`."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "conformance", "findings", "--check"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_reports_a_stale_page_and_says_how_to_regenerate(tmp_path, capsys):
    shutil.copytree(ROOT / "docs" / "findings", tmp_path / "findings")
    page = tmp_path / "findings.md"
    page.write_text((ROOT / "docs" / "findings.md").read_text())
    args = Namespace(out=str(page), check=True)
    assert findings.main(args) == 0
    page.write_text(page.read_text().replace("## Summary", "## Summary (edited by hand)"))
    assert findings.main(args) == 1
    err = capsys.readouterr().err
    assert "is stale" in err and "python -m conformance findings" in err
    (tmp_path / "findings" / "repro-tf_keras-extra-000000000000.py").write_text("")
    page.unlink()
    assert findings.main(args) == 1
    err = capsys.readouterr().err
    assert "is missing" in err and "stray reproducer" in err


def test_header_versions_and_blocks():
    header, versions = findings.parse_header(MADE_UP)
    assert versions == [("tf_keras", "9.1.0"), ("TensorFlow", "9.2.0")]
    assert header.startswith("Expected failures")
    found = _made_up()
    assert [f.clause for f in found] == [
        "SIG-SERVING", "LAYERS-TREE", "SAVE-SIGNATURES", "LOAD-LEGACY", "LOAD-CORRUPT"]
    legacy = found[3]
    assert [e.key for e in legacy.entries] == [
        "test_legacy.py::test_legacy_file_loads[tf-2.12/a]",
        "test_legacy.py::test_legacy_file_loads[tf-2.13/b]"]
    assert legacy.comment == ["the whole corpus, two lines", "of context"]
    assert found[4].comment == legacy.comment  # the block's entries share its comment
    assert found[2].spec is None  # braces that are not a spec
    assert found[0].spec["nodes"][0]["kind"] == "Dense"
    assert found[0].entries[0].line == 5


def test_sizes_and_shrinking():
    found = _made_up()
    assert findings.layer_count(found[0].spec) == 1
    assert findings.layer_count(found[1].spec) == 4  # a sub-model's node and its two nodes
    status = {f.clause: findings.shrink_status(f.provenance) for f in found}
    assert status["SIG-SERVING"][1] is True
    assert status["LAYERS-TREE"][1] is False
    assert status["SAVE-SIGNATURES"][1] is None  # a fixture
    assert findings.shrink_status("ci (not shrunk further)")[1] is False
    assert findings.shrink_status("dev (first drawn example, minimal already)")[1] is True
    assert findings.shrink_status("corpus spec-00")[1] is False


def test_upstream_references():
    found = _made_up()
    named, related, unreported = findings.upstream_of(found[0].entries[0].reason)
    assert named == ["keras-team/keras#1", "keras-team/keras#2"] and not related
    named, related, unreported = findings.upstream_of(found[1].entries[0].reason)
    assert not named and related == ["keras-team/tf-keras#29"] and unreported
    assert findings.upstream_text(named, related, unreported).startswith(
        "not reported upstream, as far as a search shows")
    named, related, unreported = findings.upstream_of(found[4].entries[0].reason)
    assert findings.upstream_text(named, related, unreported).startswith("no report of this")
    assert findings.upstream_text([], [], False) == (
        "not reported upstream, as far as a search shows")


def test_reproducer_refusals_say_why():
    found = _made_up()
    assert findings.reproducer_refusal(found[0]) is None  # SIG-SERVING, one Dense
    assert findings.reproducer_refusal(found[1]) is None  # the vocabulary is written out
    assert findings.reproducer_refusal(found[2]) is None  # the script builds the fixture
    assert "no single failing spec" in findings.reproducer_refusal(found[4])  # LOAD-CORRUPT
    why = findings.reproducer_refusal(found[3])
    assert "no single failing spec" in why and "LOAD-LEGACY" in why
    assert "legacy corpus files" in why  # the tool's own reason for the clause


def test_render_is_deterministic_and_marks_itself_generated():
    found = _made_up()
    headers = {"tf_keras": findings.parse_header(MADE_UP), "keras_export": ("", [])}
    refusals = {f.number: findings.reproducer_refusal(f) or "" for f in found}
    scripts = {1: ("repro-x.py", "print('hi')\n")}
    page = findings.render(found, headers, scripts, refusals)
    assert page == findings.render(found, headers, scripts, refusals)
    assert "do not edit by hand" in page.splitlines()[2]
    assert "**5 findings** (6 expectation entries)" in page
    assert "median size is **2.5 layer(s)**" in page  # sizes 1 and 4
    assert "[keras-team/keras#1](https://github.com/keras-team/keras/issues/1)" in page
    assert "```python\nprint('hi')\n```" in page


@pytest.mark.filterwarnings("ignore")
def test_a_committed_script_is_what_the_tool_writes(tmp_path):
    """The smallest committed script, rebuilt by the reproduce tool (TensorFlow, no save)."""
    found, _ = findings.load_findings()
    digest = findings._tool_digest()
    candidates = [f for f in found if findings.reproducer_refusal(f) is None and f.spec]
    finding = min(candidates, key=lambda f: (findings.layer_count(f.spec), f.number))
    name = findings.reproducer_name(finding, findings.reproducer_key(finding, digest))
    findings.write_reproducer(finding, tmp_path / name)
    assert (tmp_path / name).read_text() == (ROOT / "docs" / "findings" / name).read_text()
