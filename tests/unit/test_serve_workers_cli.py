"""`cometgate serve --workers N`: what the flag accepts, and the default of one per core."""

from __future__ import annotations

import os

import pytest

from cometgate.cli import main
from cometgate.serve_workers import default_workers


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
