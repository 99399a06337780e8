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
