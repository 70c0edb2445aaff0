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
                   counts: dict, published: dict, notes: dict | None = None) -> None:
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
                    keep = notes is not None and info.name.endswith(".json") and info.size <= 1 << 16
                    while chunk := member.read(CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        if keep:
                            notes[info.name] = notes.get(info.name, b"") + chunk
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
                    published[f"{tarball}:{info.name}" if notes is not None else info.name] = digest.hexdigest()
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
    member_counts: dict[str, int] = {}  # tarball -> its .cls members (a WebDataset shard's samples)
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
        shard = tarball.startswith(f"{WEBDATASET_INDEX.split('/')[0]}/")
        notes: dict[str, bytes] = {}
        _check_tarball(dist, tarball, expected, problems, counts, published, notes if shard else None)
        if shard:
            _sample_outputs(tarball, notes, published)
        member_counts[tarball] = sum(name.endswith(".cls") for name in expected)
    if WEBDATASET_INDEX in listed:
        problems += _check_index(dist, listed, member_counts)
    problems += _check_parquet(dist, [name for name in listed if name.endswith(".parquet")], published)
    if counts:
        log("images per corruption and severity:")
        for name in sorted({c for c, _ in counts}):
            log(f"  {name:18s} " + "  ".join(f"{s}: {counts.get((name, s), 0)}" for s in LEVEL_NAMES))
    if source is not None and not problems:
        problems += audit(dist, source, published, sample, log)
    return problems


def _release_config(dist: Path):
    """The run config a release records in its run.json, or None where it cannot be read."""
    try:
        return stored_run_config(json.loads(_text(dist, RUN, limit=64 << 20))["config"])
    except (ValueError, KeyError, TypeError):
        return None


def _sample_outputs(tarball: str, notes: dict[str, bytes], published: dict[str, str]) -> None:
    """A shard's samples under the names of the outputs they hold (``output_name``), for the
    regeneration audit; the shard's own member names are dropped."""
    for name, data in notes.items():
        key = name[:-len(".json")]
        try:
            fields = json.loads(data)
            content = [m for m in published if m.startswith(f"{tarball}:{key}.") and not m.endswith((".json", ".cls"))]
            published[output_name(fields)] = published[content[0]]
        except (ValueError, KeyError, TypeError, IndexError):
            continue  # the member lists and checksums already judge the shard
    for member in [m for m in published if m.startswith(f"{tarball}:")]:
        del published[member]


def output_name(fields: dict) -> str:
    """The output a sample holds, named as the run wrote it: ``<corruption>/<level>/<wnid>/<file>``
    (JPEG), ``<kind>/<wnid>/<file>`` (MP4), ``<corruption>/<level>/<index>.png`` (an image row),
    ``<kind>/<index>.npy`` (a CIFAR-P video row)."""
    if "kind" in fields:
        if "wnid" not in fields:  # a CIFAR-P video row
            return f"{fields['kind']}/{int(fields['source_file'])}.npy"
        return f"{fields['kind']}/{fields['wnid']}/{fields['source_file']}"
    if "wnid" in fields:
        return f"{fields['corruption']}/{fields['level']}/{fields['wnid']}/{fields['source_file']}"
    return f"{fields['corruption']}/{fields['level']}/{int(fields['source_file'])}.png"


def _check_parquet(dist: Path, names: list[str], published: dict | None = None) -> list[str]:
    """Each parquet file of the Hugging Face form has the form's schema (its columns, their types,
    the ``datasets`` features, one class list throughout) and only its own cell's rows, and the
    RobustBench subset's files only rows of its list; read without following links."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .parquet import FOLDER, SUBSET_FOLDER, expected_schema, robustbench_images
    if not names:
        return []
    config = _release_config(dist)
    if config is None:
        return [f"{RUN}: cannot be read as a run record, so the parquet files cannot be checked"]
    sequences = task_spec(config.task).scoring == "sequences"
    classes = None  # Tiny ImageNet's: the first file's, the same in every file
    if config.reader in ("cifar10", "cifar100"):
        classes = [str(index) for index in range(100 if config.reader == "cifar100" else 10)]
    elif config.variant != "tiny":
        from ..readers import imagenet_wnids
        classes = list(imagenet_wnids())
    problems = []
    for name in names:
        parts = name.split("/")
        if len(parts) != 3 or parts[0] not in (FOLDER, SUBSET_FOLDER):
            problems.append(f"{name}: not a parquet file of the form {FOLDER}/<config>/<file>.parquet")
            continue
        try:
            table = pq.read_table(pa.BufferReader(read_bytes(dist, name, limit=4 << 30)))
            if classes is None:
                features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
                classes = [str(c) for c in features["label"]["names"]]
        except (OSError, ValueError, pa.ArrowException, UnsafePath) as exc:
            problems.append(f"{name}: cannot be read as parquet ({type(exc).__name__}: {exc})")
            continue
        except (KeyError, TypeError):
            problems.append(f"{name}: its schema is not the release's (no datasets features)")
            continue
        if not table.schema.equals(expected_schema(sequences, classes), check_metadata=True):
            problems.append(f"{name}: its schema is not the release's (columns {', '.join(table.schema.names)})")
            continue
        if sequences:
            cells = set(table["kind"].to_pylist())
        else:
            cells = {f"{c}_{lv}" for c, lv in zip(table["corruption"].to_pylist(), table["level"].to_pylist())}
        if cells - {parts[1]}:
            problems.append(f"{name}: holds rows of {', '.join(sorted(cells - {parts[1]}))}, not only {parts[1]}")
        if published is not None:
            column = "video" if sequences else "image"
            for index, fields in enumerate(table.drop_columns([column]).to_pylist()):
                data = table[column][index].as_py()
                fields = {**fields, "wnid": classes[fields["label"]]} if config.reader not in (
                    "cifar10", "cifar100") else fields
                published[output_name(fields)] = sha256(data if sequences else data["bytes"])
        if parts[0] == SUBSET_FOLDER:
            listed = robustbench_images()
            outside = [f"{classes[label]}/{file}" for label, file in zip(table["label"].to_pylist(),
                                                                        table["source_file"].to_pylist())
                       if f"{classes[label]}/{file}" not in listed]
            if outside:
                problems.append(f"{name}: holds {len(outside)} images not in RobustBench's list, e.g. {outside[0]}")
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
    """Regenerate ``sample`` published outputs (a seeded choice among every form's: tree members,
    shard samples, parquet rows) from the clean source with the recorded settings and compare
    their bytes with the published ones: JPEG images, MP4 videos, CIFAR rows as PNG."""
    import random

    from ..engine import byte_versions
    from ..readers import read_source
    try:
        run = json.loads(_text(dist, RUN, limit=64 << 20))
        config = stored_run_config(run["config"])
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{RUN}: cannot be read as a run record ({exc})"]
    from .plan import SINGLE_RELEASES
    release = release_format(config.outputs.formats)
    top = SINGLE_RELEASES.get(config.name) or (config.name if release is not None and release.RELEASE_ONE_TARBALL
                                               else None)
    outputs = {}
    for name, digest in published.items():
        if top and name.startswith(f"{top}/"):
            name = name[len(top) + 1:]
        row_video = name.endswith(".npy") and name.count("/") == 1 and name.split("/")[1][:-4].isdigit()
        if name.endswith((".mp4", ".png")) or parse_path(name) is not None or row_video:
            outputs[name] = digest
    if not outputs:
        return ["--source: the regeneration audit reads per-sample outputs; this release holds whole arrays only "
                "(publish --format webdataset or parquet as well to audit CIFAR rows)"]
    listing = read_source(config.reader, source, config.labels)
    picks = random.Random(0).sample(sorted(outputs), min(sample, len(outputs)))
    problems = []
    for member in picks:
        made, where = _regenerate(config, listing.items, member)
        if made is None:
            problems.append(f"regeneration: {member}: {where}")
        elif sha256(made) != outputs[member]:
            problems.append(f"regeneration: {member} differs from the output regenerated from {where}")
    noun = "videos" if task_spec(config.task).scoring == "sequences" else "images"
    log(f"regenerated {len(picks)} {noun} from {source}: {len(picks) - len(problems)} identical")
    if problems:
        ours, theirs = byte_versions(), run["identity"].get("versions", {})
        changed = [f"{k} {theirs.get(k)} -> {v}" for k, v in ours.items() if theirs.get(k) != v]
        if changed:
            problems.append("the installed libraries differ from the release's: " + ", ".join(changed))
    return problems


def _regenerate(config, items, output: str) -> tuple[bytes | None, str]:
    """(the bytes of ``output`` made again from its source item, where the item is), or (None,
    why it cannot be)."""
    from ..task import Key
    sequences = task_spec(config.task).scoring == "sequences"
    if output.endswith(".png"):
        name, level, row = output[:-len(".png")].split("/")
        item = items[int(row)] if row.isdigit() and int(row) < len(items) else None
        levels = (int(level),)
    elif output.endswith(".npy"):
        name, row = output[:-len(".npy")].split("/")
        item = items[int(row)] if row.isdigit() and int(row) < len(items) else None
        levels = None
    elif sequences:
        name, wnid, file_name = output.split("/")
        item = next((i for i in items if i.wnid == wnid and _stem(i.name) == _stem(file_name)), None)
        levels = None
    else:
        name, level, rest = parse_path(output)
        item = next((i for i in items if "/".join(relative_path("_", 1, i)[2:]) == rest), None)
        levels = (level,)
    if item is None:
        return None, "no source image for it"
    update = {task_spec(config.task).names_key: (name,)} | ({"severities": levels} if levels else {})
    task = task_from_config(config.model_copy(update=update))
    shard = task.load_shard([item], 0)
    if not shard.ok[0]:
        return None, f"{item.where} cannot be read: {shard.failures[0]['reason']}"
    block = task.produce(Key(name, 0, 0, 1), shard)
    if output.endswith(".npy"):
        from ..formats.cifar_npy import frames_npy
        from ..formats.common import fixed_frames
        return frames_npy(fixed_frames(block, 0)), item.where
    if sequences:
        from ..formats.mp4_tree import encode, encodings
        temporal, noise = encodings(config.outputs.mp4)
        return encode(block.frames[0], noise if block.family == "noise" else temporal), item.where
    if output.endswith(".png"):
        from ..formats.cifar_npy import png_bytes
        return png_bytes(block.data[0, 0]), item.where
    return jpeg_bytes(block, 0, 0, config.outputs.jpeg.quality, config.outputs.jpeg.optimize), item.where


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name
