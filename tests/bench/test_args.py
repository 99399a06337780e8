"""The bench's command line: bad input is a usage error that names what it knows."""

import pytest

from bench.__main__ import parse_args


def test_comma_separated_implementations_are_split():
    args = parse_args(["saveload", "--impl", "reference,tf_keras"])
    assert args.impl == ["reference", "tf_keras"]
    assert parse_args(["saveload", "--impl", "reference", "--impl", "keras_export"]).impl == [
        "reference",
        "keras_export",
    ]


@pytest.mark.parametrize("value", ["nope", "reference,tf_kera", "no_such_module_ksc:Impl", "os"])
def test_unknown_implementation_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(["saveload", "--impl", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown implementation" in err
    assert "reference" in err and "tf_keras" in err and "keras_export" in err


def test_importable_adapter_is_accepted():
    adapter = "tests.conformance.planted:ForgetsTheOptimizerState"
    assert parse_args(["saveload", "--impl", adapter]).impl == [adapter]


@pytest.mark.parametrize(
    "argv, said",
    [
        (["flake", "--runs", "0"], "--runs 0: flake compares runs, give at least 2"),
        (["saveload", "--runs", "0"], "--runs 0: give a positive number of runs"),
        (["flake", "--runs", "1"], "flake compares runs, give at least 2"),
        (["flake", "--profile", "dev"], "ci, triage"),
        (["flake", "-n", "-1"], "give 0 (no xdist) or a number of workers"),
        (["flake", "--clauses", "SAVE-SIGNATURES,NOPE"], "unknown clause id(s): NOPE"),
        (["flake", "--runs", "x"], "invalid int value"),
    ],
)
def test_bad_flake_arguments_are_usage_errors(argv, said, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert said in capsys.readouterr().err


def test_flake_arguments():
    args = parse_args(["flake", "--runs", "3", "-n", "0", "--clauses", "SAVE-SIGNATURES"])
    assert (args.sections, args.runs, args.numprocesses) == (["flake"], 3, 0)
    assert args.clauses == "SAVE-SIGNATURES"
