"""What the engine runs: a task (what is generated), its keys (units of work) and blocks.

- A **task** (ImageNet-C here; ImageNet-P beside it) lists its keys, prepares each source
  item's input once per shard (its input stage), and produces a key's block.
- A **key** is immutable and names one unit of work: one kernel (a corruption) over one
  shard of source items, rows ``[start, stop)``; every output's region follows from it alone.
- A **block** is what a key produces, in memory, without touching disk: an array with named
  dimensions (ImageNet-C: severity, image, y, x, channel) and the coordinates of its first one.
  Writers turn blocks into files; the on-the-fly scorer feeds them to a model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from .readers import Item

IMAGE_DIMS = ("severity", "image", "y", "x", "channel")  # ImageNet-C's blocks
SEQUENCE_DIMS = ("image", "frame", "y", "x", "channel")  # ImageNet-P's blocks


@dataclass(frozen=True)
class Key:
    name: str  # the kernel: a corruption (ImageNet-C), a sequence kind (ImageNet-P)
    shard: int
    start: int  # rows [start, stop) of every output
    stop: int

    @property
    def id(self) -> str:
        return f"{self.name}/{self.shard:06d}"


@dataclass(frozen=True)
class Shard:
    """A shard's decoded, preprocessed inputs: made once, used by all of its keys."""
    items: tuple[Item, ...]
    images: np.ndarray  # (n, H, W, 3) uint8, zeros where loading failed
    ok: np.ndarray  # (n,) bool
    failures: tuple[dict, ...]
    sources: tuple[str, ...] = ()  # per item: readers.source_digest of the bytes read ("" where it failed)


@dataclass
class Block:
    key: Key
    dims: tuple[str, ...]
    levels: tuple[int, ...]  # coordinates of the first dimension (severities)
    data: np.ndarray
    items: tuple[Item, ...]
    ok: np.ndarray
    encoded: dict = field(default_factory=dict, repr=False)  # formats' cache (formats.common.jpeg_bytes)


class Task(Protocol):
    name: str
    dims: tuple[str, ...]
    names: tuple[str, ...]
    levels: tuple[int, ...]
    variant: str

    @property
    def image_size(self) -> tuple[int, int]: ...

    def keys(self, count: int, shard_size: int) -> list[Key]: ...

    def load_shard(self, items: Sequence[Item]) -> Shard: ...

    def produce(self, key: Key, shard: Shard) -> Block: ...

    def family(self, name: str) -> str: ...


@dataclass(frozen=True)
class TaskSpec:
    """What the run configs, the engine, publishing and the command line need to know of a
    benchmark, declared once in its task module (``pipeline/tasks.py`` holds them by name), so
    that none of them branches on a task's name."""
    name: str  # the run config's ``task``
    dims: tuple[str, ...]  # its blocks' dimensions
    default_formats: tuple[str, ...]  # (the formats it can be written as: those storing its dims)
    default_shard_size: int  # source images per key
    lossless_store: bool  # its Zarr store holds lossless arrays only (no JPEG codec)
    names_key: str  # the run config key naming its kernels (``--only`` sets it)
    severities: bool  # whether ``--severities`` applies
    noun: str  # what its outputs are called in messages
    scoring: str  # how a model is scored on it: "images" (error per cell, CE, mCE) or "sequences" (FR, T5D)
    title: str  # its name in reports (ImageNet-C)
    build: Callable[[Any], "Task"]  # the task a resolved run config (``runconfig.RunConfig``) asks for
    resolve: Callable[[Any], Any] = lambda config: config  # a run config with the settings only it resolves
    card: "CardText | None" = None  # what a release's dataset card says of it (None: not released)


@dataclass(frozen=True)
class CardText:
    """A benchmark's own words in a release's dataset card and Croissant metadata (Markdown)."""
    about: str  # completes "<title> is ...": the benchmark and its paper
    fidelity: str  # how the generated images relate to the original generator's
    differences: str  # bullet list: what differs from the official release
    citation: str  # BibTeX
    url: str  # the original generator's repository
    creators: tuple[str, ...] = ()  # the benchmark's authors (Croissant's creator)
    published: str = ""  # the benchmark's publication date (ISO; Croissant's datePublished)
    released: tuple[str, ...] = ()  # the variants a published release has; others are extensions (said so)


def shard_keys(names: Sequence[str], count: int, shard_size: int) -> list[Key]:
    """One key per (shard, name), shard-major, so a shard's input is needed by consecutive keys."""
    shards = range(-(-count // shard_size))
    return [Key(name, s, s * shard_size, min((s + 1) * shard_size, count)) for s in shards for name in names]

