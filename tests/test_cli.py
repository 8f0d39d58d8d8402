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
        "import sys, tutor.ask, index.retriever, index.encoder, tutor.services, knowledge.store;"
        "heavy = [m for m in ('torch', 'matplotlib', 'discord', 'sentence_transformers', 'transformers')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code == 2 and "No such command" in result.output


def test_a_mistyped_command_gets_the_nearest_names():
    result = CliRunner().invoke(main, ["aks"])
    assert result.exit_code == 2 and "Did you mean" in result.output and "ask" in result.output
    nested = CliRunner().invoke(main, ["kb", "stat"])
    assert nested.exit_code == 2 and "stats" in nested.output


def test_an_empty_question_asks_for_one_before_loading_anything():
    for empty in ([""], ["  "]):
        result = CliRunner().invoke(main, ["ask", *empty])
        assert result.exit_code == 2 and "ask me a question" in result.output


def test_demo_folders_without_out_are_bounded(tmp_path):
    from tutor.demo import KEEP_RUNS, default_out_dir

    made = [default_out_dir(tmp_path) for _ in range(KEEP_RUNS + 5)]
    left = sorted(p for p in tmp_path.iterdir())
    assert len(left) == KEEP_RUNS and made[-1] in left and made[0] not in left
