"""Reproducible tarballs: members sorted, fixed mtime, owner 0, empty owner names, fixed
modes, GNU format; gzip with no name and mtime 0; the sha256 computed while writing."""
from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
from pathlib import Path

from ..files import FolderWalk, UnsafePath, check_name, new_file, open_existing, open_with_size, split, write_bytes
from .plan import MEMBERS, Member, PublishError

_ZEROS = memoryview(bytes(512))
MTIME = 1546300800  # 2019-01-01T00:00:00Z, the benchmark's year: one fixed time for every member
CHUNK = 1 << 20

# ---------------------------------------------------------------- reproducible tarballs

def _header(name: str, size: int, directory: bool) -> bytes:
    """A GNU tar header (long names through tarfile's own GNU long-name records)."""
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) >= 100:
        info = tarfile.TarInfo(name)
        info.size, info.mtime = (0 if directory else size), MTIME
        info.mode = 0o755 if directory else 0o644
        info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    # the fields tarfile.TarInfo.tobuf(GNU_FORMAT) writes for such a member, without its overhead
    template, base = _TEMPLATES[directory]
    size_field = b"%011o\0" % (0 if directory else size)
    checksum = base + sum(encoded) + sum(size_field)
    return b"".join((encoded, bytes(100 - len(encoded)), template[100:124], size_field, template[136:148],
                     b"%06o\0 " % checksum, template[156:]))


def _template(directory: bool) -> tuple[bytes, int]:
    """A header with an empty name and size, and the checksum of everything but those two
    fields (the checksum field counted as spaces, as the format says)."""
    info = tarfile.TarInfo("x")
    info.size, info.mtime = 0, MTIME
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    block = bytearray(info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape"))
    block[0:100] = bytes(100)
    block[124:136] = bytes(12)
    block[148:156] = b" " * 8
    return bytes(block), sum(block)


_TEMPLATES = {False: _template(False), True: _template(True)}


class _HashingWriter:
    """A file that keeps the sha256 of everything written to it, so the tarball's checksum costs
    no second reading: writes are gathered into 1 MiB pieces, each written and handed to a
    thread that hashes it (hashlib releases the GIL, so hashing overlaps the copying)."""

    def __init__(self, handle):
        import queue
        import threading
        self.handle, self.digest = handle, hashlib.sha256()
        self.pieces: list = []
        self.size = 0
        self.queue: queue.Queue = queue.Queue(maxsize=8)
        self.thread = threading.Thread(target=self._hash, daemon=True)
        self.thread.start()

    def _hash(self) -> None:
        # one update per batch: small updates would hold the GIL (hashlib lets it go above 2 KiB)
        while (pieces := self.queue.get()) is not None:
            self.digest.update(b"".join(pieces))

    def write(self, data) -> int:
        self.pieces.append(data)
        self.size += len(data)
        if self.size >= CHUNK:
            self._flush_pieces()
        return len(data)

    def write_member(self, header: bytes, data, padding: int) -> None:
        """A member's header, bytes and padding to a whole block, in one call."""
        self.pieces += (header, data, _ZEROS[:padding]) if padding else (header, data)
        self.size += 512 + len(data) + padding
        if self.size >= CHUNK:
            self._flush_pieces()

    def _flush_pieces(self) -> None:
        pieces, self.pieces, self.size = self.pieces, [], 0
        while pieces:
            written = os.writev(self.handle.fileno(), pieces[:1024])
            self.queue.put(pieces[:1024])
            done = pieces[:1024]
            pieces = pieces[1024:]
            left = sum(map(len, done)) - written
            if left:  # a short write: the rest of these pieces, again
                joined = b"".join(done)[written:]
                self.handle.write(joined)

    def flush(self) -> None:
        self._flush_pieces()
        self.handle.flush()

    def hexdigest(self) -> str:
        self.flush()
        self.queue.put(None)
        self.thread.join()
        return self.digest.hexdigest()


def write_tarball(out: str, dist: str, tarball: str, members: list[Member], compress: bool,
                  check: bool = False) -> tuple[str, str, int]:
    """Stream ``members`` (files of ``out``, opened without following links) into
    ``dist/tarball`` (a new temporary file, then a rename). With ``check``, each file is hashed
    on the way and checked against the manifest's sha256 (files without one are always hashed,
    for the member list). Returns (name, sha256 of the tarball, size)."""
    written = 0
    with new_file(dist, tarball) as stream, FolderWalk(out) as walk:  # folders opened once for consecutive files
        raw = _HashingWriter(stream)
        sink = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) if compress else raw
        folders: set[str] = set()
        listing = []
        rows = None  # array files opened for PNG rows (CIFAR samples)

        def put(header: bytes, data, padding: int) -> None:
            if compress:
                sink.write(header)
                sink.write(data)
                sink.write(bytes(padding))
            else:
                raw.write_member(header, data, padding)
        parent, last_folder = None, None
        for member in members:
            parents = member.name.split("/")[:-1]
            for depth in range(1, len(parents) + 1):
                folder = "/".join(parents[:depth]) + "/"
                if folder not in folders:
                    folders.add(folder)
                    sink.write(_header(folder, 0, True))
                    written += 512
            data = member.data
            if member.row is not None:
                from ..formats.cifar_npy import ArrayRows
                rows = rows or ArrayRows(out)
                try:
                    data = rows.sample(member.source, member.row)
                except (UnsafePath, OSError, ValueError) as exc:
                    raise PublishError(f"{out}/{member.source}: {exc}") from None
            if data is not None:
                size = len(data)
                put(_header(member.name, size, False), data, -size % 512)
                listing.append(f"{hashlib.sha256(data).hexdigest()}  {member.name}\n")
                written += 512 + size + (-size % 512)
                continue
            try:
                source_folder, _, name = member.source.rpartition("/")
                if source_folder != last_folder:  # a new folder: every component checked
                    parent = walk.parent(split(source_folder, out))
                    last_folder = source_folder
                handle, size = open_with_size(parent, check_name(name, out), f"{out}/{member.source}", own=True)
            except UnsafePath as exc:
                raise PublishError(f"{exc}: only files the run wrote are published") from None
            try:
                digest = hashlib.sha256() if check or member.sha256 is None else None
                if size <= CHUNK:  # most members: one read, one call
                    data = os.read(handle, size)
                    if len(data) != size:
                        raise PublishError(f"{out}/{member.source} shrank while it was being published")
                    if digest is not None:
                        digest.update(data)
                    put(_header(member.name, size, False), data, -size % 512)
                else:
                    sink.write(_header(member.name, size, False))
                    left = size
                    while left:
                        chunk = os.read(handle, min(left, CHUNK))
                        if not chunk:
                            raise PublishError(f"{out}/{member.source} shrank while it was being published")
                        if digest is not None:
                            digest.update(chunk)
                        sink.write(chunk)
                        left -= len(chunk)
                    sink.write(bytes(-size % 512))
            finally:
                os.close(handle)
            if digest is not None and member.sha256 is not None and digest.hexdigest() != member.sha256:
                raise PublishError(f"{out}/{member.source} changed since it was generated (its sha256 is not the "
                                   "manifest's); regenerate it before publishing")
            listing.append(f"{digest.hexdigest() if digest is not None else member.sha256}  {member.name}\n")
            written += 512 + size + (-size % 512)
        end = 1024 + (-(written + 1024) % tarfile.RECORDSIZE)  # two zero blocks, then whole records
        sink.write(b"\0" * end)
        if compress:
            sink.close()
        checksum = raw.hexdigest()
        size = os.fstat(stream.fileno()).st_size
        write_bytes(dist, f"{MEMBERS}/{tarball}.sha256", "".join(listing).encode())
    return tarball, checksum, size


def file_sha256(root: Path, relative: str) -> str:
    """The sha256 of the regular file ``root/relative``, read without following links."""
    digest = hashlib.sha256()
    with os.fdopen(open_existing(root, relative), "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
