"""The scikit-learn path: an estimator on flattened pixels, trained epoch by epoch.

Epochs are driven with ``partial_fit`` so the sklearn MLP gets the same per-epoch
``train/loss`` and ``val/accuracy`` curves, on the same validation split, as the torch models,
and stops early on that split (keeping its best epoch).
"""
from __future__ import annotations

import contextlib
import copy
import signal
import threading
import warnings

import numpy as np

from glyphlab import phases
from glyphlab.errors import Interrupted


def flat_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 ``[N, H, W]`` → float32 ``[N, H·W]`` in 0..1."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def fit(estimator, x_train, y_train, x_val, y_val, *, n_classes: int, max_epochs: int, patience: int,
        sample_weight=None, on_epoch=None):
    """Fit ``estimator`` (anything with ``partial_fit``) for up to ``max_epochs`` passes.

    x_*: uint8 images ``[N, H, W]``; y_*: int64 ``[N]``. ``on_epoch(epoch, metrics)`` is called
    after every pass with ``train/loss`` (when the estimator has ``loss_``) and ``val/accuracy``.
    Returns the estimator as it was at its best validation epoch.
    """
    xt, xv = flat_pixels(x_train), flat_pixels(x_val)
    classes = np.arange(n_classes)
    phases.mark("first_step")   # a no-op unless the start-up benchmark asks for it
    best, best_acc, since_best = None, -1.0, 0
    with signals_noticed() as signals, warnings.catch_warnings():
        # MLPClassifier's own note of a caught interrupt: the run's one line says it (experiment.main)
        warnings.filterwarnings("ignore", "Training interrupted by user", UserWarning)
        for epoch in range(max_epochs):
            if sample_weight is None:
                estimator.partial_fit(xt, y_train, classes=classes)
            else:
                estimator.partial_fit(xt, y_train, classes=classes, sample_weight=sample_weight)
            if signals:  # the estimator caught the KeyboardInterrupt (MLPClassifier does): raise it again
                raise Interrupted(signals[0])
            metrics = {"val/accuracy": float(np.mean(estimator.predict(xv) == y_val))}
            if hasattr(estimator, "loss_"):
                metrics["train/loss"] = float(estimator.loss_)
            if on_epoch is not None:
                on_epoch(epoch, metrics)
            if metrics["val/accuracy"] > best_acc:
                best, best_acc, since_best = copy.deepcopy(estimator), metrics["val/accuracy"], 0
            else:
                since_best += 1
                if since_best >= patience:
                    break
    return best


@contextlib.contextmanager
def signals_noticed():
    """A list that gets the number of every SIGINT or SIGTERM that raised KeyboardInterrupt inside the block.

    scikit-learn's MLPClassifier catches KeyboardInterrupt in ``partial_fit``/``fit`` and just stops
    that pass, so Ctrl-C (or SIGTERM, which glyphlab's run turns into an interrupt:
    tracking.runs.start_run) would be lost and training would go on. The handlers in force keep
    doing what they did; this only notes the interrupt, so the caller can raise it again. A signal
    the process ignores or dies of (SIG_IGN, SIG_DFL) is left alone, as are threads other than the
    main one (Python runs handlers there only).
    """
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def noted(signum, frame):
        try:
            previous[signum](signum, frame)
        except KeyboardInterrupt:
            seen.append(signum)
            raise

    wrapped = [s for s, handler in previous.items() if callable(handler)]
    for s in wrapped:
        signal.signal(s, noted)
    try:
        yield seen
    finally:
        for s in wrapped:
            signal.signal(s, previous[s])


def predict_proba(estimator, images: np.ndarray) -> np.ndarray:
    """float32 ``[N, C]`` class probabilities for uint8 images ``[N, H, W]``."""
    return estimator.predict_proba(flat_pixels(images)).astype(np.float32)
