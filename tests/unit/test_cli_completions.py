"""`paygate-mcp completions`: each shell's script names every subcommand and every option of each, so a
flag added to the CLI is completed without anyone editing the generator."""

from __future__ import annotations

import pytest
import typer.main
from typer.testing import CliRunner

from paygate.cli import app
from paygate.cli_completions import SHELLS, command_tree

runner = CliRunner()


def test_the_command_tree_is_the_cli_itself() -> None:
    top, commands = command_tree(typer.main.get_command(app))
    names = {c.name for c in commands}
    assert {"wrap", "validate", "version", "import-state", "migrate-store", "completions"} <= names
    wrap = next(c for c in commands if c.name == "wrap")
    flags = {n: f for f in wrap.flags for n in f.names}
    assert flags["--server"].takes_value and flags["--remote-url"].takes_value
    assert not flags["--shadow"].takes_value  # a switch: nothing to complete after it
    assert {"--version", "-v"} <= {n for f in top for n in f.names}
    assert next(c for c in commands if c.name == "completions").words == SHELLS


@pytest.mark.parametrize("shell", SHELLS)
def test_every_subcommand_and_option_is_in_the_script(shell: str) -> None:
    result = runner.invoke(app, ["completions", shell])
    assert result.exit_code == 0, result.output
    _, commands = command_tree(typer.main.get_command(app))
    for command in commands:
        assert command.name in result.output
        for flag in command.flags:
            for name in flag.names:
                # fish names long options without their dashes (-l server), the others as typed
                spelled = f"-l {name[2:]}" if shell == "fish" and name.startswith("--") else name
                assert spelled in result.output, (shell, command.name, name)


def test_an_unknown_shell_is_refused_with_the_choices() -> None:
    result = runner.invoke(app, ["completions", "tcsh"])
    assert result.exit_code == 2
    assert "bash, zsh, fish" in result.output
