"""Output formats. Each is one module holding its writer and its reader, so a layout is
written and read by the same code: ``jpeg_tree`` (the official ImageNet-C tree), ``zarr_store``
(sharded Zarr v3, one image per chunk), ``cifar_npy`` (the official CIFAR-10-C / -P arrays) and
``mp4_tree`` (the official ImageNet-P videos).

Each module offers ``make_writer(config, out, dims)``. Writers share one protocol, in phases:
``prepare(layout)`` once on the client (``common.Layout``: a template of names, levels, sizes,
items and attributes, not the engine's plan), ``write(block)`` on a worker for each key (the
region follows from the key alone; returns the sha256 of every file or chunk it wrote),
``finalise(layout, failures)`` once at the end. Each format declares the block dimensions it
stores.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from . import cifar_npy, jpeg_tree, mp4_tree, zarr_store
from .common import DataError, Files, Layout, Reader, SequenceReader, Videos

# a format is its module: NAME (its outputs.formats key), make_writer, STORES (the block dimensions
# it stores), SETTINGS (its run config section, if it has one), READERS (the sources it needs, if
# limited), its reader, recognise, item_file_name (if it names a file per source image), and
# release_files with RELEASE_* (if an official release packs it), release_samples (if the per-sample
# release forms can pack it); registering one is its module in
# the tuple here (and its branch in open_data if scored)
FORMATS = {module.NAME: module for module in (jpeg_tree, zarr_store, cifar_npy, mp4_tree)}
SETTINGS = {name: module.SETTINGS for name, module in FORMATS.items() if hasattr(module, "SETTINGS")}


def release_format(formats):
    """The format whose files a run's official release packs (the lowest ``RELEASE_RANK`` among
    the run's formats that can be released), or None."""
    releasable = [FORMATS[name] for name in formats if hasattr(FORMATS[name], "release_files")]
    return min(releasable, key=lambda module: module.RELEASE_RANK) if releasable else None


def images_as_stored(formats) -> str:
    """What a model reads of an image benchmark as its release stores it: "raw" arrays where the
    release packs arrays (CIFAR), JPEG bytes otherwise."""
    release = release_format(formats)
    return "raw" if release is not None and release.RELEASE_ARRAYS else "jpeg"


def reader_mistake(formats, reader: str) -> str | None:
    """Why a source reader cannot feed these formats, or None."""
    for name in formats:
        allowed = getattr(FORMATS[name], "READERS", None)
        if allowed is not None and reader not in allowed:
            return f"{name} only with the {' / '.join(allowed)} readers"
    return None


def formats_for(dims: tuple[str, ...]) -> tuple[str, ...]:
    """The formats that store blocks of ``dims`` (a task's), in ``FORMATS`` order."""
    return tuple(name for name, module in FORMATS.items() if tuple(dims) in module.STORES)


__all__ = ["FORMATS", "SETTINGS", "formats_for", "release_format", "images_as_stored", "reader_mistake", "Writer",
           "Layout", "open_data", "DataError", "Files", "Reader", "SequenceReader", "Videos", "cifar_npy", "jpeg_tree",
           "mp4_tree", "zarr_store"]


class Writer(Protocol):
    format: str
    dims: tuple[str, ...]
    root: str  # the folder the names ``write`` returns are relative to (``name[region]``: a region of that file,
    # or of ``.name.part`` until ``finalise``)

    def prepare(self, layout: Layout) -> None: ...

    def write(self, block) -> dict[str, str]: ...

    def finalise(self, layout: Layout, failures: list[dict], complete: bool = True) -> list[str]: ...


def open_data(path: str | os.PathLike, classes=None, allow_partial: bool = False):
    """The reader of the layout found at ``path``. ImageNet-C: a JPEG tree, a Zarr store (or a
    folder holding one), a CIFAR-10-C folder. ImageNet-P: an MP4 tree (or one kind's folder),
    a Zarr store, a CIFAR-10-P folder. The reader's ``task`` says which benchmark it holds. A run's
    OUT holding a tree and a store is read as the store for ImageNet-C (the same pixels, faster)
    and as the MP4 tree for ImageNet-P (the official, lossy pixels); name the store's own folder
    (OUT/imagenet-p.zarr) to score its lossless frames."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"data {path} does not exist")
    if mp4_tree.recognise(path):  # before a store beside it: the MP4s are the official ImageNet-P pixels
        return mp4_tree.Reader(path, classes, allow_partial=allow_partial)
    if zarr_store.recognise(path):
        reader = zarr_store.SequenceReader if zarr_store.holds_task(path) == "imagenet-p" else zarr_store.Reader
        return reader(path, classes, allow_partial=allow_partial)
    if cifar_npy.recognise(path):
        reader = cifar_npy.SequenceReader if cifar_npy.holds_sequences(path) else cifar_npy.Reader
        return reader(path, classes, allow_partial=allow_partial)
    if jpeg_tree.recognise(path):
        return jpeg_tree.Reader(path, classes, allow_partial=allow_partial)
    raise DataError(f"{path}: neither ImageNet-C (a JPEG tree <corruption>/<severity>/<class>/<image>, a Zarr "
                    "store, a CIFAR-10-C folder of <corruption>.npy + labels.npy) nor ImageNet-P (an MP4 tree "
                    "<sequence>/<class>/<video>.mp4, a Zarr store, a CIFAR-10-P folder of <sequence>.npy + labels.npy)")
