"""Which process runs a run, and ending the runs whose process is gone.

A process that dies too hard to end its run (SIGKILL, out of memory, a power cut) leaves it
RUNNING; every run records its host, pid and the pid's start time, and the next glyphlab process
on the same host that opens the store ends such runs KILLED (:func:`mark_dead_runs`).
"""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

HOST_TAG, PID_TAG, PID_START_TAG = "glyphlab.host", "glyphlab.pid", "glyphlab.pid_start"


def process_tags(pid: int | None = None) -> dict:
    """Tags naming the process that runs a run: host, pid and the pid's start time (pids are reused)."""
    pid = os.getpid() if pid is None else pid
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(pid)}
    if start := _process_start(pid):
        tags[PID_START_TAG] = start
    return tags


def _process_start(pid: int) -> str | None:
    """``<boot id>:<start time in clock ticks since boot>`` of a live process (Linux), else None.

    Together with the pid it names one process for good: a reused pid has a later start time, and
    after a reboot the boot id differs.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # the name before ')' may hold spaces
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    if fields[0] in "ZX":  # a zombie: dead, only not yet reaped by its parent
        return "dead"
    return f"{boot}:{fields[19]}"  # field 22 of proc(5)


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    now = _process_start(pid)
    return now != "dead" and (start is None or now in (start, None))


def mark_dead_runs(client) -> list[str]:
    """End as KILLED, with a note, the RUNNING runs of this host whose process is gone; returns their ids.

    Called by every glyphlab process that opens a store (runs, sweeps, compare), so a run whose
    process was killed too hard to end it stays RUNNING only until then.
    """
    from datetime import datetime, timezone

    host = socket.gethostname()
    try:
        experiment_ids = [e.experiment_id for e in client.search_experiments(max_results=1000)]
        running = client.search_runs(experiment_ids, f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = "
                                     f"'{host}'", max_results=1000) if experiment_ids else []
    except Exception:  # noqa: BLE001 - housekeeping: a store that cannot be searched so is left as it is
        return []
    marked = []
    for run in running:
        tags = run.data.tags
        try:
            pid = int(tags[PID_TAG])
        except (KeyError, ValueError):
            continue
        if _alive(pid, tags.get(PID_START_TAG)):
            continue
        note = (f"process {pid} on {host} ended without ending this run (killed by SIGKILL, out of memory, "
                f"a crash or a power cut); marked KILLED by glyphlab process {os.getpid()} at "
                f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC")
        try:
            if client.get_run(run.info.run_id).info.status != "RUNNING":  # another process was quicker
                continue
            client.set_tag(run.info.run_id, "error", note)
            if not tags.get("mlflow.note.content"):
                client.set_tag(run.info.run_id, "mlflow.note.content", note)
            client.set_terminated(run.info.run_id, "KILLED")
            marked.append(run.info.run_id)
        except Exception:  # noqa: BLE001 - deleted meanwhile, or a read-only store: leave it for the next one
            continue
    if marked:
        logging.getLogger(__package__).warning(f"glyphlab: marked {len(marked)} run(s) KILLED whose process on {host} "
                                            f"is gone: {' '.join(marked)}")
    return marked
