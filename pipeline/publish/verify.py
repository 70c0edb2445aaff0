"""``verify``: a release checked as a downloader would (checksums, every member of every
tarball, trailing data), and optionally a sample regenerated from the clean source."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tarfile
from pathlib import Path

from ..files import (
    UnsafePath,
    open_existing,
    read_bytes,
    sha256,
)
from ..formats import release_format
from ..formats.common import LEVEL_NAMES, jpeg_bytes
from ..formats.jpeg_tree import parse_path, relative_path
from ..runconfig import stored_run_config
from ..tasks import task_from_config, task_spec
from .plan import MEMBERS, RUN, SUMS
from .tar import CHUNK, file_sha256
from .webdataset import INDEX as WEBDATASET_INDEX

# ---------------------------------------------------------------- verify

def _safe_member(name: str) -> bool:
    return bool(name) and not name.startswith("/") and ".." not in name.split("/") and "\\" not in name


def _text(dist: Path, name: str, limit: int = 256 << 20) -> str:
    """A listing file of the release as text: a regular file (no link), UTF-8, of bounded size;
    else ``ValueError`` saying what is wrong."""
    try:
        return read_bytes(dist, name, limit=limit).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not UTF-8 text") from None
    except FileNotFoundError:
        raise ValueError(f"{name}: missing") from None
    except UnsafePath as exc:
        raise ValueError(f"{name}: {exc}") from None


class _Tail:
    """A read-only stream that remembers its last reads, so the bytes after a tar's end-of-archive
    (which tarfile has already read into its buffer) can be checked to be zeros."""

    def __init__(self, stream):
        import collections
        self.stream, self.position = stream, 0
        self.history: collections.deque = collections.deque(maxlen=8)

    def read(self, size=-1) -> bytes:
        data = self.stream.read(size)
        self.history.append((self.position, data))
        self.position += len(data)
        return data

    def rest(self, offset: int) -> tuple[int, bool]:
        """(bytes from ``offset`` to the stream's end, whether all are zeros), reading the rest of
        the stream in pieces (bounded memory)."""
        count, zeros = 0, True
        for start, data in self.history:
            if start + len(data) <= offset:
                continue
            piece = data[max(0, offset - start):]
            zeros = zeros and piece.count(0) == len(piece)
            count += len(piece)
        while data := self.stream.read(CHUNK):
            zeros = zeros and data.count(0) == len(data)
            count += len(data)
        return count, zeros


def _decompressed(raw, tarball: str):
    """The tar stream of ``tarball``: every member of a multi-member gzip (or bzip2, xz) file is
    read, as ``tar`` reads them, not only the first."""
    if tarball.endswith((".gz", ".tgz")):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if tarball.endswith(".bz2"):
        import bz2
        return bz2.BZ2File(raw)
    if tarball.endswith(".xz"):
        import lzma
        return lzma.LZMAFile(raw)
    return raw


def _check_tarball(dist: Path, tarball: str, expected: dict[str, str], problems: list[str],
                   counts: dict, published: dict) -> None:
    """Read ``tarball`` to its very end, hashing members as they stream (bounded memory)."""
    seen = set()
    try:
        with os.fdopen(open_existing(dist, tarball), "rb") as raw:
            stream = _Tail(_decompressed(raw, tarball))
            with tarfile.open(fileobj=stream, mode="r|") as archive:
                for info in archive:
                    if not _safe_member(info.name.rstrip("/")):
                        problems.append(f"{tarball}: member {info.name!r} would land outside its folder")
                        continue
                    if info.isdir():
                        continue
                    if not info.isfile():
                        problems.append(f"{tarball}: member {info.name} is not a regular file")
                        continue
                    digest, size, member = hashlib.sha256(), 0, archive.extractfile(info)
                    while chunk := member.read(CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                    if size != info.size:
                        problems.append(f"{tarball}: cannot be read to the end (member {info.name} is cut short)")
                        return
                    if info.name not in expected:
                        problems.append(f"{tarball}: extra member {info.name}")
                    elif digest.hexdigest() != expected[info.name]:
                        problems.append(f"{tarball}: member {info.name} differs from its listed sha256")
                    if info.name in seen:
                        problems.append(f"{tarball}: member {info.name} appears twice")
                    seen.add(info.name)
                    published[info.name] = digest.hexdigest()
                    parsed = parse_path(info.name)
                    if parsed is not None:
                        key = (parsed[0], str(parsed[1]))
                        counts[key] = counts.get(key, 0) + 1
                end = archive.offset
            left, zeros = stream.rest(end)
            if left < 1024:
                problems.append(f"{tarball}: cannot be read to the end (no end-of-archive marker after {end} bytes: "
                                "cut short?)")
            elif not zeros:
                problems.append(f"{tarball}: holds more after its end-of-archive marker at {end} bytes (appended "
                                "data, or a second archive, that tar would extract)")
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile, ValueError, UnsafePath) as exc:
        problems.append(f"{tarball}: cannot be read to the end ({type(exc).__name__}: {exc})")
        return
    for name in sorted(set(expected) - seen):
        problems.append(f"{tarball}: member {name} is missing")


def verify(dist: str | os.PathLike, source: str | None = None, sample: int = 8, log=print) -> list[str]:
    """Every problem found with the release in ``dist`` (an empty list: all holds)."""
    dist = Path(dist).expanduser().resolve()
    problems: list[str] = []
    try:
        sums = _text(dist, SUMS)
    except ValueError as exc:
        return [str(exc)]
    listed: dict[str, str] = {}
    for number, line in enumerate(sums.split("\n")[:-1] if sums.endswith("\n") else sums.split("\n"), start=1):
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](\S.*)", line)
        if not match or not _safe_member(match.group(2)):
            problems.append(f"{SUMS} line {number}: not '<sha256>  <file>': {line[:200]!r}")
            continue
        listed[match.group(2)] = match.group(1)
    for name, digest in listed.items():
        try:
            if file_sha256(dist, name) != digest:
                problems.append(f"{name}: sha256 differs from {SUMS}")
        except FileNotFoundError:
            problems.append(f"{name}: listed in {SUMS} but missing")
        except (UnsafePath, OSError) as exc:
            problems.append(f"{name}: {exc}")
    present = {str(p.relative_to(dist)) for p in dist.rglob("*") if p.is_file() or p.is_symlink()} - {SUMS}
    for name in sorted(present - set(listed)):
        problems.append(f"{name}: present but not in {SUMS}")
    member_lists = {name[len(MEMBERS) + 1:-len(".sha256")]: name for name in listed if name.startswith(f"{MEMBERS}/")}
    member_counts: dict[str, int] = {}  # tarball -> its .jpg members (a WebDataset shard's samples)
    counts: dict[tuple[str, str], int] = {}
    published: dict[str, str] = {}  # member -> sha256, for the regeneration audit
    for tarball, list_name in sorted(member_lists.items()):
        if tarball not in listed or not (dist / tarball).is_file():
            problems.append(f"{tarball}: its member list is published but the tarball is not")
            continue
        expected = {}
        try:
            for number, line in enumerate(_text(dist, list_name).splitlines(), start=1):
                digest, separator, name = line.partition("  ")
                if not separator or not re.fullmatch("[0-9a-f]{64}", digest) or not _safe_member(name):
                    raise ValueError(f"{list_name} line {number}: not '<sha256>  <member>': {line[:200]!r}")
                expected[name] = digest
        except ValueError as exc:
            problems.append(str(exc))
            continue
        _check_tarball(dist, tarball, expected, problems, counts, published)
        member_counts[tarball] = sum(name.endswith(".jpg") for name in expected)
    if WEBDATASET_INDEX in listed:
        problems += _check_index(dist, listed, member_counts)
    problems += _check_parquet(dist, [name for name in listed if name.endswith(".parquet")])
    if counts:
        log("images per corruption and severity:")
        for name in sorted({c for c, _ in counts}):
            log(f"  {name:18s} " + "  ".join(f"{s}: {counts.get((name, s), 0)}" for s in LEVEL_NAMES))
    if source is not None and not problems:
        problems += audit(dist, source, published, sample, log)
    return problems


def _check_parquet(dist: Path, names: list[str]) -> list[str]:
    """Each parquet file of the Hugging Face form has the form's schema (its columns, their types,
    the ``datasets`` features) and only its own cell's rows; read without following links."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .parquet import FOLDER, cell_config, expected_schema
    problems = []
    schema = expected_schema()
    for name in names:
        parts = name.split("/")
        if len(parts) != 3 or parts[0] != FOLDER:
            problems.append(f"{name}: not a parquet file of the form data/<corruption>_<level>/<file>.parquet")
            continue
        try:
            table = pq.read_table(pa.BufferReader(read_bytes(dist, name, limit=4 << 30)))
        except (OSError, ValueError, pa.ArrowException, UnsafePath) as exc:
            problems.append(f"{name}: cannot be read as parquet ({type(exc).__name__}: {exc})")
            continue
        if not table.schema.equals(schema, check_metadata=True):
            problems.append(f"{name}: its schema is not the release's (columns {', '.join(table.schema.names)})")
            continue
        cells = {cell_config(c, lv) for c, lv in zip(table["corruption"].to_pylist(), table["level"].to_pylist())}
        if cells - {parts[1]}:
            problems.append(f"{name}: holds rows of {', '.join(sorted(cells - {parts[1]}))}, not only {parts[1]}")
    return problems


def _check_index(dist: Path, listed: dict[str, str], samples: dict[str, int]) -> list[str]:
    """The WebDataset index agrees with the release: every shard it names is published with
    that sha256, size and sample count, and it names every published shard."""
    folder = WEBDATASET_INDEX.rsplit("/", 1)[0]
    try:
        shardlist = json.loads(_text(dist, WEBDATASET_INDEX, limit=64 << 20))["shardlist"]
        named = {f"{folder}/{entry['url']}": entry for entry in shardlist}
        [(entry["nsamples"], entry["filesize"], entry["sha256"]) for entry in shardlist]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{WEBDATASET_INDEX}: not a wids shard index ({type(exc).__name__}: {exc})"]
    problems = []
    for name, entry in sorted(named.items()):
        if name not in listed or not _safe_member(name):
            problems.append(f"{WEBDATASET_INDEX}: names {name}, which the release does not hold")
            continue
        if entry["sha256"] != listed[name]:
            problems.append(f"{WEBDATASET_INDEX}: the sha256 of {name} is not the one in {SUMS}")
        if entry["filesize"] != os.lstat(dist / name).st_size:
            problems.append(f"{WEBDATASET_INDEX}: the size of {name} is not its size")
        if entry["nsamples"] != samples.get(name):
            problems.append(f"{WEBDATASET_INDEX}: {name} holds {samples.get(name)} samples, the index says "
                            f"{entry['nsamples']}")
    for name in sorted(n for n in listed if n.startswith(f"{folder}/") and n.endswith(".tar") and n not in named):
        problems.append(f"{name}: a shard the index does not name")
    return problems


def audit(dist: Path, source: str, published: dict[str, str], sample: int, log) -> list[str]:
    """Regenerate ``sample`` published images (a seeded choice) from the clean source with the
    recorded settings and compare their bytes with the published members."""
    import random

    from ..engine import byte_versions
    from ..readers import read_source
    from ..task import Key
    try:
        run = json.loads(_text(dist, RUN, limit=64 << 20))
        config = stored_run_config(run["config"])
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{RUN}: cannot be read as a run record ({exc})"]
    release = release_format(config.outputs.formats)
    if release is None or not release.RELEASE_PER_IMAGE:
        return ["--source: the regeneration audit covers JPEG releases (this one holds .npy arrays)"]
    listing = read_source(config.reader, source, config.labels)
    by_output = {"/".join(relative_path("_", 1, item)[2:]): item for item in listing.items}
    # the tree's members (a WebDataset sample holds the same bytes under a flat name)
    candidates = sorted(name for name in published
                        if name.endswith((".JPEG", ".jpg")) and parse_path(name) is not None)
    if not candidates:
        return ["--source: the regeneration audit reads the tree's tarballs; this release has none"]
    picks = random.Random(0).sample(candidates, min(sample, len(candidates)))
    problems = []
    for member in picks:
        name, level, rest = parse_path(member)
        item = by_output.get(rest)
        if item is None:
            problems.append(f"regeneration: {member} has no source image in {source}")
            continue
        task = task_from_config(config.model_copy(update={task_spec(config.task).names_key: (name,),
                                                          "severities": (level,)}))
        shard = task.load_shard([item], 0)
        if not shard.ok[0]:
            problems.append(f"regeneration: {item.where} cannot be read: {shard.failures[0]['reason']}")
            continue
        block = task.produce(Key(name, 0, 0, 1), shard)
        data = jpeg_bytes(block, 0, 0, config.outputs.jpeg.quality, config.outputs.jpeg.optimize)
        if sha256(data) != published[member]:
            problems.append(f"regeneration: {member} differs from the image regenerated from {item.where}")
    log(f"regenerated {len(picks)} images from {source}: {len(picks) - len(problems)} identical")
    if problems:
        ours, theirs = byte_versions(), run["identity"].get("versions", {})
        changed = [f"{k} {theirs.get(k)} -> {v}" for k, v in ours.items() if theirs.get(k) != v]
        if changed:
            problems.append("the installed libraries differ from the release's: " + ", ".join(changed))
    return problems
