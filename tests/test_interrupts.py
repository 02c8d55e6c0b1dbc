"""A SIGTERM whose Interrupted lands in a finalizer (``__del__``, a weakref callback) is not lost."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import signal, time
from glyphlab.errors import Interrupted, keep_interrupts_that_land_in_finalizers

def handler(signum, frame):
    raise Interrupted(signum)

signal.signal(signal.SIGTERM, handler)
keep_interrupts_that_land_in_finalizers()

class RaisesInFinalizer:
    def __del__(self):  # as the handler does when SIGTERM lands while a finalizer runs
        raise Interrupted(signal.SIGTERM)

try:
    obj = RaisesInFinalizer()
    del obj             # Python prints 'Exception ignored in ...' and goes on: the interrupt is lost
    time.sleep(60)      # unless it is sent again, which interrupts this sleep
    print("lost")
except Interrupted as e:
    print("raised again:", e)
"""


def test_an_interrupt_swallowed_by_a_finalizer_is_raised_again():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "raised again: interrupted by SIGTERM", out.stdout + out.stderr[-2000:]
