"""Writing files safely: atomic replacement, and paths that cannot leave their root."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


class UnsafePath(ValueError):
    """A name that would place an output outside its folder."""


def atomic_write_bytes(path: Path, data: bytes, make_parent: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary name, so the file appears only complete."""
    if make_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")
    with open(part, "wb") as handle:
        handle.write(data)
    os.replace(part, path)


def inside(root: Path, *parts: str) -> Path:
    """``root / parts...``, refusing any part that is empty, '.', '..', absolute or holds a
    separator, so the result can never resolve outside ``root``."""
    for part in parts:
        if (not part or part in (".", "..") or "/" in part or "\\" in part or "\x00" in part
                or os.path.isabs(part)):
            raise UnsafePath(f"{part!r} is not a safe file or folder name (inside {root})")
    return root.joinpath(*parts)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Busy(RuntimeError):
    """The folder is in use by another live run."""


class FolderLock:
    """An exclusive lock on a folder for one run: ``.lock`` holds the holder's host and PID.
    The lock is the kernel's (``flock``), so a dead holder's is released with it: a stale
    ``.lock`` file is simply taken over; a live holder is refused with its host and PID."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / ".lock"
        self.handle = None

    def __enter__(self):
        import fcntl
        import socket
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise Busy(f"{self.path.parent} is in use by a run of {holder}; wait for it to finish (or stop it), "
                       "then re-run to resume") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc):
        import fcntl
        if self.handle is not None:
            self.handle.seek(0)
            self.handle.truncate()
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
