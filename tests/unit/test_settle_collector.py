"""A serving process freezes what startup built and collects its young objects less often; run
in a child interpreter, since the test process's own collector must keep its defaults."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc
from cometgate.server import settle_collector
before = gc.get_freeze_count()
settle_collector()
print(before, gc.get_freeze_count(), *gc.get_threshold())
"""


def test_startup_objects_are_frozen_and_the_young_generation_grows() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120, check=True)
    before, frozen, young, *older = (int(n) for n in done.stdout.split())
    assert before == 0
    assert frozen > 10_000  # the imported gateway's modules, functions and tables
    assert young > 700 and older == [10, 10]  # 700: the interpreter's default

