"""The `tutor` entry point: lazy commands, help, and the main job's choice between bot and chat."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from tutor.cli import COMMANDS, main


def test_help_lists_every_command_without_importing_them():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for name in (*COMMANDS, "start"):
        assert f"  {name} " in result.output


def test_ask_path_does_not_import_heavy_libraries():
    """`tutor ask` must start fast: no torch, matplotlib, discord or sentence-transformers on its path."""
    code = (
        "import sys, index.cli, index.retriever, index.encoder, tutor.services, knowledge.store;"
        "heavy = [m for m in ('torch', 'matplotlib', 'discord', 'sentence_transformers', 'transformers')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code == 2 and "No such command" in result.output
