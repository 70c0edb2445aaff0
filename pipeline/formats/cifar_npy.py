"""The official CIFAR-10-C / CIFAR-100-C layout: ``<corruption>.npy`` of shape (L N, 32, 32, 3)
uint8, severity-major (all images at the first severity, then the next), and ``labels.npy``
(the labels repeated L times). The official files hold L = 5 severities; a run over a subset
also writes ``severities.json`` saying which, and the reader follows it."""
from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corruptions import SEVERITIES

from ..files import check_name, folder, make_folders, new_file, open_existing, sha256, write_bytes
from ..task import IMAGE_DIMS, SEQUENCE_DIMS
from .common import DataError, Layout, ReleaseSample, Videos, fixed_frames, image_benchmark
from .common import Reader as BaseReader
from .common import SequenceReader as BaseSequenceReader

NAME = "cifar_npy"  # its key in a run config's outputs.formats
DIMS = IMAGE_DIMS
STORES = (IMAGE_DIMS, SEQUENCE_DIMS)
READERS = ("cifar10", "cifar100")  # the sources it can be written from (it stores their labels)
# what an official release packs of it: the arrays and labels, one tarball (CIFAR-10-C's own)
RELEASE_RANK, RELEASE_ONE_TARBALL, RELEASE_ARRAYS = 0, True, True
LEVELS_FILE = "severities.json"
OFFICIAL_LEVELS = SEVERITIES  # what the official files hold


def make_writer(config, out: Path, dims: tuple[str, ...]):
    """This format's writer for a resolved run config writing into ``out``."""
    return SequenceWriter(str(out)) if tuple(dims) == SEQUENCE_DIMS else Writer(str(out))


@dataclass(frozen=True)
class Writer:
    root: str
    format = "cifar_npy"
    dims = DIMS

    def _name(self, name: str, part: bool) -> str:
        return check_name(f".{name}.npy.part" if part else f"{name}.npy", self.root)

    def _exists(self, name: str) -> bool:
        return any(os.path.lexists(os.path.join(self.root, self._name(name, part))) for part in (False, True))

    def _create(self, name: str, shape: tuple[int, ...]) -> None:
        """An empty (zero) uint8 array file made as ``np.lib.format.open_memmap`` makes one, but
        created fresh (never through a link) and renamed into place once whole."""
        with new_file(self.root, self._name(name, True)) as stream:
            np.lib.format.write_array_header_1_0(stream, {"descr": "|u1", "fortran_order": False, "shape": shape})
            stream.truncate(stream.tell() + int(np.prod(shape)))

    def _open(self, name: str) -> np.memmap:
        """The array of ``name`` (its unfinished ``.part`` first) mapped for writing, opened
        without following links."""
        try:
            descriptor = open_existing(self.root, self._name(name, True), os.O_RDWR)
        except FileNotFoundError:  # finalised already: a retried unit of a finished corruption
            descriptor = open_existing(self.root, self._name(name, False), os.O_RDWR)
        with os.fdopen(descriptor, "r+b") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(stream)
            if dtype != np.uint8 or fortran:
                raise DataError(f"{self.root}/{name}.npy is not a uint8 array in C order")
            return np.memmap(stream, dtype=np.uint8, mode="r+", offset=stream.tell(), shape=shape)

    def _labels(self, labels: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, labels)
        write_bytes(self.root, "labels.npy", buffer.getvalue())

    def prepare(self, layout: Layout) -> None:
        make_folders(self.root)
        levels = layout.levels
        n, rows = len(layout.items), len(layout.items) * len(levels)
        height, width = layout.image_size
        for name in layout.names:
            if not self._exists(name):
                self._create(name, (rows, height, width, 3))
        # uint8, as make_cifar_c.py saves them (any label a byte holds; int64 beyond)
        labels = np.asarray([i.label for i in layout.items], np.int64)
        wide = labels.size and (labels.min() < 0 or labels.max() > 255)
        self._labels(np.tile(labels.astype(np.int64 if wide else np.uint8), len(levels)))
        if tuple(levels) != OFFICIAL_LEVELS:
            write_bytes(self.root, LEVELS_FILE, json.dumps({"severities": list(levels), "images": n}).encode())

    def write(self, block) -> dict[str, str]:
        key = block.key
        array = self._open(key.name)
        total = array.shape[0] // len(block.levels)
        digests = {}
        for level_index, level in enumerate(block.levels):
            row = total * level_index + key.start
            array[row:row + len(block.items)] = block.data[level_index]
            digests[f"{key.name}.npy[{level}][{key.start}:{key.stop}]"] = sha256(
                np.ascontiguousarray(block.data[level_index]).tobytes())
        array.flush()
        return digests

    def finalise(self, layout: Layout, failures, complete: bool = True) -> list[str]:
        done = []
        with folder(self.root) as descriptor:
            for name in layout.names:
                part, final = self._name(name, True), self._name(name, False)
                with contextlib.suppress(FileNotFoundError):
                    os.replace(part, final, src_dir_fd=descriptor, dst_dir_fd=descriptor)
                done.append(os.path.join(self.root, final))
        return done


@dataclass(frozen=True)
class SequenceWriter(Writer):
    """CIFAR-10-P / CIFAR-100-P, as ``make_cifar_p.py`` saves them: ``<sequence kind>.npy`` of
    shape (N, T, 32, 32, 3) uint8 and ``labels.npy`` (N,). Files are finalised as ``Writer``'s."""
    dims = SEQUENCE_DIMS

    def prepare(self, layout: Layout) -> None:
        make_folders(self.root)
        height, width = layout.image_size
        for kind in layout.names:
            if not self._exists(kind):
                self._create(kind, (len(layout.items), layout.frame_counts[kind], height, width, 3))
        self._labels(np.asarray([i.label for i in layout.items], np.int64))

    def write(self, block) -> dict[str, str]:
        key = block.key
        array = self._open(key.name)
        data = np.stack([fixed_frames(block, row) if good else np.zeros(array.shape[1:], np.uint8)
                         for row, good in enumerate(block.ok)])
        array[key.start:key.stop] = data
        array.flush()
        return {f"{key.name}.npy[{key.start}:{key.stop}]": sha256(data.tobytes())}


def recognise(path: Path) -> bool:
    return (path / "labels.npy").is_file()


def array_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of a .npy file from its header alone, refusing before anything is
    allocated what no scorer should read: not a regular file (a FIFO would block), not a .npy
    array, object (pickled) arrays, Fortran order, or data shorter than the header declares."""
    import stat
    try:
        info = os.stat(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(stream, max_header_size=1 << 16)
            offset = stream.tell()
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from None
    if dtype.hasobject:
        raise DataError(f"{path}: an array of Python objects (a pickle), which is never read")
    if fortran:
        raise DataError(f"{path}: a Fortran-ordered array; save it in C order")
    if offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > info.st_size:
        raise DataError(f"{path}: holds fewer bytes than its header's shape {shape} declares (cut short?)")
    return tuple(shape), dtype


def check_images(path: Path, shape: tuple[int, ...], dtype: np.dtype, frames: bool = False) -> None:
    """Corrupted images as the official files hold them: uint8, channels last."""
    layout = "(videos, frames, height, width, 3)" if frames else "(rows, height, width, 3)"
    if dtype != np.uint8:
        hint = (" (values in [0, 1]? multiply by 255 and round to uint8, as the official files hold them)"
                if dtype.kind == "f" else "")
        raise DataError(f"{path}: {dtype} values; expected uint8 0-255{hint}")
    if len(shape) != (5 if frames else 4) or shape[-1] != 3:
        hint = " (channels first? expected channels last)" if len(shape) >= 3 and shape[-3] == 3 else ""
        raise DataError(f"{path}: shape {shape}; expected {layout}{hint}")


def read_labels(path: Path) -> np.ndarray:
    shape, dtype = array_header(path)
    if dtype.kind not in "iu" or len(shape) != 1:
        raise DataError(f"{path}: {dtype} of shape {shape}; expected one integer label per row")
    return np.asarray(np.load(path, allow_pickle=False), np.int64)


def stored_levels(root: Path, rows: int) -> tuple[int, ...]:
    """The severities a folder holds: ``severities.json`` where present (checked: distinct
    severities that exist, and its image count), else the official five."""
    sidecar = root / LEVELS_FILE
    if sidecar.exists():
        try:
            if not sidecar.is_file() or sidecar.stat().st_size > 1 << 16:
                raise ValueError("not a small regular file")
            recorded = json.loads(sidecar.read_text())
            levels = tuple(recorded["severities"])
            images = recorded.get("images")
        except (ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
            raise DataError(f"{sidecar}: not a severities file ({{\"severities\": [...], \"images\": N}}): "
                            f"{exc}") from None
        if (not levels or any(type(s) is not int or s not in OFFICIAL_LEVELS for s in levels)
                or len(set(levels)) != len(levels)):
            raise DataError(f"{sidecar}: severities {list(levels)}; expected distinct severities among "
                            f"{list(OFFICIAL_LEVELS)}")
        if images is not None and (type(images) is not int or images * len(levels) != rows):
            raise DataError(f"{sidecar}: {images!r} images x {len(levels)} severities, but labels.npy holds {rows} rows")
    else:
        levels = OFFICIAL_LEVELS
    if rows % len(levels):
        raise DataError(f"{root}: {rows} rows are not {len(levels)} severities of equal size")
    return levels


class Reader(BaseReader):
    kind = "cifar_npy"
    family = "cifar"
    label_counts = (10, 100)

    def __init__(self, root: Path, classes, allow_partial: bool = False):
        self.root, self.classes = Path(root), classes
        self.labels = read_labels(self.root / "labels.npy")
        self.levels = stored_levels(self.root, len(self.labels))
        self._cells = []
        self.task, names = image_benchmark(lambda name: os.path.lexists(self.root / f"{name}.npy"))
        for name in names:
            path = self.root / f"{name}.npy"
            if os.path.lexists(path):
                shape, dtype = array_header(path)
                check_images(path, shape, dtype)
                if shape[0] != len(self.labels):
                    raise DataError(f"{path} holds {shape[0]} rows but labels.npy {len(self.labels)}")
                self._cells += [(name, s) for s in self.levels]

    def cells(self):
        return list(self._cells)

    def count(self, cell):
        return len(self.labels) // len(self.levels)

    def slices(self, cell, batch_size):
        n = self.count(cell)
        return [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]

    def read(self, cell, start, stop):
        data = np.load(self.root / f"{cell[0]}.npy", mmap_mode="r")
        offset = self.levels.index(cell[1]) * self.count(cell)
        return (np.array(data[offset + start:offset + stop]),
                np.asarray(self.labels[offset + start:offset + stop], np.int64))


def holds_sequences(root: Path) -> bool:
    """A CIFAR-10-P / CIFAR-100-P folder: ``labels.npy`` beside (N, T, H, W, 3) arrays."""
    from perturbations import sequence_names
    return (root / "labels.npy").is_file() and any(
        (root / f"{kind}.npy").is_file() and len(_shape(root / f"{kind}.npy") or ()) == 5 for kind in sequence_names("all"))


def _shape(path: Path) -> tuple[int, ...] | None:
    """The array's shape, or None where the file is no readable .npy array."""
    try:
        return array_header(path)[0]
    except DataError:
        return None


class SequenceReader(BaseSequenceReader):
    """``<sequence kind>.npy`` (N, T, 32, 32, 3) uint8 and ``labels.npy`` (N,), as
    ``make_cifar_p.py`` saved them (ours alike)."""
    kind = "cifar_npy"
    family = "cifar"
    label_counts = (10, 100)

    def __init__(self, root: Path, classes, allow_partial: bool = False):
        from perturbations import sequence_names
        super().__init__()
        self.root, self.classes = Path(root), classes
        self.labels = read_labels(self.root / "labels.npy")
        self._kinds = []
        for kind in sequence_names("all"):
            path = self.root / f"{kind}.npy"
            if not os.path.lexists(path):
                continue
            try:
                shape, dtype = array_header(path)
                check_images(path, shape, dtype, frames=True)
            except DataError as exc:
                self.problems.append(f"{exc}; left out")
                continue
            if shape[0] != len(self.labels):
                self.problems.append(f"{path}: {shape[0]} videos but labels.npy holds {len(self.labels)}; left out")
            else:
                self._kinds.append(kind)

    def kinds(self):
        return list(self._kinds)

    def videos(self, kind):
        return Videos(tuple(f"{kind}.npy[{i}]" for i in range(len(self.labels))), tuple(map(int, self.labels)))

    def load(self, kind, index):
        return np.array(np.load(self.root / f"{kind}.npy", mmap_mode="r")[index])


def release_files(out: Path, names, records: dict) -> list[tuple[str, str | None, str | None]]:
    """What a release packs of a run's arrays (``names``: its kernels): (path under OUT, digest or
    None, kernel name or None)."""
    extras = ["labels.npy"] + ([LEVELS_FILE] if os.path.lexists(out / LEVELS_FILE) else [])
    return [(f"{name}.npy", None, name) for name in names] + [(extra, None, None) for extra in extras]


# ---------------------------------------------------------------- per-sample releases: PNG rows

def release_samples(out: Path, names, records: dict, variant: str) -> list[ReleaseSample]:
    """A per-sample release's samples of a run's arrays, made while the release is written
    (``ArrayRows``): every image row of ``<corruption>.npy`` as a PNG (``png_bytes``: lossless),
    keyed by its index in the source's test set; every video of a CIFAR-P ``<kind>.npy`` as the
    ``.npy`` of its frames (``frames_npy``: lossless, as the arrays store them). Labels from
    labels.npy."""
    from perturbations import split_kind
    labels = read_labels(out / "labels.npy")
    samples = []
    for name in names:
        shape, dtype = array_header(out / f"{name}.npy")
        check_images(out / f"{name}.npy", shape, dtype, frames=len(shape) == 5)
        if len(shape) == 5:  # CIFAR-P: one video per row
            perturbation, difficulty = split_kind(name)
            size = frames_npy_size(shape[1:])
            samples += [ReleaseSample(perturbation, difficulty, f"{index:06d}", "npy", f"{name}.npy", None, str(index),
                                      label=int(labels[index]), row=index, size=size, kind=name, frames=shape[1])
                        for index in range(shape[0])]
            continue
        levels = stored_levels(out, len(labels))
        count = len(labels) // len(levels)
        size = png_size(shape[1], shape[2])
        for level_index, level in enumerate(levels):
            for index in range(count):
                row = level_index * count + index
                samples.append(ReleaseSample(name, level, f"{index:06d}", "png", f"{name}.npy", None, str(index),
                                             label=int(labels[row]), row=row, size=size))
    return samples


def frames_npy(frames: np.ndarray) -> bytes:
    """A video's frames (T, H, W, 3) uint8 as a .npy file: format 1.0 header, C order."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False, "shape": frames.shape})
    buffer.write(np.ascontiguousarray(frames, np.uint8).tobytes())
    return buffer.getvalue()


def frames_npy_size(shape: tuple[int, ...]) -> int:
    """The size of ``frames_npy`` of frames of this shape."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    return buffer.tell() + int(np.prod(shape))


_ROW_BLOCK = 65535  # the most bytes one stored deflate block holds


def png_size(height: int, width: int) -> int:
    """The size of ``png_bytes`` of an RGB image of this size (it depends on nothing else)."""
    raw = height * (width * 3 + 1)
    blocks = max(1, -(-raw // _ROW_BLOCK))
    return 8 + 25 + (12 + 2 + 5 * blocks + raw + 4) + 12


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB uint8 image as a PNG whose bytes depend on the pixels alone: no filter, and the
    zlib stream in stored (uncompressed) deflate blocks written here, so no zlib build (zlib,
    zlib-ng) or level changes them. As large as the array's own bytes (CIFAR images hardly
    compress losslessly)."""
    import struct
    import zlib
    height, width = image.shape[:2]
    raw = np.zeros((height, width * 3 + 1), np.uint8)  # each row: filter type 0, then its pixels
    raw[:, 1:] = np.ascontiguousarray(image, np.uint8).reshape(height, width * 3)
    data = raw.tobytes()
    stream = [b"\x78\x01"]
    for start in range(0, max(len(data), 1), _ROW_BLOCK):
        piece = data[start:start + _ROW_BLOCK]
        last = start + _ROW_BLOCK >= len(data)
        stream.append(struct.pack("<BHH", int(last), len(piece), len(piece) ^ 0xFFFF) + piece)
    stream.append(struct.pack(">I", zlib.adler32(data)))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(stream)) + chunk(b"IEND", b"")


class ArrayRows:
    """The samples a release makes of array rows: an image row's PNG, a video row's .npy; each
    array file opened once (without following links) and mapped."""

    def __init__(self, out: str | Path):
        self.out, self.arrays = str(out), {}

    def sample(self, path: str, row: int) -> bytes:
        if path not in self.arrays:
            with os.fdopen(open_existing(self.out, path), "rb") as stream:
                version = np.lib.format.read_magic(stream)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(stream, max_header_size=1 << 16)
                if dtype != np.uint8 or fortran or len(shape) not in (4, 5) or shape[-1] != 3:
                    raise DataError(f"{self.out}/{path}: not a uint8 array of images or videos, channels last")
                self.arrays[path] = np.memmap(stream, dtype=np.uint8, mode="r", offset=stream.tell(), shape=shape)
        array = self.arrays[path]
        return png_bytes(array[row]) if array.ndim == 4 else frames_npy(array[row])
