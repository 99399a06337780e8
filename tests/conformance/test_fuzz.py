"""``tox -e fuzz``: HypoFuzz over the suite's properties (the ``fuzz`` extra).

What is checked here, cheaply: the tox env's command names the suite and a profile HypoFuzz
fuzzes; the plugin hands a second pytest configuration in one process the same database
(HypoFuzz collects in its parent, then again in each forked worker); the alias HypoFuzz
25.11.1 needs on the pinned Hypothesis; and, with HypoFuzz installed, that ``hypothesis fuzz``
exists and collects a property decorated like the suite's, twice in one process, against a
directory and a Redis database. A fuzzing campaign itself runs until stopped: not a test.
"""

import configparser
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conformance.plugin import database, drawing, fuzz
from tests.conformance.test_database import redis_url  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]

pytest_plugins = ["pytester"]


def tox_env(name):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "tox.ini")
    return parser[f"testenv:{name}"]


def fuzz_command():
    lines = [line for line in tox_env("fuzz")["commands"].splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])


def test_tox_env_fuzzes_the_suite_with_a_fresh_profile():
    argv = fuzz_command()
    assert argv[:2] == ["hypothesis", "fuzz"]
    pytest_args = argv[argv.index("--") + 1 :]
    assert pytest_args[:2] == ["--pyargs", "conformance"]
    (profile,) = [a.split("=", 1)[1] for a in pytest_args if a.startswith("--hypothesis-profile=")]
    # HypoFuzz skips a derandomized test ("sets_derandomize"): ci and triage fuzz nothing.
    assert not drawing.PROFILES[profile].get("derandomize", False)
    assert "database" not in drawing.PROFILES[profile]  # the plugin attaches CONFORMANCE_DB


def test_tox_env_uses_the_nightly_database_and_extras():
    env = tox_env("fuzz")
    assert env["setenv"].strip() == tox_env("nightly")["setenv"].strip().splitlines()[0]
    assert "CONFORMANCE_*" in env["passenv"]
    assert {"fuzz", "nightly"} <= set(env["extras"].split())
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(req.startswith("hypofuzz==") for req in extras["fuzz"])


def test_the_same_database_for_the_same_target_in_a_process(tmp_path):
    first = database.open_database(str(tmp_path / "db"), "reference")
    assert database.open_database(str(tmp_path / "db"), "reference") is first
    assert database.open_database(str(tmp_path / "db"), "other") is not first


def test_slice_comments_alias_only_under_hypofuzz(monkeypatch):
    from hypothesis.internal.conjecture.data import ConjectureData, ConjectureResult

    if not fuzz.patch_needed():
        pytest.skip("this Hypothesis still has slice_comments: no alias is needed")
    monkeypatch.setattr(fuzz, "in_fuzz_run", lambda: False)
    fuzz.configure()
    assert not hasattr(ConjectureData, "slice_comments")
    try:
        fuzz.alias_slice_comments()
        data = ConjectureData.for_choices((1,))
        data.slice_comments = {None: "comment"}
        assert data.span_comments == {None: "comment"}
        assert data.slice_comments is data.span_comments
        assert ConjectureResult.slice_comments.fget(data) == {None: "comment"}
    finally:
        for cls in (ConjectureData, ConjectureResult):
            if "slice_comments" in vars(cls):
                delattr(cls, "slice_comments")


def test_worker_reports_its_tests_before_its_first_batch(monkeypatch):
    hypofuzz = pytest.importorskip(
        "hypofuzz.hypofuzz", reason="HypoFuzz is not installed: pip install -e '.[fuzz]'"
    )
    monkeypatch.setattr(hypofuzz.FuzzWorker, "_update_targets", hypofuzz.FuzzWorker._update_targets)
    fuzz.report_valid_targets_early()
    fuzz.report_valid_targets_early()  # once only, however often pytest is configured
    assert hypofuzz.FuzzWorker._update_targets._conformance_early

    class Target:
        nodeid = "test_x.py::test_x"
        has_found_failure = failed_fatally = skipped_dynamically = False

    worker = hypofuzz.FuzzWorker(
        pytest_args=[], shared_state={"worker_state": {"valid_nodeids": []}}
    )
    worker.collected_targets = {}
    monkeypatch.setattr(worker, "_add_target", lambda n: worker.targets.update({n: Target()}))
    worker._update_targets(["test_x.py::test_x"])
    # The hub reads this at its next check: the worker is busy, not done.
    assert worker.shared_state["worker_state"]["valid_nodeids"] == ["test_x.py::test_x"]


def test_hypothesis_fuzz_command_exists():
    pytest.importorskip("hypofuzz", reason="HypoFuzz is not installed: pip install -e '.[fuzz]'")
    from click.testing import CliRunner
    from hypothesis.extra.cli import main

    result = CliRunner().invoke(main, ["fuzz", "--help"])
    assert result.exit_code == 0, result.output
    assert "--numprocesses" in result.output and "--dashboard-only" in result.output


PROPERTY = """
from conformance.plugin.drawing import fresh_examples

@fresh_examples(max_layers=2)
def test_any_spec(example):
    spec, _ = example
    assert spec.nodes
"""

# HypoFuzz's own collection, as its parent and then each forked worker run it: one process.
COLLECT_TWICE = """
import sys
from hypofuzz.collection import collect_tests
for _ in range(2):
    result = collect_tests(sys.argv[1:])
    print("collected", [t.nodeid for t in result.fuzz_targets])
    print("not collected", result.not_collected)
"""


def collect_twice(pytester, target):
    pytester.makepyfile(test_property=PROPERTY)
    args = ["test_property.py", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:randomly"]
    args += ["--hypothesis-profile=nightly", f"--conformance-db={target}"]
    done = subprocess.run(
        [sys.executable, "-c", COLLECT_TWICE, *args],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    collected = [line for line in lines if line.startswith("collected ")]
    assert collected == ["collected ['test_property.py::test_any_spec']"] * 2, done.stdout
    assert lines.count("not collected {}") == 2, done.stdout


def test_hypofuzz_collects_a_suite_property_twice_with_a_directory_database(pytester, tmp_path):
    pytest.importorskip("hypofuzz", reason="HypoFuzz is not installed: pip install -e '.[fuzz]'")
    collect_twice(pytester, tmp_path / "db")


def test_hypofuzz_collects_a_suite_property_twice_with_redis(pytester, redis_url):  # noqa: F811
    pytest.importorskip("hypofuzz", reason="HypoFuzz is not installed: pip install -e '.[fuzz]'")
    # Without the plugin's one database per target and process, the second collection
    # opens a second Redis client and HypoFuzz skips the test ("differing_database").
    collect_twice(pytester, f"{redis_url}/0")


def test_redis_listeners_hear_another_clients_saves(redis_url):  # noqa: F811
    # HypoFuzz's dashboard learns of its workers' reports through these listeners; Hypothesis
    # subscribes them to the channel but reads it nowhere, so the plugin's database does.
    import time

    listening = database.open_database(f"{redis_url}/0", "listened")
    heard = []
    listening.add_listener(heard.append)
    try:
        other = database._open_database(f"{redis_url}/0", "listened")  # a second client
        other.save(b"key", b"value")
        database._open_database(f"{redis_url}/0", "elsewhere").save(b"key", b"other part")
        deadline = time.monotonic() + 10
        while not heard and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # time for the other part's event, were it heard
        assert heard == [("save", (b"key", b"value"))]
    finally:
        listening.remove_listener(heard.append)
