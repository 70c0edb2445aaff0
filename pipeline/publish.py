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

import gzip
import hashlib
import json
import os
import re
import tarfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from corruptions import CORRUPTIONS

from .files import FolderLock, Busy, UnsafePath, make_folders, new_file, open_existing, read_bytes, sha256, split, write_bytes
from .formats.common import LEVEL_NAMES
from .formats.jpeg_tree import parse_path, relative_path
from .imagenet_c import task_from_config

MTIME = 1546300800  # 2019-01-01T00:00:00Z, the benchmark's year: one fixed time for every member
CHUNK = 1 << 20
SUMS, CARD, CROISSANT, MEMBERS, RUN = "SHA256SUMS", "README.md", "croissant.json", "MEMBERS", "run.json"
# runs published as one tarball under a top folder, as their official releases are
SINGLE_RELEASES = {"cifar-10-c": "CIFAR-10-C", "cifar-100-c": "CIFAR-100-C", "tiny-imagenet-c": "Tiny-ImageNet-C"}
TITLES = {"imagenet-c": "ImageNet-C", "imagenet-c-inception": "ImageNet-C (Inception-sized, 299 x 299)",
          "imagenet-64-c": "ImageNet 64x64-C", **SINGLE_RELEASES}
CITATION = """@inproceedings{hendrycks2019robustness,
  title={Benchmarking Neural Network Robustness to Common Corruptions and Perturbations},
  author={Dan Hendrycks and Thomas Dietterich},
  booktitle={Proceedings of the International Conference on Learning Representations},
  year={2019}
}"""


class PublishError(RuntimeError):
    pass


@dataclass(frozen=True)
class Member:
    name: str  # path inside the tarball
    source: str  # file under OUT, relative to it (opened without following links)
    sha256: str | None  # from the manifest, checked while streaming (None: computed then)


# ---------------------------------------------------------------- what goes where

def tarball_of(name: str) -> str:
    """The release tarball of a corruption: its family for the 15 benchmark corruptions
    (noise, blur, weather, digital), ``extra`` for the four others: from the task's registry."""
    return CORRUPTIONS.get(name).family if name in CORRUPTIONS.names("benchmark") else "extra"


def plan_release(out: Path) -> tuple[dict, dict[str, list[Member]]]:
    """(run.json, tarball name -> sorted members) for the run in OUT."""
    from .engine import MANIFEST, RUN as RUN_FILE, read_manifest
    try:
        run = json.loads(read_bytes(out, RUN_FILE, limit=64 << 20))
        run["config"]["corruptions"], run["identity"]["images"]
    except FileNotFoundError:
        raise PublishError(f"{out}: no {RUN_FILE}; publish takes the OUT folder of a generate run") from None
    except (ValueError, KeyError, TypeError, RecursionError):
        raise PublishError(f"{out / RUN_FILE} is damaged (not a generate run's record); regenerate OUT") from None
    config = run["config"]
    records = read_manifest(out)
    if not records:
        raise PublishError(f"{out}: {MANIFEST} lists no finished keys")
    names = config["corruptions"]
    expected = {key.id for key in task_from_config(config).keys(run["identity"]["images"], config["shard_size"])}
    missing = sorted(expected - set(records))
    if missing:
        raise PublishError(f"{out}: the run is not finished ({len(missing)} keys missing, e.g. {missing[0]}); "
                           "re-run the same generate command first")
    top = SINGLE_RELEASES.get(config["name"])
    tarballs: dict[str, list[Member]] = {}
    if "cifar_npy" in config["outputs"]["formats"]:
        extras = ["labels.npy"] + (["severities.json"] if os.path.lexists(out / "severities.json") else [])
        files = [f"{name}.npy" for name in names] + extras
        tarballs[f"{top or config['name']}.tar"] = [Member(f"{top or config['name']}/{f}", f, None)
                                                    for f in sorted(files)]
    elif "jpeg" in config["outputs"]["formats"]:
        for record in records.values():
            if record["name"] not in names:
                continue
            group = f"{top}.tar" if top else f"{tarball_of(record['name'])}.tar"
            for path, digest in record["outputs"]["jpeg"].items():
                member = f"{top}/{path}" if top else path
                tarballs.setdefault(group, []).append(Member(member, path, digest))
    else:
        raise PublishError(f"{out}: the run wrote neither a JPEG tree nor CIFAR .npy files: nothing to release "
                           "in an official layout")
    check_member_names([m for group in tarballs.values() for m in group], out)
    return run, {name: sorted(members, key=lambda m: m.name) for name, members in sorted(tarballs.items())}


def check_member_names(members: list[Member], out: Path) -> None:
    """Every member is a safe relative name (no '..', not absolute, no line breaks: the member
    lists are one line a member), and no two are one file where names fold case or Unicode
    form (macOS, Windows): refused before anything is written."""
    import unicodedata
    seen: dict[str, str] = {}
    for member in members:
        try:
            split(member.name, out)
            split(member.source, out)
        except UnsafePath as exc:
            raise PublishError(f"{out}: the manifest names an output that cannot be published: {exc}") from None
        folded = unicodedata.normalize("NFC", member.name).casefold()
        if folded in seen:
            raise PublishError(f"{out}: {seen[folded]!r} and {member.name!r} are one file on case-insensitive or "
                               "Unicode-normalising file systems; rename one of their sources and regenerate")
        seen[folded] = member.name


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
        while (pieces := self.queue.get()) is not None:
            for piece in pieces:
                self.digest.update(piece)

    def write(self, data) -> int:
        self.pieces.append(data)
        self.size += len(data)
        if self.size >= CHUNK:
            self._flush_pieces()
        return len(data)

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
    with new_file(dist, tarball) as stream:
        raw = _HashingWriter(stream)
        sink = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) if compress else raw
        folders: set[str] = set()
        listing = []
        for member in members:
            parents = member.name.split("/")[:-1]
            for depth in range(1, len(parents) + 1):
                folder = "/".join(parents[:depth]) + "/"
                if folder not in folders:
                    folders.add(folder)
                    sink.write(_header(folder, 0, True))
                    written += 512
            try:
                handle = open_existing(out, member.source, own=True)
            except UnsafePath as exc:
                raise PublishError(f"{exc}: only files the run wrote are published") from None
            try:
                size = os.fstat(handle).st_size
                sink.write(_header(member.name, size, False))
                digest = hashlib.sha256() if check or member.sha256 is None else None
                left = size
                while left:
                    chunk = os.read(handle, min(left, CHUNK))
                    if not chunk:
                        raise PublishError(f"{out}/{member.source} shrank while it was being published")
                    if digest is not None:
                        digest.update(chunk)
                    sink.write(chunk)
                    left -= len(chunk)
            finally:
                os.close(handle)
            if digest is not None and member.sha256 is not None and digest.hexdigest() != member.sha256:
                raise PublishError(f"{out}/{member.source} changed since it was generated (its sha256 is not the "
                                   "manifest's); regenerate it before publishing")
            listing.append(f"{digest.hexdigest() if digest is not None else member.sha256}  {member.name}\n")
            sink.write(b"\0" * (-size % 512))
            written += 512 + size + (-size % 512)
        end = 1024 + (-(written + 1024) % tarfile.RECORDSIZE)  # two zero blocks, then whole records
        sink.write(b"\0" * end)
        if compress:
            sink.close()
        checksum = raw.hexdigest()
        size = os.fstat(stream.fileno()).st_size
        write_bytes(dist, f"{MEMBERS}/{tarball}.sha256", "".join(listing).encode())
    return tarball, checksum, size


def _file_sha256(root: Path, relative: str) -> str:
    """The sha256 of the regular file ``root/relative``, read without following links."""
    digest = hashlib.sha256()
    with os.fdopen(open_existing(root, relative), "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- card and Croissant

def _counts(members: dict[str, list[Member]]) -> dict[tuple[str, str], int]:
    """Images per (corruption, severity) among the members of a JPEG release."""
    counts: dict[tuple[str, str], int] = {}
    for group in members.values():
        for member in group:
            parsed = parse_path(member.name)
            if parsed is not None:
                key = (parsed[0], str(parsed[1]))
                counts[key] = counts.get(key, 0) + 1
    return counts


def dataset_card(run: dict, tarballs: list[tuple[str, str, int]], counts: dict, failures: int) -> str:
    config, identity = run["config"], run["identity"]
    names, levels = config["corruptions"], config["severities"]
    title = TITLES.get(config["name"], config["name"])
    rows = ["| corruption | " + " | ".join(f"severity {s}" for s in levels) + " |",
            "|---|" + "---|" * len(levels)]
    rows += [f"| {n} | " + " | ".join(str(counts.get((n, str(s)), "-")) for s in levels) + " |" for n in names]
    files = ["| file | bytes | sha256 |", "|---|---|---|"]
    files += [f"| {name} | {size} | `{digest}` |" for name, digest, size in tarballs]
    versions = "\n".join(f"- {k}: {v}" for k, v in identity["versions"].items())
    return f"""# {title}

{title} is the corruption-robustness benchmark of Hendrycks & Dietterich (ICLR 2019), ImageNet-C in
its `{config['variant']}` variant: {len(names)} corruptions x {len(levels)} severities of {identity['images']}
validation images ({failures} source images could not be read and are absent), generated by
imagenet-c-generator {run['version']} with root seed {config['seed']}. Every image is the original
generator's corruption (constants, order of operations, quantisation by truncation) written as
the original wrote it (JPEG quality {config['outputs']['jpeg']['quality']}, optimised; CIFAR as raw arrays).

## Contents

{chr(10).join(rows)}

Layout: {'one tarball, `' + title + '/...`' if config['name'] in SINGLE_RELEASES else
         'one tarball per family (noise, blur, weather, digital; extra for the 4 extra corruptions), members `<corruption>/<severity>/<wnid>/<file>`'}.

{chr(10).join(files)}

`SHA256SUMS` covers every file here; `MEMBERS/<tarball>.sha256` lists every member of each
tarball with its sha256; `run.json` is the generator's record of the run (settings, source
listing digest, variant file digest, library versions).

## Reproducibility

The tarballs are byte-reproducible: the same source, seed and library versions give the same
bytes, whatever the machine or worker count. Versions that decide the bytes:

{versions}

## Verify

```bash
sha256sum -c SHA256SUMS
python -m pipeline verify DIST                      # checksums, every member, counts
python -m pipeline verify DIST --source VAL --sample 32   # regenerate 32 images and compare bytes
```

## Score a model

```bash
mkdir data && for t in *.tar; do tar xf $t -C data; done
python -m pipeline score --model SPEC --data data --clean VAL --out results
```

## Fidelity to the original generator

Deterministic corruptions and, fed the original's own random draws, frost, fog, snow and motion
blur equal the original script's outputs bit for bit; glass blur, elastic transform, spatter and
zoom blur within one grey level on at most 0.05% of values; every corruption x severity matches
the originals' statistics within their seed-to-seed spread (see the generator's README).

## Known differences from the official release

- Random draws come from NumPy Generators derived from (seed, variant, corruption, severity,
  image id), not the original's global RandomState: stochastic corruptions match the official
  files in distribution, not pixel for pixel.
- Library versions differ from 2018's (resampling, ImageMagick's motion blur is reimplemented
  bit-exactly for ImageMagick 6), which can move single values by a level.

## Licence

Derived from the ImageNet validation set (or CIFAR / Tiny ImageNet): their terms of access
apply to these images. The frost corruption overlays textures from the original repository
(distributed in the `imagecorruptions` package, Apache-2.0). The generator is Apache-2.0.

## Citation

```bibtex
{CITATION}
```
"""


def croissant(run: dict, tarballs: list[tuple[str, str, int]], single: bool, npy: bool) -> dict:
    """Croissant 1.0 metadata: the tarballs with their sha256, the files inside them, and a record
    set of images with their corruption, severity and class (or, for CIFAR, the arrays)."""
    try:
        import mlcroissant as mlc
    except ImportError:
        raise PublishError("Croissant metadata need mlcroissant: pip install 'imagenet-c-generator[publish]'") from None
    config = run["config"]
    title = TITLES.get(config["name"], config["name"])
    archives = [mlc.FileObject(id=name, name=name, content_url=name, content_size=f"{size} B", sha256=digest,
                               encoding_formats=["application/x-tar" if name.endswith(".tar") else "application/gzip"])
                for name, digest, size in tarballs]
    prefix = r"[^/]+/" if single else ""
    if npy:
        files = mlc.FileSet(id="array-files", name="array-files", contained_in=[a.id for a in archives],
                            encoding_formats=["application/octet-stream"], includes=["*/*.npy"])
        fields = [mlc.Field(id="arrays/file", name="file", data_types=[mlc.DataType.TEXT],
                            source=mlc.Source(file_set="array-files", extract=mlc.Extract(
                                file_property=mlc.FileProperty.filename)))]
        record = mlc.RecordSet(id="arrays", name="arrays", fields=fields,
                               description="One (severities x images, 32, 32, 3) uint8 array per corruption, "
                                           "severity-major, and labels.npy")
        sets = [files]
    else:
        files = mlc.FileSet(id="image-files", name="image-files", contained_in=[a.id for a in archives],
                            encoding_formats=["image/jpeg"], includes=["*.JPEG", "*/*.JPEG", "*/*/*/*.JPEG",
                                                                       "*/*/*/*/*.JPEG"])

        def part(field: str, pattern: str, kind):
            return mlc.Field(id=f"images/{field}", name=field, data_types=[kind], source=mlc.Source(
                file_set="image-files", extract=mlc.Extract(file_property=mlc.FileProperty.fullpath),
                transforms=[mlc.Transform(regex=pattern)]))

        fields = [mlc.Field(id="images/image", name="image", data_types=[mlc.DataType.IMAGE_OBJECT],
                            source=mlc.Source(file_set="image-files", extract=mlc.Extract(
                                file_property=mlc.FileProperty.content))),
                  part("corruption", rf"^{prefix}([^/]+)/[^/]+/[^/]+/[^/]+$", mlc.DataType.TEXT),
                  part("severity", rf"^{prefix}[^/]+/([1-5])/[^/]+/[^/]+$", mlc.DataType.INTEGER),
                  part("wnid", rf"^{prefix}[^/]+/[^/]+/([^/]+)/[^/]+$", mlc.DataType.TEXT)]
        record = mlc.RecordSet(id="images", name="images", fields=fields,
                               description="Corrupted validation images with their corruption, severity and class")
        sets = [files]
    metadata = mlc.Metadata(
        name=title, url="https://github.com/hendrycks/robustness", version=str(run["version"]),
        description=f"{title}: ImageNet-C ({config['variant']} variant), {len(config['corruptions'])} corruptions x "
                    f"{len(config['severities'])} severities, generated with root seed {config['seed']}.",
        cite_as=CITATION, license=["https://image-net.org/download"],
        distribution=[*archives, *sets], record_sets=[record])
    return metadata.to_json()


# ---------------------------------------------------------------- publish

def publish(out: str | os.PathLike, dist: str | os.PathLike, compress: str | None = None,
            workers: int | None = None, check: bool = False) -> list[tuple[str, str, int]]:
    """Write the release of the run in ``out`` into ``dist``. Member checksums come from the
    manifest, so a file changed since it was written shows in ``verify``; ``check`` hashes every
    file on the way as well and refuses the publish at the first changed one (about 20% slower)."""
    out, dist = Path(out).expanduser().resolve(), Path(dist).expanduser().resolve()
    if dist == out or out in dist.parents:
        raise PublishError(f"--to {dist} is inside OUT {out}; write the release elsewhere")
    run, members = plan_release(out)
    make_folders(dist)
    try:
        with FolderLock(dist, remove=True):
            return _publish(out, dist, run, members, compress, workers, check)
    except Busy as exc:
        raise PublishError(str(exc)) from None
    except UnsafePath as exc:
        raise PublishError(str(exc)) from None


def _size(out: Path, member: Member) -> int:
    try:
        return os.lstat(out / member.source).st_size
    except FileNotFoundError:
        raise PublishError(f"{out / member.source}: listed in the manifest but missing; re-run the same generate "
                           "command to make it again") from None


def _publish(out: Path, dist: Path, run: dict, members: dict[str, list[Member]], compress, workers,
             check) -> list[tuple[str, str, int]]:
    suffix = ".gz" if compress == "gzip" else ""
    jobs = sorted(members.items(), key=lambda kv: -sum(_size(out, m) for m in kv[1]))
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    names = [f"{name}{suffix}" for name, _ in jobs]
    if workers == 1:
        done = [write_tarball(str(out), str(dist), name, group, bool(suffix), check)
                for name, (_, group) in zip(names, jobs)]
    else:
        with ProcessPoolExecutor(workers) as pool:
            done = list(pool.map(write_tarball, [str(out)] * len(jobs), [str(dist)] * len(jobs), names,
                                 [group for _, group in jobs], [bool(suffix)] * len(jobs), [check] * len(jobs)))
    tarballs = sorted(done)
    single = run["config"]["name"] in SINGLE_RELEASES
    npy = "cifar_npy" in run["config"]["outputs"]["formats"]
    try:
        failures = sum(1 for line in read_bytes(out, "failures.jsonl").splitlines() if line.strip())
    except FileNotFoundError:
        failures = 0
    write_bytes(dist, RUN, read_bytes(out, "run.json"))
    write_bytes(dist, CARD, dataset_card(run, tarballs, _counts(members), failures).encode())
    write_bytes(dist, CROISSANT, json.dumps(croissant(run, tarballs, single, npy), indent=1, sort_keys=True).encode())
    lists = [f"{MEMBERS}/{name}.sha256" for name, _, _ in tarballs]
    remove_stale(dist, {name for name, _, _ in tarballs}, lists)
    listed = [name for name, _, _ in tarballs] + [CARD, CROISSANT, RUN] + sorted(lists)
    write_bytes(dist, SUMS, "".join(f"{_file_sha256(dist, name)}  {name}\n" for name in listed).encode())
    return tarballs


def remove_stale(dist: Path, tarballs: set[str], lists: list[str]) -> None:
    """An earlier release's tarballs and member lists that this one does not have, and temporary
    files an interrupted publish left: removed (the names, never what a link points to), so
    DIST holds one release that verifies. Other files are left alone, and ``verify`` reports them."""
    for entry in os.scandir(dist):
        stale = entry.name.endswith((".tar", ".tar.gz")) and entry.name not in tarballs
        if (stale or (entry.name.startswith(".") and entry.name.endswith(".part"))) and not entry.is_dir(
                follow_symlinks=False):
            os.unlink(entry.path)
    if os.path.isdir(dist / MEMBERS) and not os.path.islink(dist / MEMBERS):
        for entry in os.scandir(dist / MEMBERS):
            if (f"{MEMBERS}/{entry.name}" not in lists and entry.name.endswith((".sha256", ".part"))
                    and not entry.is_dir(follow_symlinks=False)):
                os.unlink(entry.path)


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
            if _file_sha256(dist, name) != digest:
                problems.append(f"{name}: sha256 differs from {SUMS}")
        except FileNotFoundError:
            problems.append(f"{name}: listed in {SUMS} but missing")
        except (UnsafePath, OSError) as exc:
            problems.append(f"{name}: {exc}")
    present = {str(p.relative_to(dist)) for p in dist.rglob("*") if p.is_file() or p.is_symlink()} - {SUMS}
    for name in sorted(present - set(listed)):
        problems.append(f"{name}: present but not in {SUMS}")
    member_lists = {name[len(MEMBERS) + 1:-len(".sha256")]: name for name in listed if name.startswith(f"{MEMBERS}/")}
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
    if counts:
        log("images per corruption and severity:")
        for name in sorted({c for c, _ in counts}):
            log(f"  {name:18s} " + "  ".join(f"{s}: {counts.get((name, s), 0)}" for s in LEVEL_NAMES))
    if source is not None and not problems:
        problems += audit(dist, source, published, sample, log)
    return problems


def audit(dist: Path, source: str, published: dict[str, str], sample: int, log) -> list[str]:
    """Regenerate ``sample`` published images (a seeded choice) from the clean source with the
    recorded settings and compare their bytes with the published members."""
    import random

    from .engine import byte_versions
    from .readers import read_source
    from .task import Key
    try:
        run = json.loads(_text(dist, RUN, limit=64 << 20))
        config = run["config"]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{RUN}: cannot be read as a run record ({exc})"]
    if "jpeg" not in config["outputs"]["formats"] or "cifar_npy" in config["outputs"]["formats"]:
        return ["--source: the regeneration audit covers JPEG releases (this one holds .npy arrays)"]
    listing = read_source(config["reader"], source, config.get("labels"))
    by_output = {"/".join(relative_path("_", 1, item)[2:]): item for item in listing.items}
    candidates = sorted(name for name in published if name.endswith(".JPEG") or name.endswith(".jpg"))
    picks = random.Random(0).sample(candidates, min(sample, len(candidates)))
    problems = []
    for member in picks:
        name, level, rest = parse_path(member)
        item = by_output.get(rest)
        if item is None:
            problems.append(f"regeneration: {member} has no source image in {source}")
            continue
        task = task_from_config({**config, "corruptions": [name], "severities": [level]})
        shard = task.load_shard([item], 0)
        if not shard.ok[0]:
            problems.append(f"regeneration: {item.where} cannot be read: {shard.failures[0]['reason']}")
            continue
        block = task.produce(Key(name, 0, 0, 1), shard)
        data = block.jpeg(0, 0, config["outputs"]["jpeg"]["quality"], config["outputs"]["jpeg"]["optimize"])
        if sha256(data) != published[member]:
            problems.append(f"regeneration: {member} differs from the image regenerated from {item.where}")
    log(f"regenerated {len(picks)} images from {source}: {len(picks) - len(problems)} identical")
    if problems:
        ours, theirs = byte_versions(), run["identity"].get("versions", {})
        changed = [f"{k} {theirs.get(k)} -> {v}" for k, v in ours.items() if theirs.get(k) != v]
        if changed:
            problems.append("the installed libraries differ from the release's: " + ", ".join(changed))
    return problems

