"""Releasing a generated dataset: reproducible tarballs in the official layout, SHA256SUMS, a
dataset card and Croissant metadata; and ``verify``, which checks a release and can regenerate
a sample of it from the clean source.

    python -m pipeline publish OUT --to DIST [--compress gzip] [--workers N]
    python -m pipeline verify DIST [--source VAL] [--sample N]

The same dataset always gives the same tarball bytes (members sorted, fixed mtime, owner 0,
empty owner names, fixed modes, GNU format; gzip with no name and mtime 0), so a regenerated
dataset can be checked against a published SHA256SUMS by checksum alone.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..files import Busy, FolderLock, UnsafePath, make_folders, read_bytes, write_bytes
from ..formats import release_format
from . import parquet, webdataset
from .card import croissant, dataset_card, member_counts
from .plan import CARD, CROISSANT, MEMBERS, RUN, SINGLE_RELEASES, SUMS, TITLES, Member, PublishError, member_size, plan_release
from .tar import file_sha256, write_tarball
from .verify import verify

FORMS = ("tree", "webdataset", "parquet")


def publish(out: str | os.PathLike, dist: str | os.PathLike, compress: str | None = None,
            workers: int | None = None, check: bool = False, forms: tuple[str, ...] = ("tree",),
            shard_bytes: int = webdataset.DEFAULT_SHARD_BYTES) -> list[tuple[str, str, int]]:
    """Write the release of the run in ``out`` into ``dist``, in each of ``forms``: ``tree``
    (the official tarballs), ``webdataset`` (``webdataset.py``'s shards) and ``parquet`` (the
    Hugging Face layout, ``parquet.py``). Member checksums
    come from the manifest, so a file changed since it was written shows in ``verify``; ``check``
    hashes every file on the way as well and refuses the publish at the first changed one (about
    20% slower)."""
    out, dist = Path(out).expanduser().resolve(), Path(dist).expanduser().resolve()
    if dist == out or out in dist.parents:
        raise PublishError(f"--to {dist} is inside OUT {out}; write the release elsewhere")
    if shard_bytes < 1:
        raise PublishError(f"--shard-mb: expected a positive size, got {shard_bytes >> 20}")
    unknown = [form for form in forms if form not in FORMS]
    if unknown or not forms:
        raise PublishError(f"--format: {unknown[0] if unknown else 'none'!r} is not a release form; allowed: "
                           f"{', '.join(FORMS)}")
    run, config, members = plan_release(out)
    shards, tables = {}, None
    if "webdataset" in forms or "parquet" in forms:
        from ..engine import read_manifest
        records = read_manifest(out)
        shards = webdataset.plan_shards(out, run, config, records, shard_bytes) if "webdataset" in forms else {}
        tables = parquet.plan_cells(out, config, records) if "parquet" in forms else None
    if "tree" not in forms:
        members = {}
    make_folders(dist)
    try:
        with FolderLock(dist, remove=True):
            return _publish(out, dist, run, config, members, shards, compress, workers, check, tables, shard_bytes)
    except Busy as exc:
        raise PublishError(str(exc)) from None
    except UnsafePath as exc:
        raise PublishError(str(exc)) from None


def _publish(out: Path, dist: Path, run: dict, config, members: dict[str, list[Member]],
             shards: dict[str, list[Member]], compress, workers, check, tables: parquet.Tables | None = None,
             shard_bytes: int = webdataset.DEFAULT_SHARD_BYTES) -> list[tuple[str, str, int]]:
    suffix = ".gz" if compress == "gzip" else ""
    # (name written, members, gzip): the tree's tarballs as asked, WebDataset shards plain
    jobs = [(f"{name}{suffix}", group, bool(suffix)) for name, group in members.items()]
    jobs += [(name, group, False) for name, group in shards.items()]
    jobs.sort(key=lambda job: -sum(member_size(out, m) for m in job[1]))
    if shards:
        make_folders(dist, webdataset.FOLDER)
        make_folders(dist, f"{MEMBERS}/{webdataset.FOLDER}")
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if workers == 1:
        done = [write_tarball(str(out), str(dist), name, group, gzipped, check) for name, group, gzipped in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            done = list(pool.map(write_tarball, [str(out)] * len(jobs), [str(dist)] * len(jobs),
                                 [job[0] for job in jobs], [job[1] for job in jobs], [job[2] for job in jobs],
                                 [check] * len(jobs)))
    written_tables = parquet.write_cells(out, dist, tables, shard_bytes) if tables else []
    everything = sorted(done)
    written_shards = [entry for entry in everything if entry[0].startswith(f"{webdataset.FOLDER}/")]
    single = config.name in SINGLE_RELEASES
    npy = release_format(config.outputs.formats).RELEASE_ARRAYS
    try:
        failures = sum(1 for line in read_bytes(out, "failures.jsonl").splitlines() if line.strip())
    except FileNotFoundError:
        failures = 0
    counts = member_counts(members) if members else (parquet.cell_counts(tables) if tables else
                                                     webdataset.cell_counts(shards))
    write_bytes(dist, RUN, read_bytes(out, "run.json"))
    header = parquet.front_matter(tables) if tables else ""
    files = everything + written_tables
    write_bytes(dist, CARD, (header + dataset_card(run, config, files, counts, failures)).encode())
    write_bytes(dist, CROISSANT, json.dumps(croissant(run, config, files, single, npy), indent=1,
                                            sort_keys=True).encode())
    extra = []
    if shards:
        write_bytes(dist, webdataset.INDEX, webdataset.index(shards, written_shards, TITLES.get(config.name,
                                                                                                 config.name)))
        extra = [webdataset.INDEX]
    lists = [f"{MEMBERS}/{name}.sha256" for name, _, _ in everything]
    remove_stale(dist, {name for name, _, _ in everything}, lists, {name for name, _, _ in written_tables})
    listed = [name for name, _, _ in files] + [CARD, CROISSANT, RUN] + extra + sorted(lists)
    write_bytes(dist, SUMS, "".join(f"{file_sha256(dist, name)}  {name}\n" for name in listed).encode())
    return files


def remove_stale(dist: Path, tarballs: set[str], lists: list[str], tables: set[str] = frozenset()) -> None:
    """An earlier release's tarballs and member lists that this one does not have, and temporary
    files an interrupted publish left: removed (the names, never what a link points to), so
    DIST holds one release that verifies. Other files are left alone, and ``verify`` reports them."""
    for folder in ("", webdataset.FOLDER):
        if not _real_folder(dist / folder):
            continue
        for entry in os.scandir(dist / folder):
            name = f"{folder}/{entry.name}" if folder else entry.name
            stale = entry.name.endswith((".tar", ".tar.gz")) and name not in tarballs
            if (stale or (entry.name.startswith(".") and entry.name.endswith(".part"))) and not entry.is_dir(
                    follow_symlinks=False):
                os.unlink(entry.path)
    for top in (parquet.FOLDER, parquet.SUBSET_FOLDER):  # an earlier release's parquet files
        if not _real_folder(dist / top):
            continue
        for cell in os.scandir(dist / top):
            if not cell.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(cell.path):
                name = f"{top}/{cell.name}/{entry.name}"
                if (entry.name.endswith((".parquet", ".part")) and name not in tables
                        and not entry.is_dir(follow_symlinks=False)):
                    os.unlink(entry.path)
    for folder in (MEMBERS, f"{MEMBERS}/{webdataset.FOLDER}"):
        if not _real_folder(dist / folder):
            continue
        for entry in os.scandir(dist / folder):
            if (f"{folder}/{entry.name}" not in lists and entry.name.endswith((".sha256", ".part"))
                    and not entry.is_dir(follow_symlinks=False)):
                os.unlink(entry.path)


def _real_folder(path: Path) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


__all__ = ["publish", "verify", "PublishError", "Member", "write_tarball", "plan_release"]
