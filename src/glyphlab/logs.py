"""glyphlab's lines (the run's summary, notices, errors) go through :mod:`logging`.

Under Hydra, ``conf/hydra/job_logging/glyphlab.yaml`` sends them bare to the console and, with time
stamps, to the job's ``run.log``. Anywhere else (glyphlab imported by other code, tests) the
package logger falls back to :class:`ConsoleHandler` alone. Kept free of heavy imports.
"""
from __future__ import annotations

import logging
import sys


class ConsoleHandler(logging.Handler):
    """A record's message, bare: problems (WARNING and up) on stderr, the rest on stdout.

    The stream is looked up at each record, so redirections made later (pytest's capture) see it.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging's own convention: never raise from a handler
            self.handleError(record)


class DropLightningTips(logging.Filter):
    """Lightning's advertising tips ("💡 Tip: ... litlogger ..."): noise in every run's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).lstrip().startswith("💡")


class DropMlflowExampleCheck(logging.Filter):
    """MLflow's "Validating input example against model signature" (INFO, every logged model): a step
    of its own, not news; a failed check is MLflow's WARNING or error, which still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Validating input example against model signature")


def install_fallback() -> None:
    """The package logger's console lines when no logging configuration names it (outside Hydra)."""
    logger = logging.getLogger("glyphlab")
    if not any(isinstance(h, ConsoleHandler) for h in logger.handlers):
        logger.addHandler(ConsoleHandler())
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
