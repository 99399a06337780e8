"""The pytest plugin: options, implementation choice, xfails file, reports, exit codes.

Each test runs pytest in a subprocess (pytester) on the installed suite, selecting cheap
clauses so the real machinery runs end to end.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CHEAP_CLAUSE = "SAVE-SIGNATURES"


def run_suite(pytester, *args):
    return pytester.runpytest_subprocess("--pyargs", "conformance", "-p", "no:cacheprovider", *args)


def test_plugin_does_not_import_tensorflow_elsewhere(pytester):
    pytester.makepyfile(
        test_other="""
        import sys

        def test_no_tensorflow():
            assert "tensorflow" not in sys.modules
            assert "keras" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_options_are_listed_in_help(pytester):
    result = pytester.runpytest_subprocess("--help")
    for option in (
        "--conformance-impl",
        "--conformance-clauses",
        "--conformance-xfails",
        "--conformance-report",
    ):
        result.stdout.fnmatch_lines([f"*{option}*"])


def test_unknown_clause_is_a_usage_error(pytester):
    result = run_suite(pytester, "--conformance-clauses=CALL-INFERENCE,NOPE")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown clause id(s): NOPE*"])


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_builtin", "*neither a built-in name*"),
        ("no_such_module_xyz:Impl", "*cannot import module 'no_such_module_xyz'*"),
        ("conformance.api:NoSuchAttr", "*has no attribute 'NoSuchAttr'*"),
    ],
)
def test_bad_implementation_is_a_usage_error(pytester, spec, message):
    result = run_suite(pytester, f"--conformance-impl={spec}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_env_var_chooses_the_implementation(pytester, monkeypatch):
    monkeypatch.setenv("CONFORMANCE_IMPL", "not_a_builtin_either")
    result = run_suite(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'not_a_builtin_either'*"])


def test_option_beats_env_var_and_unclaimed_clauses_skip(pytester, monkeypatch):
    pytester.makepyfile(
        claims_little="""
        from conformance import Implementation
        from conformance.implementations import ReferenceImplementation

        class ClaimsLittle(ReferenceImplementation):
            name = "claims-little"
            claims = frozenset({"SAVE-OVERWRITE"})
        """
    )
    monkeypatch.setenv("CONFORMANCE_IMPL", "not_a_builtin")
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    result = run_suite(
        pytester,
        "--conformance-impl=claims_little:ClaimsLittle",
        f"--conformance-clauses={CHEAP_CLAUSE}",
        "-rs",
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"*not claimed: {CHEAP_CLAUSE}*"])


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_xfails_stale_entry_is_an_error(pytester, workers):
    xfails = pytester.makefile(".txt", xfails="test_nothing.py::test_gone  # removed long ago\n")
    result = run_suite(
        pytester, f"--conformance-clauses={CHEAP_CLAUSE}", f"--conformance-xfails={xfails}",
        *workers,
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    # pytest's own usage-error line, in-process and from an xdist worker alike (not an
    # interruption of the session: "!!! _pytest.outcomes.Exit ...")
    result.stderr.fnmatch_lines(
        ["ERROR: conformance: xfails entries match no collected test: test_nothing.py::test_gone"]
    )
    assert "Exit:" not in output and "Interrupted" not in output
    assert "Traceback" not in output


def test_xfails_entry_without_reason_is_an_error(pytester):
    xfails = pytester.makefile(".txt", xfails=f"{CHEAP_CLAUSE}\n")
    result = run_suite(pytester, f"--conformance-xfails={xfails}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*needs a reason*"])


def test_xfail_that_passes_is_reported(pytester, tmp_path):
    xfails = pytester.makefile(".txt", xfails=f"{CHEAP_CLAUSE}  # believed broken\n")
    report = tmp_path / "report.json"
    result = run_suite(
        pytester,
        f"--conformance-clauses={CHEAP_CLAUSE}",
        f"--conformance-xfails={xfails}",
        f"--conformance-report={report}",
    )
    result.stdout.fnmatch_lines(["*XPASS (expected failure passed)*test_signatures_written*"])
    document = json.loads(report.read_text())
    assert document["clauses"][CHEAP_CLAUSE]["status"] == "xpass"


def test_report_under_xdist(pytester, tmp_path):
    report = tmp_path / "report.json"
    markdown = tmp_path / "report.md"
    clauses = f"{CHEAP_CLAUSE},SAVE-OVERWRITE"
    result = run_suite(
        pytester, "-n", "2", f"--conformance-clauses={clauses}", f"--conformance-report={report}"
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    document = json.loads(report.read_text())
    assert document["implementation"] == "reference"
    assert document["versions"]["tensorflow"].startswith("2.21")
    assert document["clauses"][CHEAP_CLAUSE]["status"] == "pass"
    assert document["clauses"]["SAVE-OVERWRITE"]["status"] == "pass"
    assert document["clauses"]["SAVE-OVERWRITE"]["examples"] >= 1
    assert document["clauses"]["CALL-INFERENCE"]["status"] == "not run"
    # The split of the clause's time crossed from the workers: saves are the implementation's.
    split = document["clauses"]["SAVE-OVERWRITE"]["seconds"]
    assert split["save"] > 0 and split["total"] >= split["save"] + split["build"]
    assert split["checks"] == pytest.approx(
        split["total"] - sum(split[p] for p in ("save", "load", "build", "read")), abs=0.01
    )
    run_suite(pytester, f"--conformance-clauses={CHEAP_CLAUSE}", f"--conformance-report={markdown}")
    text = markdown.read_text()
    assert "| clause | status |" in text
    assert f"| {CHEAP_CLAUSE} | pass |" in text


def test_failure_names_clause_spec_and_command(pytester, tmp_path):
    pytester.makepyfile(
        broken=textwrap.dedent(
            """
            from conformance.implementations import ReferenceImplementation

            class IgnoresSignatures(ReferenceImplementation):
                name = "ignores-signatures"

                def save(self, model, path, *, overwrite=True, include_optimizer=True,
                         signatures=None):
                    super().save(model, path, overwrite=overwrite,
                                 include_optimizer=include_optimizer)
            """
        )
    )
    report = tmp_path / "report.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        # this tree's conformance, not an installed one
        [str(pytester.path), str(Path(__file__).resolve().parents[2])]
    ))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "conformance",
            "-p",
            "no:cacheprovider",
            "--conformance-impl=broken:IgnoresSignatures",
            f"--conformance-clauses={CHEAP_CLAUSE}",
            f"--conformance-report={report}",
        ],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-3000:]
    assert f"[{CHEAP_CLAUSE}]" in proc.stdout
    assert "reproduce: pytest --pyargs conformance --conformance-impl=broken:IgnoresSignatures" in (
        proc.stdout
    )
    failure = json.loads(report.read_text())["clauses"][CHEAP_CLAUSE]["failures"][-1]
    assert failure["command"].startswith("pytest --pyargs conformance")
    assert "signatures" in failure["spec"]
    # and the standalone script's command, for the run's report
    assert failure["script"].startswith(f"python -m conformance reproduce {report}")
    assert "  script: python -m conformance reproduce " in proc.stdout


_OTHER_PROJECT_CONFTEST = """
from hypothesis import settings
settings.register_profile("ci", max_examples=7)
settings.register_profile("dev", max_examples=3)
"""

_OTHER_PROJECT_TEST = """
import sys
from hypothesis import given, settings, strategies as st

def test_own_profiles_and_no_tensorflow():
    assert settings.get_profile("ci").max_examples == 7
    assert settings.get_profile("dev").max_examples == 3
    assert settings.get_current_profile_name() == "ci"
    assert "tensorflow" not in sys.modules and "keras" not in sys.modules

@given(st.integers())
def test_a_property(x):
    assert settings().max_examples == 7
"""


def test_plugin_is_inert_in_a_session_that_does_not_run_the_suite(pytester, monkeypatch):
    """Installed, the plugin loads in every session; another project's stays as it was."""
    # Run under xdist, this test's own worker variables would make pytest-benchmark warn.
    for name in [k for k in os.environ if k.startswith("PYTEST_XDIST")]:
        monkeypatch.delenv(name)
    pytester.makeconftest(_OTHER_PROJECT_CONFTEST)
    pytester.makepyfile(test_other=_OTHER_PROJECT_TEST)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:xdist", "-W", "error", "--hypothesis-profile=ci"
    )
    result.assert_outcomes(passed=2)
    assert "warning" not in result.stdout.str().lower()
    assert "Keras SavedModel conformance" not in result.stdout.str()


def test_an_adapter_without_save_is_a_usage_error(pytester, monkeypatch):
    pytester.makepyfile(
        no_save="""
        from conformance import Implementation

        class LoaderOnly(Implementation):
            name = "loader-only"

            def load(self, path):
                raise NotImplementedError
        """
    )
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    result = run_suite(pytester, "--conformance-impl=no_save:LoaderOnly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*LoaderOnly does not override Implementation.save*"])
    assert "Traceback" not in result.stderr.str()


def test_not_claimed_reason_is_in_the_skip_and_the_report(pytester, monkeypatch, tmp_path):
    pytester.makepyfile(
        reasons="""
        from conformance.implementations import ReferenceImplementation

        class NoSignatures(ReferenceImplementation):
            name = "no-signatures"
            not_claimed = {"SAVE-SIGNATURES": "writes only serving_default, by design"}
            claims = frozenset({"SAVE-OVERWRITE"})
        """
    )
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    report = tmp_path / "report.json"
    result = run_suite(
        pytester,
        "--conformance-impl=reasons:NoSignatures",
        f"--conformance-clauses={CHEAP_CLAUSE}",
        f"--conformance-report={report}",
        "-rs",
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*not claimed: SAVE-SIGNATURES: writes only serving_default*"])
    clause = json.loads(report.read_text())["clauses"][CHEAP_CLAUSE]
    assert clause["status"] == "not claimed"
    assert any("by design" in reason for reason in clause["skip_reasons"])


def test_tensorflow_start_up_is_quiet_from_any_directory(pytester):
    # -s: nothing captured, so any line TensorFlow prints on import would show.
    result = run_suite(pytester, f"--conformance-clauses={CHEAP_CLAUSE}", "-p", "no:xdist", "-s")
    result.assert_outcomes(passed=1)
    output = result.stdout.str() + result.stderr.str()
    for noise in ("cpu_feature_guard", "oneDNN custom operations", "cuInit", "absl::"):
        assert noise not in output, f"TensorFlow start-up line in the output: {noise}"


def test_a_tensorflow_runtime_error_is_summarized_by_its_cause():
    from conformance.plugin.example import error_text

    class InvalidArgumentError(Exception):
        pass

    raw = (
        "Graph execution error:\n\nDetected at node bincount/DenseBincount defined at (most "
        "recent call last):\n<stack traces unavailable>\nInput 'in' must be non-negative! "
        "Negative input value found: -1\n\t [[{{node bincount/DenseBincount}}]]"
    )
    text = error_text(InvalidArgumentError(raw))
    assert text.splitlines()[0] == (
        "InvalidArgumentError: Input 'in' must be non-negative! Negative input value found: -1"
    )
    assert "node bincount/DenseBincount" in text
    assert error_text(ValueError("first\nsecond")) == "ValueError: first\nsecond"
