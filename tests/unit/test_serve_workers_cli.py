"""`cometgate serve --workers N`: what the flag accepts, and the default of one per core."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest

from cometgate.cli import main
from cometgate.serve_workers import default_workers, run_workers
from cometgate.settings import load_settings


@pytest.mark.parametrize(("value", "message"), [
    ("0", "argument --workers: must be between 1 and 256, got 0"),
    ("257", "argument --workers: must be between 1 and 256, got 257"),
    ("-2", "argument --workers: must be between 1 and 256, got -2"),
    ("two", "argument --workers: expected a whole number, got 'two'"),
])
def test_a_bad_worker_count_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--workers", value])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_the_default_is_one_worker_per_usable_core() -> None:
    assert default_workers() == len(os.sched_getaffinity(0)) >= 1


def test_a_port_already_taken_ends_the_parent_with_status_1(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(None, data_dir=tmp_path, host="127.0.0.1", port=port,
                                 env={"HOME": str(tmp_path)})
        with caplog.at_level(logging.ERROR, logger="cometgate.workers"):
            assert run_workers(settings, 2) == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in caplog.text
