"""Every sub-command of `cnslrisk` documents itself and every option."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from cnslrisk.cli import app

INTERFACE_COMMANDS = {"synth", "validate", "config", "train", "promote", "card", "score", "report"}


def commands() -> dict:
    return typer.main.get_command(app).commands


def test_the_interface_commands_exist():
    assert INTERFACE_COMMANDS <= set(commands())


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_command_and_option_has_help(name):
    command = commands()[name]
    assert command.help and len(command.help.split()) >= 10, f"{name}: its --help says too little"
    undocumented = [p.name for p in command.params if not getattr(p, "help", None)]
    assert undocumented == [], f"{name}: options without help: {undocumented}"


def test_config_init_documents_itself_and_every_option():
    init = commands()["config"].commands["init"]
    assert len(init.help.split()) >= 10
    assert [p.name for p in init.params if not getattr(p, "help", None)] == []


def test_root_help_lists_the_commands():
    done = subprocess.run([sys.executable, "-m", "cnslrisk.cli", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert all(name in done.stdout for name in INTERFACE_COMMANDS)
    assert "NOT for clinical use" in " ".join(done.stdout.split())
