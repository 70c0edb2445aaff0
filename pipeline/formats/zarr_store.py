"""``OUT/<name>.zarr``: a Zarr v3 store, consolidated metadata.

- ``<corruption>/<severity>``: uint8 (N, H, W, 3), one image per chunk, one shard file per
  key (the run's shard of source images), so a unit writes whole files and a reader fetches one
  image with two small reads. Chunks hold the benchmark's JPEG bytes (codec ``imagenet_c.jpeg``,
  the default for the ImageNet variants: the pixels the JPEG tree decodes to) or lossless
  ``zstd`` / ``blosc`` / ``gzip`` / ``none`` (the default for CIFAR, whose benchmark is raw arrays).
- ImageNet-P (``SequenceWriter``): ``<sequence kind>``: uint8 (N, T, H, W, 3), one sequence
  per chunk, one shard file per key, lossless only (its benchmark's frames are exact).
- ``labels`` (int32), ``filenames``, ``wnids`` (strings), all (N,).
- Attributes: task, variant, levels, classes, seed, resolved config, library versions,
  ``failed_images`` (their rows are left unwritten: they read as zeros and the scorer leaves
  them out), and ``complete``, set only when every key has been written.
"""
from __future__ import annotations

import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corruptions.settings import Settings, integer, one_of

from ..files import refuse_links, sha256, write_bytes
from ..task import IMAGE_DIMS, SEQUENCE_DIMS
from .common import FIXED_SHAPE_RULE, LEVEL_NAMES, DataError, Layout, Videos, fixed_frames, image_benchmark, jpeg_bytes
from .common import Reader as BaseReader
from .common import SequenceReader as BaseSequenceReader
from .zarr_codecs import NAME as JPEG_CODEC
from .zarr_codecs import JpegCodec

DIMS = IMAGE_DIMS
CODECS = ("jpeg", "zstd", "blosc", "gzip", "none")
NAME = "zarr"  # its key in a run config's outputs.formats
STORES = (IMAGE_DIMS, SEQUENCE_DIMS)


class ZarrSettings(Settings):
    """``outputs.zarr`` of a run config."""
    codec: one_of(CODECS + ("default",)) = "default"  # default: jpeg, or zstd for raw-array benchmarks
    level: integer("an integer from 0 to 22", 0, 22) = 1


SETTINGS = ZarrSettings
_EMPTY = 2**64 - 1  # the sharding index's "chunk absent"


def _lossless(codec: str, level: int):
    """(zarr compressor list, numcodecs codec that makes the same chunk bytes) for a lossless codec."""
    import numcodecs
    from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec
    if codec == "zstd":
        return [ZstdCodec(level=level)], numcodecs.Zstd(level=level)
    if codec == "blosc":
        return ([BloscCodec(cname="zstd", clevel=min(level, 9), shuffle="bitshuffle", typesize=1)],
                numcodecs.Blosc(cname="zstd", clevel=min(level, 9), shuffle=numcodecs.Blosc.BITSHUFFLE))
    if codec == "gzip":
        return [GzipCodec(level=min(level, 9))], numcodecs.GZip(level=min(level, 9))
    return [], None


def shard_file(inner: list[bytes | None]) -> bytes:
    """A Zarr v3 shard: the inner chunks' bytes, then the index ((offset, nbytes) uint64 little
    endian per chunk, absent ones all ones) and its CRC32C (the default index codecs)."""
    import google_crc32c
    body, index, offset = [], [], 0
    for data in inner:
        if data is None:
            index += [_EMPTY, _EMPTY]
        else:
            index += [offset, len(data)]
            body.append(data)
            offset += len(data)
    packed = struct.pack(f"<{len(index)}Q", *index)
    return b"".join(body) + packed + struct.pack("<I", google_crc32c.value(packed))


def make_writer(config, out: Path, dims: tuple[str, ...]):
    """This format's writer for a resolved run config writing into ``out``: the store
    ``OUT/<name>.zarr`` of image blocks, or of sequence blocks."""
    path, settings, jpeg = str(out / f"{config.name}.zarr"), config.outputs.zarr, config.outputs.jpeg
    if tuple(dims) == SEQUENCE_DIMS:
        return SequenceWriter(path, config.shard_size, settings.codec, settings.level)
    return Writer(path, config.shard_size, settings.codec, settings.level, jpeg.quality, jpeg.optimize)


@dataclass(frozen=True)
class Writer:
    path: str
    shard_rows: int  # images per shard file: the run's shard size
    codec: str = "jpeg"
    level: int = 1
    quality: int = 85  # jpeg: the JPEG tree's settings, so both hold the same bytes
    optimize: bool = True
    format = "zarr"
    dims = DIMS

    def prepare(self, layout: Layout) -> None:
        import zarr
        from zarr.codecs import BytesCodec
        n = len(layout.items)
        height, width = layout.image_size
        refuse_links(self.path)  # zarr writes its metadata by path: no link may lie in its way
        root = zarr.open_group(self.path, mode="a", zarr_format=3)
        if self.codec == "jpeg":
            serializer, compressors = JpegCodec(quality=self.quality, optimize=self.optimize), []
        else:
            serializer, compressors = BytesCodec(), _lossless(self.codec, self.level)[0]
        for name in layout.names:
            group = root.require_group(name)
            for level in layout.levels:
                if str(level) in group:
                    continue
                group.create_array(str(level), shape=(n, height, width, 3), dtype="uint8",
                                   shards=(self.shard_rows, height, width, 3), chunks=(1, height, width, 3),
                                   serializer=serializer, compressors=compressors, fill_value=0,
                                   dimension_names=("image", "y", "x", "channel"))
        _write_items(root, layout)
        root.attrs.update({"complete": False})

    def _chunk(self, block, level_index: int, row: int) -> bytes:
        if self.codec == "jpeg":
            return jpeg_bytes(block, level_index, row, self.quality, self.optimize)
        codec = _lossless(self.codec, self.level)[1]
        image = np.ascontiguousarray(block.data[level_index, row])
        return image.tobytes() if codec is None else bytes(codec.encode(image))

    @property
    def root(self) -> str:
        """The folder its output names are relative to: the store."""
        return self.path

    def write(self, block) -> dict[str, str]:
        """One shard file per severity, written whole and atomically (zarr's own write path costs
        several times more per image); rows of failed images stay absent (zeros)."""
        key = block.key
        if key.start % self.shard_rows or key.stop - key.start > self.shard_rows:
            raise ValueError(f"rows {key.start}:{key.stop} are not one shard of {self.shard_rows}")
        digests = {}
        for level_index, level in enumerate(block.levels):
            inner: list[bytes | None] = [None] * self.shard_rows
            for row, good in enumerate(block.ok):
                if good:
                    inner[row] = self._chunk(block, level_index, row)
            data = shard_file(inner)
            relative = f"{key.name}/{level}/c/{key.start // self.shard_rows}/0/0/0"
            write_bytes(self.path, relative, data)
            digests[relative] = sha256(data)
        return digests

    def finalise(self, layout: Layout, failures, complete: bool = True) -> list[str]:
        return finalise_store(self.path, layout, failures, complete, {"levels": list(layout.levels)},
                              {"codec": self.codec})


def finalise_store(path: Path, layout: Layout, failures, complete: bool, contents: dict, coding: dict) -> list[str]:
    """Record the run in the store's root attributes (``contents`` names what its arrays hold,
    ``coding`` how they are stored; the keys' order is kept, so ``zarr.json`` keeps its bytes)
    and consolidate its metadata."""
    import zarr
    refuse_links(path)
    root = zarr.open_group(path, mode="r+", zarr_format=3)
    root.attrs.update({"complete": bool(complete), "task": layout.task, "variant": layout.variant, **contents,
                       "config": dict(layout.run_config), "seed": layout.seed, "version": layout.version,
                       "versions": dict(layout.versions), "classes": list(layout.classes), **coding,
                       "failed_images": [f["image_id"] for f in failures],
                       "failed_rows": sorted(f["row"] for f in failures)})
    with warnings.catch_warnings():  # zarr notes that consolidated metadata is not in the v3 spec yet
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(path)
    return [path]


def _write_items(root, layout: Layout) -> None:
    """The per-image arrays every store holds: labels, file names, wnids."""
    for key, values, dtype in (("labels", [i.label for i in layout.items], "int32"),
                               ("filenames", [i.name for i in layout.items], str),
                               ("wnids", [i.wnid for i in layout.items], str)):
        array = (np.asarray(values, dtype=dtype) if dtype is not str
                 else np.asarray(values, dtype=np.dtypes.StringDType()))
        if key not in root:
            root.create_array(key, shape=array.shape, dtype=array.dtype, chunks=(max(len(array), 1),),
                              dimension_names=("image",))
        root[key][...] = array


def sequence_dimension_names(frames: int) -> tuple[str, ...]:
    """A kind's array dimensions, named so xarray can open the store's root: kinds with another
    frame count (translate's 41 against 31) get their own frame dimension, ``frame41``."""
    return ("image", "frame" if frames == 31 else f"frame{frames}", "y", "x", "channel")


@dataclass(frozen=True)
class SequenceWriter:
    """ImageNet-P: one (N, T, H, W, 3) array per sequence kind, a lossless codec."""
    path: str
    shard_rows: int
    codec: str = "zstd"
    level: int = 1
    format = "zarr"
    dims = SEQUENCE_DIMS

    def prepare(self, layout: Layout) -> None:
        import zarr
        from zarr.codecs import BytesCodec
        if self.codec == "jpeg":
            raise ValueError("ImageNet-P stores its frames losslessly: outputs.zarr.codec must be one of "
                             f"{', '.join(c for c in CODECS if c != 'jpeg')}")
        n = len(layout.items)
        height, width = layout.image_size
        refuse_links(self.path)  # zarr writes its metadata by path: no link may lie in its way
        root = zarr.open_group(self.path, mode="a", zarr_format=3)
        for kind in layout.names:
            if kind in root:
                continue
            frames = layout.frame_counts[kind]
            root.create_array(kind, shape=(n, frames, height, width, 3), dtype="uint8",
                              shards=(self.shard_rows, frames, height, width, 3), chunks=(1, frames, height, width, 3),
                              serializer=BytesCodec(), compressors=_lossless(self.codec, self.level)[0], fill_value=0,
                              dimension_names=sequence_dimension_names(frames))
        _write_items(root, layout)
        root.attrs.update({"complete": False})

    @property
    def root(self) -> str:
        """The folder its output names are relative to: the store."""
        return self.path

    def write(self, block) -> dict[str, str]:
        key = block.key
        if key.start % self.shard_rows or key.stop - key.start > self.shard_rows:
            raise ValueError(f"rows {key.start}:{key.stop} are not one shard of {self.shard_rows}")
        codec = _lossless(self.codec, self.level)[1]
        inner: list[bytes | None] = [None] * self.shard_rows
        for row, good in enumerate(block.ok):
            if good:
                frames = np.ascontiguousarray(fixed_frames(block, row))
                inner[row] = frames.tobytes() if codec is None else bytes(codec.encode(frames))
        data = shard_file(inner)
        relative = f"{key.name}/c/{key.start // self.shard_rows}/0/0/0/0"
        write_bytes(self.path, relative, data)
        return {relative: sha256(data)}

    def finalise(self, layout: Layout, failures, complete: bool = True) -> list[str]:
        return finalise_store(self.path, layout, failures, complete, {"sequences": list(layout.names)},
                              {"codec": self.codec, "fixed_shape_rule": FIXED_SHAPE_RULE})


def recognise(path: Path) -> bool:
    return (path / "zarr.json").is_file() or len(list(path.glob("*.zarr"))) == 1


class Reader(BaseReader):
    """Our store: images read a chunk at a time (JPEG bytes decoded by PIL, or raw pixels);
    rows of failed source images left out; an incomplete store refused unless allowed."""
    kind = "zarr"

    def __init__(self, path: Path, classes, allow_partial: bool = False):
        self.path, self.group = open_store(path, allow_partial)
        self.task, names = image_benchmark(lambda name: name in self.group)
        self._cells = [(c, int(s)) for c in names for s in sorted(self.group[c].array_keys()) if s in LEVEL_NAMES]
        check_arrays(self.path, self.group, [f"{c}/{s}" for c, s in self._cells], frames=False)
        self.labels = np.asarray(self.group["labels"][...], np.int64)
        failed = set(self.group.attrs.get("failed_rows", []))
        self.rows = np.asarray([i for i in range(len(self.labels)) if i not in failed], np.int64)
        stored = self.group.attrs.get("classes")
        self.classes = classes if classes is not None else (list(stored) if stored else None)

    def cells(self):
        return list(self._cells)

    def count(self, cell):
        return len(self.rows)

    def slices(self, cell, batch_size):
        return [(start, min(start + batch_size, len(self.rows))) for start in range(0, len(self.rows), batch_size)]

    def read(self, cell, start, stop):
        array = self.group[f"{cell[0]}/{cell[1]}"]
        rows = self.rows[start:stop]
        try:
            if len(rows) and rows[-1] - rows[0] == len(rows) - 1:  # contiguous: one read
                images = array[int(rows[0]):int(rows[-1]) + 1]
            else:
                images = (np.stack([array[int(r)] for r in rows]) if len(rows)
                          else np.zeros((0,) + array.shape[1:], np.uint8))
        except Exception as exc:  # noqa: BLE001 - a damaged chunk is the data's fault: one line, not a traceback
            raise DataError(f"{self.path}/{cell[0]}/{cell[1]}: rows {start}:{stop} cannot be read "
                            f"({type(exc).__name__}: {str(exc)[:200]})") from None
        return images, self.labels[rows]


MAX_ROWS = 10_000_000  # images (or videos) a store may declare: ImageNet's whole training set is 1.28 M
MAX_SIDE = 4096  # pixels a side
MAX_FRAMES = 1024


def check_store(path: Path) -> None:
    """Before zarr reads anything: every entry of the store is a regular file or a folder (a
    FIFO would block a read forever; a link could read anything) and its metadata are small."""
    import stat
    for parent, folders, files in os.walk(path, followlinks=False):
        for name in folders + files:
            where = os.path.join(parent, name)
            mode = os.lstat(where).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise DataError(f"{where}: not a regular file or folder (a link, FIFO or device) inside the store")
            if name == "zarr.json" and os.lstat(where).st_size > 64 << 20:
                raise DataError(f"{where}: metadata larger than 64 MiB")


def check_arrays(path: Path, group, names: list[str], frames: bool) -> int:
    """The declared shapes are sane and agree, before anything is allocated: labels (N,), and
    every cell (N, H, W, 3) uint8 (ImageNet-P: (N, T, H, W, 3)) read one row per chunk. Returns N."""
    labels = group["labels"]
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or not 0 < labels.shape[0] <= MAX_ROWS:
        raise DataError(f"{path}: labels of shape {labels.shape} and type {labels.dtype}; expected one integer per "
                        f"image, at most {MAX_ROWS}")
    count = labels.shape[0]
    for name in names:
        array = group[name]
        shape, chunks = tuple(array.shape), tuple(array.chunks)
        dims = 5 if frames else 4
        if (len(shape) != dims or array.dtype != np.uint8 or shape[0] != count or shape[-1] != 3
                or not all(0 < side <= MAX_SIDE for side in shape[-3:-1])
                or (frames and not 0 < shape[1] <= MAX_FRAMES) or chunks[0] != 1 or chunks[1:] != shape[1:]):
            raise DataError(f"{path}/{name}: an array of shape {shape}, chunks {chunks}, type {array.dtype}; expected "
                            f"{count} rows of uint8 {'frames' if frames else 'images'} (at most {MAX_SIDE} pixels a "
                            "side), one row per chunk, as `generate` writes them")
    return count


def open_store(path: Path, allow_partial: bool):
    """(store path, group) of the store at ``path`` or the one ``*.zarr`` inside it; an
    incomplete store refused unless allowed."""
    import zarr
    path = Path(path)
    if not (path / "zarr.json").is_file():
        path = next(path.glob("*.zarr"))
    check_store(path)
    group = zarr.open_group(path, mode="r")
    if not group.attrs.get("complete", False) and not allow_partial:
        raise DataError(f"{path}: the store is incomplete (its run did not finish); re-run the same "
                        "generate command to finish it, or score what is there with --allow-partial")
    return path, group


def holds_task(path: Path) -> str | None:
    """The task a store at ``path`` was written by (attribute ``task``), if it is one."""
    import json
    for meta in [path / "zarr.json", *path.glob("*.zarr/zarr.json")]:
        try:
            return json.loads(meta.read_text()).get("attributes", {}).get("task", "imagenet-c")
        except (OSError, ValueError):
            continue
    return None


class SequenceReader(BaseSequenceReader):
    """Our ImageNet-P store: one (N, T, H, W, 3) array per kind; a video is one chunk."""
    kind = "zarr"

    def __init__(self, path: Path, classes, allow_partial: bool = False):
        from perturbations import sequence_names
        super().__init__()
        self.path, self.group = open_store(path, allow_partial)
        self._kinds = [k for k in sequence_names("all") if k in self.group]
        check_arrays(self.path, self.group, self._kinds, frames=True)
        self.labels = np.asarray(self.group["labels"][...], np.int64)
        failed = set(self.group.attrs.get("failed_rows", []))
        self.rows = tuple(i for i in range(len(self.labels)) if i not in failed)
        stored = self.group.attrs.get("classes")
        self.classes = classes if classes is not None else (list(stored) if stored else None)
        self.variant = self.group.attrs.get("variant")

    def kinds(self):
        return list(self._kinds)

    def videos(self, kind):
        return Videos(tuple(f"{self.path.name}:{kind}[{r}]" for r in self.rows),
                      tuple(int(self.labels[r]) for r in self.rows))

    def load(self, kind, index):
        try:
            return np.asarray(self.group[kind][self.rows[index]])
        except Exception as exc:  # noqa: BLE001 - a damaged chunk: this video's failure
            raise DataError(f"{self.path}/{kind}[{self.rows[index]}] cannot be read "
                            f"({type(exc).__name__}: {str(exc)[:200]})") from None


__all__ = ["Writer", "SequenceWriter", "Reader", "SequenceReader", "recognise", "holds_task", "CODECS", "JPEG_CODEC",
           "shard_file"]


def from_arrays(path: str, items, classes, cells: dict, shard_rows: int = 64, codec: str = "jpeg",
                level: int = 1) -> str:
    """A complete store holding ``cells[(corruption, severity)]`` (N x H x W x 3 uint8 arrays,
    rows in ``items``' order), written through the same writer as a run (benchmarks, tests)."""
    from ..task import Block, Key
    first = next(iter(cells.values()))
    names = tuple(dict.fromkeys(name for name, _ in cells))
    levels = tuple(sorted({lvl for _, lvl in cells}))
    layout = Layout("imagenet-c", "custom", names, levels, tuple(first.shape[1:3]), tuple(items), tuple(classes),
                    run_config={"seed": None, "source": "arrays"}, version="arrays")
    writer = Writer(path, shard_rows, codec, level)
    writer.prepare(layout)
    for name in names:
        for start in range(0, len(items), shard_rows):
            stop = min(start + shard_rows, len(items))
            data = np.stack([cells[(name, lvl)][start:stop] for lvl in levels])
            writer.write(Block(Key(name, start // shard_rows, start, stop), DIMS, levels, data,
                               tuple(items[start:stop]), np.ones(stop - start, bool)))
    writer.finalise(layout, [])
    return path
