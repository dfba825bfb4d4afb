"""What the supervisor puts on the worker's command line reaches the worker's settings."""

from __future__ import annotations

from pathlib import Path

from cometgate.providers.local.supervisor import WorkerCommand
from cometgate.worker.server import parse_args


def test_the_repeat_penalty_travels_on_the_command_line(tmp_path: Path) -> None:
    command = WorkerCommand(model_path=tmp_path / "m.gguf", model_name="m", host="127.0.0.1",
                            threads=2, context_size=512, repeat_penalty=1.15)
    argv = command.argv(port=9999)
    settings = parse_args(argv[argv.index("--model-path"):])
    assert settings.repeat_penalty == 1.15
    assert (settings.port, settings.context_size, settings.model_path) == (
        9999, 512, tmp_path / "m.gguf")


def test_without_a_repeat_penalty_there_is_none(tmp_path: Path) -> None:
    assert parse_args(["--model-path", str(tmp_path / "m.gguf")]).repeat_penalty == 1.0
