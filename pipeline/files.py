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
