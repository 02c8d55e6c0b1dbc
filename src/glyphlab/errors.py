"""glyphlab's errors and the rules more than one floor checks: the bottom floor, imports nothing of glyphlab.

Every expected failure is a :class:`GlyphlabError` whose message is one line saying what was
expected and what was found; ``experiment.main`` prints it and exits non-zero instead of a
traceback. The kinds say whose fault it is: the config (:class:`ConfigError`), the data
(:class:`DataError`), the MLflow store (:class:`TrackingError`) or a comparison that finds nothing to
compare (:class:`CompareError`).
"""
from __future__ import annotations

# A run's image side: below 8 pixels two pooling blocks leave nothing; above 512 a set no longer fits in memory.
IMAGE_SIZE_RANGE = (8, 512)


class GlyphlabError(Exception):
    """An expected failure with a one-line message (what was expected, what was found)."""


class ConfigError(GlyphlabError, ValueError):
    """A config value out of its range; the message names the key."""


class DataError(GlyphlabError, ValueError):
    """Bad dataset input; the message says what was expected and what was found."""


class ImageTooLargeError(DataError):
    """An image file claims more pixels than glyphlab decodes (a decompression bomb, or a photo to
    shrink first); refused from its header, before decoding. A server answers it 413, other bad images 400."""


class TrackingError(GlyphlabError, RuntimeError):
    """The tracking store cannot be used; the message names the URI."""


class CompareError(GlyphlabError, RuntimeError):
    """Nothing to compare (no store, no matching runs); one line saying what was searched."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped a run, whatever its model family or phase.

    A KeyboardInterrupt, so nothing that catches ``Exception`` swallows it. ``signum``: the signal;
    ``run_id``: the MLflow run it ended KILLED (set by ``tracking.start_run``; None before a run
    existed, or when the tracking server did not take the end). ``experiment.main`` turns it into one line.
    """

    def __init__(self, signum: int, run_id: str | None = None):
        super().__init__(f"signal {signum}")
        self.signum, self.run_id = signum, run_id

    def __reduce__(self):  # whole across processes (a joblib worker's job hands its exception back)
        return type(self), (self.signum, self.run_id)

    def __str__(self) -> str:
        import signal

        name = {signal.SIGINT: "Ctrl-C (SIGINT)"}.get(self.signum) or _signal_name(self.signum)
        where = f"; MLflow run {self.run_id} ended KILLED" if self.run_id else ""
        return f"interrupted by {name}{where}"


def _signal_name(signum: int) -> str:
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def check_image_size(value, key: str = "data.image_size", limits: tuple[int, int] = IMAGE_SIZE_RANGE,
                     error: type[GlyphlabError] = ConfigError) -> int:
    """``value`` as the image side: an integer within ``limits`` (inclusive), else ``error`` naming ``key``."""
    low, high = limits
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise error(f"{key} must be an integer from {low} to {high}, got {value!r}")
    return value


def check_at_least(value, minimum: int, key: str) -> int:
    """``value`` as an integer of at least ``minimum``, else :class:`ConfigError` naming ``key``
    (also for a value of the wrong type, ``trainer.max_epochs=abc``, which ``<`` alone would crash on)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be an integer of at least {minimum}, got {value!r}")
    return value


def check_split(val: float, test: float, error: type[GlyphlabError] = ConfigError) -> None:
    """``split.val`` and ``split.test``: fractions in (0, 1) that leave a training part."""
    for key, fraction in (("split.val", val), ("split.test", test)):
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise error(f"{key} must be a fraction between 0 and 1, got {fraction}")
    if val + test >= 1:
        raise error(f"split.val + split.test must be below 1, got {val + test}")


def refused(key: str, node, error: BaseException) -> ConfigError:
    """The error of a library that refused the values of config ``key`` while it was being built, as one
    line naming the key and the values (``node``, its config); Hydra's wrapper is taken off.

    Used where each configured object is constructed (optimizer, Trainer, net, estimator), so every
    value a library refuses gets the same treatment, with the library's own reason.
    """
    while type(error).__name__ == "InstantiationException" and error.__cause__ is not None:
        error = error.__cause__
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    items = dict(node or {})
    target = str(items.pop("_target_", "")).rsplit(".", 1)[-1]
    settings = " ".join(f"{k}={v}" for k, v in items.items() if not str(k).startswith("_"))
    return ConfigError(f"{key} ({' '.join(filter(None, [target, settings]))}) was refused: {reason}")


def keep_interrupts_that_land_in_finalizers() -> None:
    """An :class:`Interrupted` raised by a signal handler while Python runs a ``__del__`` or a weakref
    callback is printed as "Exception ignored in …" and lost: the run would go on after SIGTERM. Such a
    one is sent again a moment later (from a thread: sent from inside the hook, the handler would raise
    in the hook, and be lost again), so the handler raises it once more in the code that was running."""
    import signal
    import sys
    import threading
    import time

    hook = sys.unraisablehook
    if getattr(hook, "keeps_interrupts", False):
        return

    def send_again(signum: int) -> None:  # to the main thread: a blocking call there is interrupted too
        time.sleep(0.01)
        signal.pthread_kill(threading.main_thread().ident, signum)

    def unraisable(info):
        if isinstance(info.exc_value, Interrupted):
            threading.Thread(target=send_again, args=(info.exc_value.signum,), daemon=True).start()
        else:
            hook(info)

    unraisable.keeps_interrupts = True
    sys.unraisablehook = unraisable
