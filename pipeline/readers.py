"""Source readers: list a validation set once (on the client), load one image anywhere.

A reader turns a source path into ``Source``: the ordered list of ``Item``s (what to load,
its output name and label) plus the class list. Items are small and picklable, so a shard
of them travels to a Dask worker, which loads the pixels itself.

A source is untrusted: names that become output paths (class names, file names) are
checked (a wnid is ``n`` + 8 digits; any other name one safe path component) and a source
holding a bad one is refused before any work; only regular files are read, and entries named
like images that are not (FIFOs, devices, links in a tar) are reported, not silently skipped;
CIFAR's pickles are read with an unpickler that builds only the containers and arrays the
official files hold, since a pickle can run code.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import io
import os
import pickle
import re
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
DATA_DIR = Path(__file__).resolve().parent / "data"
READERS = ("imagenet_folders", "imagenet_flat", "imagenet_tar", "tiny_imagenet", "cifar10", "cifar100")


@functools.lru_cache(maxsize=None)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k wnids in sorted order: a wnid's index is its standard class index."""
    return tuple((DATA_DIR / "imagenet_wnids.txt").read_text().split())


WNID = re.compile(r"n[0-9]{8}")
# PIL's own decompression-bomb threshold; the run config's max_pixels overrides it
DEFAULT_MAX_PIXELS = int(Image.MAX_IMAGE_PIXELS or 89_478_485)


class SourceError(ValueError):
    """A source that cannot be listed (missing path, wrong layout, unsafe names)."""


def safe_component(name: str) -> bool:
    """One path component that stays where it is put: no separators, not '.' or '..', no
    control characters."""
    from .files import UnsafePath, check_name
    if not isinstance(name, str) or any(ord(c) < 32 for c in name):
        return False
    try:
        check_name(name)
    except UnsafePath:
        return False
    return True


def deterministic(reason: str) -> str:
    """An exception's text without memory addresses, so identical runs write identical reports."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", reason)


@dataclass(frozen=True)
class Item:
    image_id: str  # unique within the source; seeds the image's random streams
    name: str  # output file name (e.g. ILSVRC2012_val_00000001.JPEG)
    wnid: str  # class folder name in the output tree
    label: int  # class index (-1 where the class is unknown)
    kind: str  # file, tar, cifar
    path: str  # file, tar archive or pickle batch
    offset: int = 0  # tar: data offset; cifar: row
    size: int = 0  # bytes (tar member, file); 0 for CIFAR rows

    @property
    def where(self) -> str:
        """Where the image comes from, for messages: the file, or archive:member."""
        return f"{self.path}:{self.name}" if self.kind == "tar" else self.path


@dataclass(frozen=True)
class Source:
    reader: str
    root: str
    items: tuple[Item, ...]
    classes: tuple[str, ...]  # index -> class name (wnid, or CIFAR class)
    rejected: tuple[dict, ...] = ()  # entries named like images that are not regular files: path, reason

    def digest(self) -> str:
        """sha256 of the item list (ids, output names, classes, labels): part of a run's
        identity, so a re-run into the same OUT with another source is refused. Content is
        checked per image against what its recorded outputs were made from (the engine's
        ``check_sources``), so an image that could not be read may be fixed and tried again."""
        listing = hashlib.sha256()
        for item in self.items:
            listing.update(f"{item.image_id}\t{item.name}\t{item.wnid}\t{item.label}\n".encode())
        return listing.hexdigest()


def source_digest(item: Item) -> str:
    """The sha256 (first 16 hex digits) of an item's bytes, read in pieces: what a resumed or
    extended run compares, so outputs of one image id never come from two different pictures."""
    digest = hashlib.sha256()
    if item.kind == "cifar":
        digest.update(np.ascontiguousarray(_cifar_images(item.path)[item.offset]).tobytes())
        return digest.hexdigest()[:16]
    with open(item.path, "rb") as handle:
        left = item.size if item.kind == "tar" else -1
        handle.seek(item.offset if item.kind == "tar" else 0)
        while left:
            chunk = handle.read(1 << 20 if left < 0 else min(left, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk) if left > 0 else 0
    return digest.hexdigest()[:16]


def load_pixels(item: Item, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The item's image; raises on unreadable, truncated, too large or non-regular data (the
    caller reports it). The size is checked from the header, before decoding."""
    Image.MAX_IMAGE_PIXELS = None  # in this (worker) process: max_pixels below replaces PIL's own check
    if item.kind == "cifar":
        return Image.fromarray(_cifar_images(item.path)[item.offset])
    if item.kind == "tar":
        with open(item.path, "rb") as archive:
            archive.seek(item.offset)
            data = archive.read(item.size)
        if len(data) != item.size:
            raise OSError(f"archive ended inside {item.name}")
        image = Image.open(io.BytesIO(data))
    else:
        mode = os.stat(item.path).st_mode  # a FIFO would block open() forever
        if not stat.S_ISREG(mode):
            raise OSError(f"not a regular file ({_kind_of(mode)})")
        image = Image.open(item.path)
    width, height = image.size
    if width * height > max_pixels:
        raise ValueError(f"too large: {width} x {height} = {width * height} pixels, more than max_pixels "
                         f"= {max_pixels} (a run config key)")
    image.load()  # decode now: truncated files raise here, not later
    return image


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def leaves(path: Path | str, root: Path | str) -> str | None:
    """Where a link at ``path`` leads when that is outside ``root`` (links inside the source are
    followed, links out of it never: a source must not read, and so publish, files elsewhere)."""
    target = os.path.realpath(path)
    base = os.path.realpath(root)
    return None if target == base or target.startswith(base.rstrip("/") + "/") else target


def _regular(path: Path, root: Path | None = None) -> tuple[str | None, int]:
    """(None, size in bytes) for a regular file (a link to one inside ``root`` included); else
    (why it is not read, -1). One stat per file (two for a link)."""
    try:
        outside = leaves(path, root) if root is not None and os.path.islink(path) else None
        if outside:
            broken = "" if os.path.exists(path) else ", a broken link"
            return f"a link leading out of the source (to {outside}{broken}): not followed", -1
        info = os.stat(path)
    except OSError as exc:
        return f"cannot be read: {exc.strerror}" + (" (a broken link)" if os.path.islink(path) else ""), -1
    if not stat.S_ISREG(info.st_mode):
        return f"not a regular file ({_kind_of(info.st_mode)})", -1
    return None, info.st_size


def _label(wnid: str) -> int:
    wnids = imagenet_wnids()
    index = np.searchsorted(wnids, wnid)
    return int(index) if index < len(wnids) and wnids[index] == wnid else -1


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def class_folder_images(root: Path, rejected: list | None = None, sizes: dict | None = None,
                        suffixes: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[tuple[str, Path]]:
    """(class folder, image path) under ``root/<class>/...`` in torchvision ImageFolder's
    order; files without one of ``suffixes`` (default: images) are ignored, as ImageFolder
    does. Entries so named that are not regular files are left out, and listed in ``rejected``
    where given; ``sizes`` receives each file's size."""
    found = []
    folders = []
    for entry in os.scandir(root):
        if entry.is_dir():
            if entry.is_symlink() and leaves(entry.path, root):
                if rejected is not None:
                    rejected.append({"path": entry.path, "reason": f"a link leading out of the source (to "
                                                                   f"{leaves(entry.path, root)}): not followed"})
                continue
            folders.append(entry.name)
    for folder in sorted(folders):
        for dirpath, dirnames, filenames in os.walk(root / folder):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.lower().endswith(suffixes):
                    continue
                path = Path(dirpath) / name
                reason, size = _regular(path, root)
                if reason is None:
                    found.append((folder, path))
                    if sizes is not None:
                        sizes[path] = size
                elif rejected is not None:
                    rejected.append({"path": str(path), "reason": reason})
    return found


def flat_images(folder: Path) -> tuple[list[tuple[str, int]], list[dict]]:
    """(name, size) of the regular image files directly in ``folder``, sorted by name, and the
    entries named like images that are not regular files (path, reason)."""
    found, rejected = [], []
    for entry in sorted((e for e in os.scandir(folder) if _is_image(e.name) and not e.is_dir()), key=lambda e: e.name):
        reason, size = _regular(Path(entry.path), folder)
        if reason is None:
            found.append((entry.name, size))
        else:
            rejected.append({"path": entry.path, "reason": reason})
    return found, rejected


def read_imagenet_folders(root: Path) -> Source:
    """``root/<wnid>/<file>``: ImageNet validation sorted into class folders (also any
    ImageFolder tree)."""
    rejected: list = []
    sizes: dict = {}
    found = class_folder_images(root, rejected, sizes)
    # The file name identifies an image (and seeds its streams), as in the flat and tar
    # layouts, so the same validation image gets the same bytes whichever way it is stored;
    # trees whose file names repeat across folders use relative paths instead.
    unique = len({path.name for _, path in found}) == len(found)
    items = tuple(Item(path.name if unique else str(path.relative_to(root)), path.name, wnid, _label(wnid), "file",
                       str(path), size=sizes[path]) for wnid, path in found)
    return Source("imagenet_folders", str(root), items, imagenet_wnids(), tuple(rejected))


def _val_solution(root: Path, labels: str | None = None) -> dict[str, str]:
    """``LOC_val_solution.csv`` (ImageId, PredictionString "wnid x y x y ..."): id -> wnid;
    ``labels`` names the file, else it is looked for beside or above ``root``."""
    candidates = [Path(labels).expanduser()] if labels else [root / "LOC_val_solution.csv",
                                                             root.parent / "LOC_val_solution.csv"]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise SourceError(f"LOC_val_solution.csv not found (looked in {', '.join(map(str, candidates))}); "
                          "give its path with --labels")
    solution = {}
    try:
        with open(path, newline="") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                words = (row.get("PredictionString") or "").split()
                wnid = words[0] if words else ""
                if not WNID.fullmatch(wnid) or not safe_component(row.get("ImageId") or ""):
                    raise SourceError(f"{path}, line {line}: {row.get('ImageId')!r} -> {wnid!r}: a label must be a "
                                      "wnid (n followed by 8 digits) and an image id a plain name")
                solution[row["ImageId"]] = wnid
    except (UnicodeDecodeError, csv.Error, KeyError, TypeError) as exc:
        raise SourceError(f"{path}: not a LOC_val_solution.csv (ImageId,PredictionString): {exc}") from None
    return solution


def _labelled(name: str, solution: dict[str, str], kind: str, path: str, offset=0, size=0) -> Item:
    wnid = solution[Path(name).stem]
    return Item(name, name, wnid, _label(wnid), kind, path, offset, size)


UNLABELLED = "no label: its id is not in the labels file (LOC_val_solution.csv / val_annotations.txt)"


def read_imagenet_flat(root: Path, labels: str | None = None) -> Source:
    """The validation set as distributed: a flat folder of ``ILSVRC2012_val_*.JPEG`` and
    ``LOC_val_solution.csv`` beside it (or at ``labels``). Images without a label are reported
    and left out (a class folder of their own would make the tree unscorable)."""
    solution = _val_solution(root, labels)
    entries, rejected = flat_images(root)
    rejected += [{"path": str(root / name), "reason": UNLABELLED} for name, _ in entries
                 if Path(name).stem not in solution]
    return Source("imagenet_flat", str(root), tuple(_labelled(name, solution, "file", str(root / name), 0, size)
                                                    for name, size in entries if Path(name).stem in solution),
                  imagenet_wnids(), tuple(rejected))


def read_imagenet_tar(path: Path, labels: str | None = None) -> Source:
    """``ILSVRC2012_img_val.tar`` read in place: members are located once, then each is read
    straight from its offset, so nothing is extracted."""
    solution = _val_solution(path.parent, labels)
    try:
        with tarfile.open(path, "r:") as archive:  # uncompressed, so offsets are seekable
            listed = [m for m in archive.getmembers() if _is_image(m.name)]
    except tarfile.ReadError as exc:
        raise SourceError(f"{path}: not an uncompressed tar archive ({exc}); members are read in place, so a "
                          "compressed archive (.tar.gz) must be unpacked, or recompressed as plain tar") from None
    members = [m for m in listed if m.isfile()]
    kinds = ((tarfile.TarInfo.issym, "a symbolic link"), (tarfile.TarInfo.islnk, "a hard link"),
             (tarfile.TarInfo.isdir, "a folder"), (tarfile.TarInfo.isfifo, "a FIFO"),
             (tarfile.TarInfo.isdev, "a device"))
    rejected = [{"path": f"{path}:{m.name}", "reason": "not a regular file (" + next(
        (name for test, name in kinds if test(m)), "an unusual member") + ")"} for m in listed if not m.isfile()]
    members.sort(key=lambda m: (Path(m.name).name, m.name))
    rejected += [{"path": f"{path}:{m.name}", "reason": UNLABELLED} for m in members
                 if Path(m.name).stem not in solution]
    items = tuple(_labelled(Path(m.name).name, solution, "tar", str(path), m.offset_data, m.size) for m in members
                  if Path(m.name).stem in solution)
    return Source("imagenet_tar", str(path), items, imagenet_wnids(), tuple(rejected))


def read_tiny_imagenet(root: Path) -> Source:
    """Tiny ImageNet: ``val/images/*.JPEG`` with ``val/val_annotations.txt`` (file, wnid, box);
    class indices follow the sorted ``wnids.txt`` (200 classes)."""
    base = root / "val" if (root / "val").is_dir() else root
    annotations = base / "val_annotations.txt"
    if not annotations.is_file():
        raise SourceError(f"{annotations} not found: expected Tiny ImageNet's val/images and val/val_annotations.txt")
    wnids_file = base.parent / "wnids.txt"
    rows = [line.split("\t") for line in annotations.read_text().splitlines() if line.strip()]
    for number, row in enumerate(rows, start=1):
        if len(row) < 2 or not WNID.fullmatch(row[1]):
            raise SourceError(f"{annotations}, line {number}: expected 'file<TAB>wnid<TAB>box', the wnid n followed "
                              f"by 8 digits; got {chr(9).join(row)!r}")
    wnid_of = {row[0]: row[1] for row in rows}
    classes = sorted(wnids_file.read_text().split()) if wnids_file.is_file() else sorted(set(wnid_of.values()))
    bad = [c for c in classes if not WNID.fullmatch(c)]
    if bad:
        raise SourceError(f"{wnids_file}: {bad[0]!r} is not a wnid (n followed by 8 digits)")
    index = {w: i for i, w in enumerate(classes)}
    images = base / "images"
    names, rejected = flat_images(images)
    rejected += [{"path": str(images / n), "reason": UNLABELLED} for n, _ in names if n not in wnid_of]
    items = tuple(Item(n, n, wnid_of[n], index.get(wnid_of[n], -1), "file", str(images / n), size=size)
                  for n, size in names if n in wnid_of)
    return Source("tiny_imagenet", str(root), items, tuple(classes), tuple(rejected))


_CIFAR = {"cifar10": ("test_batch", b"labels", "batches.meta", b"label_names"),
          "cifar100": ("test", b"fine_labels", "meta", b"fine_label_names")}


def _cifar_batch(root: Path, reader: str) -> Path:
    batch = _CIFAR[reader][0]
    for folder in (root, root / "cifar-10-batches-py", root / "cifar-100-python"):
        if (folder / batch).is_file():
            return folder / batch
    raise SourceError(f"{reader}: {batch!r} not found under {root} (the python version of the CIFAR test set)")


class _ArraysOnly(pickle.Unpickler):
    """Builds only what the official CIFAR pickles hold: builtin containers, and numpy arrays
    (by the reconstructors numpy pickles them with). Anything else (a callable that would run
    code) is refused."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise SourceError(f"the pickle asks for {module}.{name}; a CIFAR batch holds only lists, dicts, bytes and "
                          "numpy arrays, so it is refused (pickles can run code)")


def load_pickle(path: Path):
    try:
        with open(path, "rb") as handle:
            return _ArraysOnly(handle, encoding="bytes").load()
    except SourceError as exc:
        raise SourceError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise SourceError(f"{path}: not a CIFAR python batch ({type(exc).__name__}: {exc})") from None


def cifar_pixels(batch, path) -> np.ndarray:
    """A batch's ``data`` as the official files hold it (an N x 3072 uint8 array, or its bytes):
    anything else (nested lists, which a small pickle can make expand to billions of values
    through memo references) is refused before it is converted."""
    data = batch.get(b"data") if isinstance(batch, dict) else None
    if isinstance(data, (bytes, bytearray)):
        data = np.frombuffer(data, np.uint8)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.size % 3072:
        raise SourceError(f"{path}: b'data' is not a uint8 array of N x 3072 values (the python CIFAR test set)")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


@functools.lru_cache(maxsize=2)
def _cifar_images(path: str) -> np.ndarray:
    return cifar_pixels(load_pickle(Path(path)), path)


def read_cifar(root: Path, reader: str) -> Source:
    path = _cifar_batch(root, reader)
    _, label_key, meta_name, names_key = _CIFAR[reader]
    batch = load_pickle(path)
    if not isinstance(batch, dict) or label_key not in batch or b"data" not in batch:
        raise SourceError(f"{path}: expected a dict with {label_key!r} and b'data' (the python CIFAR test set)")
    raw = batch[label_key]
    if not isinstance(raw, (list, tuple, np.ndarray)) or any(type(v) is not int and not isinstance(v, np.integer)
                                                               for v in raw):
        raise SourceError(f"{path}: {label_key!r} is not a list of integer labels")
    labels = [int(v) for v in raw]
    if len(labels) != len(cifar_pixels(batch, path)):
        raise SourceError(f"{path}: {len(labels)} labels for {len(cifar_pixels(batch, path))} images")
    meta = path.parent / meta_name
    if meta.is_file():
        classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in load_pickle(meta)[names_key])
    else:
        classes = tuple(str(i) for i in range(max(labels) + 1))
    bad = [c for c in classes if not safe_component(c)]
    if bad:
        raise SourceError(f"{meta}: class name {bad[0]!r} cannot be a folder name (one plain path component)")
    outside = sorted({v for v in labels if not 0 <= v < len(classes)})
    if outside:
        raise SourceError(f"{path}: labels {outside[:5]} are outside the {len(classes)} class names of {meta}")
    items = tuple(Item(f"{i:05d}", f"{i:05d}.png", classes[label], int(label), "cifar", str(path), i)
                  for i, label in enumerate(labels))
    return Source(reader, str(root), items, classes)


def read_source(reader: str, path: str | os.PathLike, labels: str | None = None) -> Source:
    """List the source at ``path`` with ``reader`` (one of ``READERS``); ``labels``: the
    LOC_val_solution.csv of the flat and tar layouts, where it is not beside the source."""
    path = Path(path).expanduser().resolve()  # workers elsewhere need the absolute path
    if reader not in READERS:
        raise SourceError(f"unknown reader {reader!r}; allowed: {', '.join(READERS)}")
    if not path.exists():
        raise SourceError(f"source {path} does not exist")
    if reader == "imagenet_tar":
        if not path.is_file():
            raise SourceError(f"imagenet_tar reads a .tar file, got the folder {path}")
        return read_imagenet_tar(path, labels)
    if not path.is_dir():
        raise SourceError(f"{reader} reads a folder, got the file {path}")
    if reader == "imagenet_folders":
        return read_imagenet_folders(path)
    if reader == "imagenet_flat":
        return read_imagenet_flat(path, labels)
    if reader == "tiny_imagenet":
        return read_tiny_imagenet(path)
    return read_cifar(path, reader)
