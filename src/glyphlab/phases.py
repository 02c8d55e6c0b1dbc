"""Wall-clock stamps of a run's phases (run start, data ready, fit start, first training step).

Off unless ``GLYPHLAB_PHASES=<file>`` is set (the start-up benchmark sets it, benchmarks/startup.py):
then the first :func:`mark` of each phase appends one JSON line to that file, with the time and
the top-level packages imported by then, so a process can be watched from outside while it runs.
The last phase marked is kept either way (:data:`current`).
"""
from __future__ import annotations

import json
import os
import sys
import time

_seen: set[str] = set()
current: str | None = None  # the last phase marked, stamped or not (glyphlab.failures says what a run was doing)


def mark(phase: str) -> None:
    global current
    current = phase
    path = os.environ.get("GLYPHLAB_PHASES")
    if not path or phase in _seen:
        return
    _seen.add(phase)
    modules = sorted({name.partition(".")[0] for name in list(sys.modules)})
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"phase": phase, "time": time.time(), "modules": modules}) + "\n")
