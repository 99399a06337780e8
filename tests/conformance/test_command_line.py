"""``python -m conformance``: every subcommand's ``--help`` prints and exits 0."""

import pytest

from conformance.__main__ import TOOLS, main

COMMANDS = ("fingerprint-corpus", "corpus", "contract", *TOOLS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"python -m conformance {command}" in capsys.readouterr().out
