"""What every format's reader offers the scorer, and the error it raises."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from corruptions import SEVERITIES

LEVEL_NAMES = tuple(map(str, SEVERITIES))  # severity folders and array names: exactly these


FIXED_SHAPE_RULE = ("frames whose size differs from the variant's (imagenet64 / tiny motion_blur: shorter side 64, "
                    "as the originals) are centre-cropped to it, offsets int(round((side - size) / 2))")


def jpeg_bytes(block, level_index: int, row: int, quality: int, optimize: bool) -> bytes:
    """The JPEG bytes of one image of an image block, encoded once however many formats store
    them (kept in the block's ``encoded`` slot)."""
    from .zarr_codecs import encode_jpeg
    key = (level_index, row, quality, optimize)
    if key not in block.encoded:
        block.encoded[key] = encode_jpeg(block.data[level_index, row], quality, optimize)
    return block.encoded[key]


def fixed_frames(block, row: int) -> np.ndarray:
    """Row ``row``'s frames of a sequence block at the variant's size, for fixed-shape formats:
    the centre crop where they differ (``FIXED_SHAPE_RULE``; kept in the block's ``cropped``)."""
    frames = block.frames[row]
    height, width = block.size
    if frames.shape[1:3] == (height, width):
        return frames
    if row not in block.cropped:
        top = int(round((frames.shape[1] - height) / 2.0))
        left = int(round((frames.shape[2] - width) / 2.0))
        if top < 0 or left < 0:
            raise ValueError(f"frames of {frames.shape[1:3]} are smaller than the variant's {block.size}")
        block.cropped[row] = np.ascontiguousarray(frames[:, top:top + height, left:left + width])
    return block.cropped[row]


@dataclass(frozen=True)
class Layout:
    """What a writer lays its outputs out by: a template (as xarray-beam's), not the engine's
    plan. The engine makes it from a run (``engine.Plan.layout``); a store written from arrays
    makes it directly (``zarr_store.from_arrays``)."""
    task: str  # the task's name
    variant: str
    names: tuple[str, ...]  # corruptions or sequence kinds
    levels: tuple[int, ...]  # severities (ImageNet-C), (1,) for sequences
    image_size: tuple[int, int]  # (height, width) of every stored image or frame
    items: tuple  # the source items, in row order (``readers.Item``)
    classes: tuple[str, ...]
    frame_counts: Mapping[str, int] = field(default_factory=dict)  # per sequence kind
    run_config: Mapping[str, Any] = field(default_factory=dict)  # the run config, as JSON, for stores' attributes
    seed: int | None = None
    version: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)


def image_registries() -> tuple:
    """The kernel registries of the image benchmarks (ImageNet-C's, C-bar's), each naming its
    task (``Registry.task``): a reader tells the benchmark it holds by its corruptions' names."""
    from corruptions import CORRUPTIONS
    from corruptions.bar import BAR
    return CORRUPTIONS, BAR


def image_benchmark(present) -> tuple[str, list[str]]:
    """(task, names) of the image benchmark whose corruptions ``present(name)`` finds (in its
    registry's order); ImageNet-C with no names where none is found."""
    registries = image_registries()
    for registry in registries:
        names = [name for name in registry.names("all") if present(name)]
        if names:
            return registry.task, names
    return registries[0].task, []


@dataclass(frozen=True)
class ReleaseSample:
    """One sample of a per-sample release form (WebDataset, parquet), as a format's
    ``release_samples`` lists it: what it is and where its bytes are under OUT."""
    name: str  # corruption or perturbation
    level: int  # severity, or difficulty for a sequence
    key: str  # unique within its cell and sorting it; no dots (WebDataset splits a name at the first)
    extension: str  # what the bytes are: jpg, mp4, png (an image row), npy (a CIFAR-P video row)
    path: str  # the file under OUT holding them
    digest: str | None  # the manifest's sha256 of that file (None: none recorded)
    source_file: str  # the source image it was made from
    wnid: str | None = None  # its class folder, where the layout has them
    label: int | None = None  # its class index, where the layout stores it (arrays)
    row: int | None = None  # an array file's row, made into the sample as it is written (``cifar_npy.ArrayRows``)
    size: int | None = None  # its size where it is made on the way (an array row's)
    kind: str | None = None  # a sequence's kind (``gaussian_noise_2``)
    frames: int | None = None  # a sequence's frame count


def manifest_files(records: dict, names, key: str) -> list[tuple[str, str | None, str | None]]:
    """(path under OUT, its manifest digest, kernel name) of every file a format wrote under
    its outputs ``key`` for the kernels ``names``, from the manifest ``records``."""
    names = set(names)
    return [(path, digest, record["name"]) for record in records.values() if record["name"] in names
            for path, digest in record["outputs"][key].items()]


def sample_key(wnid: str, file_name: str) -> str:
    """A sample's key in a class-folder layout: ``<wnid>_<file stem>``, dots replaced
    (WebDataset splits a member name at its first dot)."""
    stem = file_name.rsplit(".", 1)[0] if "." in file_name else file_name
    return f"{wnid}_{stem}".replace(".", "_")


class DataError(ValueError):
    """Data that cannot be read as any known layout, or that is incomplete."""


@dataclass(frozen=True)
class Files:
    """A list of image files with their labels (a cell of a JPEG tree, or a clean folder)."""
    paths: tuple[str, ...]
    labels: tuple[int, ...]


class Reader:
    """Common interface: ``kind``, ``cells()`` [(name, level)], ``classes``, and per cell either
    ``files(cell)`` (image files to decode) or ``slices(cell, batch)`` and ``read(cell, start,
    stop)`` (stored arrays). Either way the scorer reads them in worker processes."""
    task = "imagenet-c"
    kind = "?"
    classes: list[str] | None = None
    family: str | None = None  # the input convention its arrays imply (CIFAR's), if any
    class_folders = False  # classes are folder names (wnids when a 1000-class model reads them)
    label_counts: tuple[int, ...] | None = None  # the class counts its labels can index, if fixed

    def cells(self) -> list[tuple[str, int]]:
        raise NotImplementedError

    def files(self, cell) -> Files | None:
        return None

    def slices(self, cell, batch_size: int) -> list[tuple[int, int]]:
        raise NotImplementedError

    def read(self, cell, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Images [start, stop) of ``cell`` (uint8 N x H x W x 3) and their int64 labels."""
        raise NotImplementedError

    def count(self, cell) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class Videos:
    """The sequences of one ImageNet-P kind: a name each (a file, or ``store:kind[row]``) and
    its label."""
    names: tuple[str, ...]
    labels: tuple[int, ...]


class SequenceReader:
    """What an ImageNet-P reader offers the scorer: ``kinds()`` present (sequence kind names),
    ``videos(kind)``, ``load(kind, index)`` -> T x H x W x 3 uint8 (raises ``DataError`` for a
    video that cannot be read), and ``problems``: what listing found wrong (empty folders,
    folders that are no sequence kind), left out and reported. ``in_workers``: loading is
    decoding (MP4), worth worker processes; stored arrays are read where they are needed.
    ``by_source``: video ``index`` of every kind comes from one source item, so the loader
    hands a worker all of an index's videos together (produced on the fly)."""
    task = "imagenet-p"
    kind = "?"
    classes: list[str] | None = None
    family: str | None = None  # as Reader's
    class_folders = False
    label_counts: tuple[int, ...] | None = None
    in_workers = False
    by_source = False

    def __init__(self):
        self.problems: list[str] = []

    def kinds(self) -> list[str]:
        raise NotImplementedError

    def videos(self, kind: str) -> Videos:
        raise NotImplementedError

    def count(self, kind: str) -> int:
        return len(self.videos(kind).names)

    def load(self, kind: str, index: int) -> np.ndarray:
        raise NotImplementedError

    def prepare(self) -> None:
        """Made once before loading starts (before worker processes fork, so they share it)."""
