"""The one way files are created in an output folder (OUT, DIST, a results folder): below a
root the user named, through folders opened one by one without following links
(``O_NOFOLLOW``), into a fresh temporary file created with ``O_EXCL`` and renamed over the
final name (``os.replace`` replaces a link or a hard link itself, never its target). A link
planted anywhere below the root is refused (``UnsafePath``), so nothing is ever written outside
the root whatever its names say or what someone left there. The root itself may be a link the
user made (``--out /scratch/me`` pointing elsewhere): it is where they asked the output to go."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
from pathlib import Path

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
NAME_MAX = 255  # bytes in one file name on every file system we write to
_UNSAFE_CHARACTERS = re.compile("[/\\\\\x00\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class UnsafePath(ValueError):
    """A name that would place an output outside its folder, or a link planted in the way."""


def check_name(part: str, root: Path | str = "") -> str:
    """``part`` as one file or folder name, or ``UnsafePath``: empty, '.', '..', absolute, a
    separator, NUL, a line break, or longer than a file system holds are refused."""
    if not part or part in (".", "..") or _UNSAFE_CHARACTERS.search(part):  # no "/": never absolute
        raise UnsafePath(f"{part!r} is not a safe file or folder name (inside {root})")
    if len(part) > NAME_MAX // 4 and len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise UnsafePath(f"{part[:40]!r}...: a name of more than {NAME_MAX} bytes (inside {root})")
    return part


def inside(root: Path, *parts: str) -> Path:
    """``root / parts...``, refusing any part that ``check_name`` refuses, so the result can
    never resolve outside ``root`` by its names (links are ``folder``'s business)."""
    for part in parts:
        check_name(part, root)
    return Path(root).joinpath(*parts)


def split(relative: str | os.PathLike, root: Path | str = "") -> list[str]:
    """A relative path's parts, each checked (``..``, absolute names and empty parts refused)."""
    text = os.fspath(relative)
    if text.startswith("/"):
        raise UnsafePath(f"{text!r} is an absolute path (inside {root})")
    return [check_name(p, root) for p in text.split("/")] if text else []


def _linked(root, parts, index) -> UnsafePath:
    where = Path(root, *parts[:index + 1])
    return UnsafePath(f"{where} is a link or not a folder: outputs are written only into real folders inside "
                      f"{root}; remove it (or use a new output folder)")


def open_folder(root: str | os.PathLike, relative: str | os.PathLike = "", create: bool = True) -> int:
    """A descriptor of ``root/relative`` reached without following links below ``root``,
    making missing folders when ``create``. The caller closes it."""
    parts = split(relative, root)
    descriptor = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index, part in enumerate(parts):
            try:
                following = os.open(part, _FOLDER, dir_fd=descriptor)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=descriptor)
                try:
                    following = os.open(part, _FOLDER, dir_fd=descriptor)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise _linked(root, parts, index) from None
                    raise
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _linked(root, parts, index) from None
                raise
            os.close(descriptor)
            descriptor = following
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


@contextlib.contextmanager
def folder(root: str | os.PathLike, relative: str | os.PathLike = "", create: bool = True):
    """``open_folder`` as a context: the descriptor is closed on leaving."""
    descriptor = open_folder(root, relative, create)
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def make_folders(root: str | os.PathLike, relative: str | os.PathLike = "") -> None:
    """Create ``root/relative`` (and ``root``), refusing links below ``root``."""
    Path(root).mkdir(parents=True, exist_ok=True)
    with folder(root, relative):
        pass


def _temporary() -> str:
    # short and fresh: a 255-byte final name still has a temporary name, and nothing someone
    # left under a predictable name is ever opened
    return f".{secrets.token_hex(8)}.part"


def write_in(descriptor: int, name: str, data) -> None:
    """Write ``data`` as ``name`` in the folder ``descriptor``: a new temporary file, then a rename."""
    check_name(name)
    temporary = _temporary()
    handle = os.open(temporary, _NEW, 0o666, dir_fd=descriptor)
    try:
        with os.fdopen(handle, "wb", closefd=True) as stream:
            stream.write(data)
        os.replace(temporary, name, src_dir_fd=descriptor, dst_dir_fd=descriptor)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=descriptor)
        raise


def write_bytes(root: str | os.PathLike, relative: str | os.PathLike, data) -> None:
    """Write ``data`` at ``root/relative`` atomically, never through a link (see the module)."""
    *parents, name = split(relative, root)
    with folder(root, "/".join(parents)) as descriptor:
        write_in(descriptor, name, data)


@contextlib.contextmanager
def new_file(root: str | os.PathLike, relative: str | os.PathLike):
    """A binary file to stream into; it appears at ``root/relative`` only when the block ends
    without an exception (else it is removed)."""
    *parents, name = split(relative, root)
    with folder(root, "/".join(parents)) as descriptor:
        temporary = _temporary()
        handle = os.open(temporary, _NEW, 0o666, dir_fd=descriptor)
        try:
            with os.fdopen(handle, "w+b", buffering=0, closefd=True) as stream:
                yield stream
            os.replace(temporary, name, src_dir_fd=descriptor, dst_dir_fd=descriptor)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=descriptor)
            raise


def _own_file(descriptor: int, where) -> None:
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(descriptor)
        raise UnsafePath(f"{where} is not a plain file of its own (a hard link, a FIFO or a device): remove it")


def open_existing(root: str | os.PathLike, relative: str | os.PathLike, flags: int = os.O_RDONLY,
                  own: bool = False) -> int:
    """A descriptor of the regular file ``root/relative`` opened without following links (and,
    when opened for writing or ``own``, not a hard link to a file elsewhere).
    ``FileNotFoundError`` when absent; ``UnsafePath`` for a link, FIFO, device or folder."""
    *parents, name = split(relative, root)
    with folder(root, "/".join(parents), create=False) as parent:
        return open_in(parent, name, Path(root, relative), flags, own)


def open_in(parent: int, name: str, where, flags: int = os.O_RDONLY, own: bool = False) -> int:
    """``open_existing`` of ``name`` (one checked component) in the folder open as ``parent``, for
    callers that open many files of one folder (``where``: the path, for messages)."""
    return open_with_size(parent, name, where, flags, own)[0]


def open_with_size(parent: int, name: str, where, flags: int = os.O_RDONLY, own: bool = False) -> tuple[int, int]:
    """``open_in``, with the file's size (one ``fstat`` for both)."""
    try:
        descriptor = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise UnsafePath(f"{where} is a link, a folder or a FIFO, not a file") from None
        raise
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode) or ((own or flags & (os.O_WRONLY | os.O_RDWR)) and info.st_nlink != 1):
        _own_file(descriptor, where)
    # a regular file now: O_NONBLOCK (there so that opening a FIFO cannot block) changes nothing
    return descriptor, info.st_size


class FolderWalk:
    """Folders of ``root`` opened one component at a time without following links, as
    ``open_folder`` does, for a caller visiting many files in sorted order: the folders open for
    the last file stay open, so the next file's common ancestors are not opened again. Use as a
    context (closes every descriptor)."""

    def __init__(self, root: str | os.PathLike):
        self.root = os.fspath(root)
        self.chain: list[tuple[str, int]] = []  # (component, descriptor), root's first under ""

    def __enter__(self):
        self.chain = [("", os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))]
        return self

    def __exit__(self, *exc) -> None:
        for _, descriptor in self.chain:
            os.close(descriptor)
        self.chain = []

    def parent(self, parts: list[str]) -> int:
        """The descriptor of the folder ``parts`` (checked components) below the root."""
        keep = 1
        while keep < len(self.chain) and keep - 1 < len(parts) and self.chain[keep][0] == parts[keep - 1]:
            keep += 1
        for _, descriptor in self.chain[keep:]:
            os.close(descriptor)
        del self.chain[keep:]
        for index in range(keep - 1, len(parts)):
            try:
                descriptor = os.open(parts[index], _FOLDER, dir_fd=self.chain[-1][1])
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _linked(self.root, parts, index) from None
                raise
            self.chain.append((parts[index], descriptor))
        return self.chain[-1][1]

    def read(self, relative: str, limit: int | None = None) -> bytes:
        """The bytes of the regular file ``root/relative`` (as ``read_bytes``: no links followed,
        ``UnsafePath`` for a larger file than ``limit``)."""
        *parents, name = split(relative, self.root)
        descriptor, size = open_with_size(self.parent(parents), name, Path(self.root, relative))
        try:
            if limit is not None and size > limit:
                raise UnsafePath(f"{Path(self.root, relative)} is larger than {limit} bytes")
            with os.fdopen(descriptor, "rb", closefd=False) as stream:
                return stream.read()
        finally:
            os.close(descriptor)


def read_bytes(root: str | os.PathLike, relative: str | os.PathLike, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``root/relative`` (no links followed; ``limit``: refuse a
    larger file with ``UnsafePath`` before reading it)."""
    descriptor = open_existing(root, relative)
    with os.fdopen(descriptor, "rb") as stream:
        if limit is not None and os.fstat(stream.fileno()).st_size > limit:
            raise UnsafePath(f"{Path(root, relative)} is larger than {limit} bytes")
        return stream.read()


def open_append(root: str | os.PathLike, relative: str | os.PathLike):
    """A text file at ``root/relative`` to append to (created if absent), never through a link."""
    *parents, name = split(relative, root)
    with folder(root, "/".join(parents)) as parent:
        try:
            descriptor = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                                 | os.O_NONBLOCK, 0o666, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
                raise UnsafePath(f"{Path(root, relative)} is a link, a folder or a FIFO, not a file") from None
            raise
    _own_file(descriptor, Path(root, relative))
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "a")


def refuse_links(root: str | os.PathLike) -> None:
    """``UnsafePath`` if any entry below ``root`` is a symbolic link (for trees a library writes
    into by path, such as a Zarr store's metadata)."""
    for parent, folders, files in os.walk(root, followlinks=False):
        for name in folders + files:
            if os.path.islink(os.path.join(parent, name)):
                raise UnsafePath(f"{os.path.join(parent, name)} is a link: outputs are written only into real "
                                 f"files and folders inside {root}; remove it")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Busy(RuntimeError):
    """The folder is in use by another live run."""


LOCK = ".lock"


class FolderLock:
    """An exclusive lock on a folder for one run: ``.lock`` holds the holder's host and PID.
    The lock is the kernel's (``flock``), so a dead holder's is released with it: a stale
    ``.lock`` file is simply taken over; a live holder is refused with its host and PID. A
    ``.lock`` that is a link or a hard link is removed and made anew, never written through."""

    def __init__(self, folder: Path, remove: bool = False):
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self.remove = remove  # leave no .lock behind (a release folder holds only the release)
        self.handle = None

    def _open(self):
        for _ in range(3):
            with folder(self.folder) as parent:
                try:
                    descriptor = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                                         0o666, dir_fd=parent)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
                        raise
                    descriptor = None
                if descriptor is not None:
                    info = os.fstat(descriptor)
                    if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                        os.set_blocking(descriptor, True)
                        return os.fdopen(descriptor, "r+")
                    os.close(descriptor)
                try:  # someone else's file under our name: take the name, leave the file
                    os.unlink(LOCK, dir_fd=parent)
                except IsADirectoryError:
                    raise UnsafePath(f"{self.path} is a folder; remove it") from None
                except FileNotFoundError:
                    pass
        raise UnsafePath(f"{self.path} keeps being replaced by a link; stop whatever does that")

    def __enter__(self):
        import fcntl
        import socket
        handle = self._open()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read(200).strip() or "another process"
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
            if self.remove:
                with contextlib.suppress(OSError), folder(self.folder, create=False) as parent:
                    os.unlink(LOCK, dir_fd=parent)
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
