"""The completion scripts run by the real shells: each parses, and bash and fish complete subcommands,
options and the choices of `completions` as a user pressing TAB would see them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import CLI


def _script(shell: str, tmp_path: Path) -> Path:
    out = subprocess.run([CLI, "completions", shell], capture_output=True, text=True, timeout=60, check=True)
    path = tmp_path / f"paygate-mcp.{shell}"
    path.write_text(out.stdout)
    return path


@pytest.mark.parametrize(
    "shell,check", [("bash", ["bash", "-n"]), ("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])]
)
def test_each_script_parses_in_its_shell(shell: str, check: list[str], tmp_path: Path) -> None:
    done = subprocess.run([*check, str(_script(shell, tmp_path))], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def _bash_complete(script: Path, line: str) -> list[str]:
    """What the completion function offers for `line` (the cursor at its end)."""
    words = line.split(" ")
    program = f"""
source {script}
COMP_WORDS=({" ".join(f"'{w}'" for w in words)})
COMP_CWORD={len(words) - 1}
_paygate_mcp
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30, check=True)
    return [w for w in done.stdout.splitlines() if w]


def test_bash_completes_subcommands_options_and_shells(tmp_path: Path) -> None:
    script = _script("bash", tmp_path)
    assert _bash_complete(script, "paygate-mcp wr") == ["wrap"]
    assert "--remote-url" in _bash_complete(script, "paygate-mcp wrap --re")
    assert "--version" in _bash_complete(script, "paygate-mcp --")
    assert _bash_complete(script, "paygate-mcp completions z") == ["zsh"]
    assert _bash_complete(script, "paygate-mcp wrap --server ") == []  # a value: the shell's files instead


def test_fish_completes_subcommands_and_options(tmp_path: Path) -> None:
    script = _script("fish", tmp_path)

    def complete(line: str) -> list[str]:
        done = subprocess.run(
            ["fish", "--no-config", "-c", f"source {script}; complete -C '{line}'"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return [row.split("\t")[0] for row in done.stdout.splitlines()]

    assert complete("paygate-mcp mig") == ["migrate-store"]
    assert "--remote-url" in complete("paygate-mcp wrap --rem")
    assert complete("paygate-mcp completions fi") == ["fish"]
