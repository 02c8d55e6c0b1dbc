"""The on-disk cache of built glyph sets: one ``.npz`` per set, verified on read, written atomically.

A cache file holds the set's arrays and a record of each array's digest (blake2b of its dtype,
shape and bytes). :func:`read` checks the zip's CRC of every member and every digest, so a flipped
bit anywhere (an array's header saying 30 where 32 was written, a pixel) is a :class:`CacheDamaged`,
never different data: the loader rebuilds the set. :func:`write` goes through a temp file named
after its writer (host and pid) beside the cache file, locked while written, and renames it into
place; a writer killed half-way leaves that temp file, which the next writer or reader of the
folder removes (:func:`remove_stale_temps`).
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

DIGESTS = "digests"  # the member holding the arrays' digests
FILE_KEY = "file"  # ... and the name the file was written under
ARRAYS = ("images", "labels", "classes", "split", "meta")
TEMP_SUFFIX = ".tmp"
# Where the file system has no locks, a temp file whose writer cannot be told (another host's) is
# stale after this long: writing a cache file takes seconds, even for the largest sets.
STALE_AFTER_S = 600


class CacheDamaged(ValueError):
    """A cache file whose content is not what was written (one line: which check failed)."""


class FolderNotWritable(OSError):
    """No temp file can be made in the cache folder (read-only, not a folder, ...)."""


def digest(array: np.ndarray) -> str:
    """blake2b of an array's dtype, shape and bytes (C order)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{array.dtype.str}|{array.shape}|".encode())
    h.update(np.ascontiguousarray(array).data)
    return h.hexdigest()


def write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (and their digests) to ``path`` through a temp file renamed into place.

    The temp file is locked (flock) while it is written, which is how :func:`remove_stale_temps`
    tells a write in progress from one whose process died. OSError (a full disk;
    :class:`FolderNotWritable` when no temp file can be made) is the caller's to word; the temp file
    never stays.
    """
    remove_stale_temps(path.parent)
    # The file's own name (its cache key) too: a cache file copied or renamed over another is not read as it.
    digests = np.array(json.dumps({FILE_KEY: path.name, **{name: digest(a) for name, a in arrays.items()}}))
    for _ in range(5):
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.{_host()}.{os.getpid()}.",
                                       suffix=TEMP_SUFFIX)
        except OSError as e:
            raise FolderNotWritable(e.errno, e.strerror, str(path.parent)) from None
        _lock(fd, blocking=True)
        if os.fstat(fd).st_nlink:
            break
        os.close(fd)  # a cleaner took it for a dead write between its creation and the lock: again
    else:
        raise FolderNotWritable(0, "its temp files keep disappearing", str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays, **{DIGESTS: digests})
            f.flush()
            os.fsync(f.fileno())  # the rename must not reach the disk before the data does
            os.replace(tmp, path)  # while still locked: no cleaner removes it first
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _lock(fd: int, blocking: bool) -> bool | None:
    """flock ``fd`` exclusively: True when taken, False when another process holds it, None where the
    file system has no locks (or no fcntl: Windows)."""
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except (ImportError, OSError):
        return None
    return True


def read(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a cache file, each checked against the zip's CRC and its recorded digest.

    Raises :class:`CacheDamaged` (or the zip's or numpy's own error) for any file that is not
    exactly what :func:`write` wrote under this name. ``path`` may be an open binary file (no name
    to check).
    """
    with zipfile.ZipFile(path) as z:
        digests = json.loads(str(_member(z, DIGESTS)))
        if not isinstance(digests, dict) or sorted(digests) != sorted([FILE_KEY, *ARRAYS]):
            raise CacheDamaged(f"its digest record names {sorted(digests) if isinstance(digests, dict) else digests}")
        if isinstance(path, (str, os.PathLike)) and digests[FILE_KEY] != Path(path).name:
            raise CacheDamaged(f"it was written as {digests[FILE_KEY]}, another data set's cache file")
        arrays = {}
        for name in ARRAYS:
            arrays[name] = _member(z, name)
            if digest(arrays[name]) != digests[name]:
                raise CacheDamaged(f"array {name!r} ({arrays[name].dtype} {arrays[name].shape}) does not match "
                                   f"its recorded digest")
    return arrays


def _member(z: zipfile.ZipFile, name: str) -> np.ndarray:
    """Array ``name`` of the zip, read to the member's end so that zipfile checks its CRC-32
    (numpy's own reader stops where the header says the data ends)."""
    try:
        with z.open(name + ".npy") as f:
            array = np.lib.format.read_array(f, allow_pickle=False)
            if f.read(1 << 20):
                raise CacheDamaged(f"array {name!r}: bytes left after the {array.dtype} {array.shape} its header claims")
    except KeyError:
        raise CacheDamaged(f"no array {name!r}") from None
    return array


def _host() -> str:
    return "".join(ch if ch.isalnum() or ch == "-" else "_" for ch in socket.gethostname()) or "host"


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temp files of cache writes that will never finish; returns those removed.

    A temp file whose lock nobody holds has no writer (a writer holds it until the rename; the
    kernel lets go of a killed process's locks), whatever its name. Where the file system has no
    locks: one of this host whose writer process is gone, or any after :data:`STALE_AFTER_S`. Files
    this cannot remove (a read-only folder) are left alone.
    """
    removed = []
    try:
        candidates = list(Path(folder).glob(f"*.npz*{TEMP_SUFFIX}"))  # cache files' only: cache_dir may be a shared folder
    except OSError:
        return removed
    for tmp in candidates:
        try:
            fd = os.open(tmp, os.O_RDWR)
        except OSError:
            continue
        try:
            unlocked = _lock(fd, blocking=False)
            if unlocked is None:
                unlocked = _writer_gone(tmp)
            if unlocked:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def _writer_gone(tmp: Path) -> bool:
    """Without locks: the pid in the name (``<file>.npz.<host>.<pid>.<random>.tmp``) is gone, or it is old."""
    parts = tmp.name[:-len(TEMP_SUFFIX)].split(".npz.", 1)[-1].split(".")
    if len(parts) == 3 and parts[0] == _host() and parts[1].isdigit() and not _alive(int(parts[1])):
        return True
    return time.time() - tmp.stat().st_mtime > STALE_AFTER_S


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    except OverflowError:  # no pid at all
        return False
    try:  # a zombie is dead, only not yet reaped by its parent
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):
        return True
