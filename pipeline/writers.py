"""Writers for the three output layouts. Each writes in phases: ``prepare`` (client, once),
``write`` (a worker, one unit's block of one severity), ``finalise`` (client, at the end).

Units write disjoint regions (whole Zarr chunks, distinct files, disjoint .npy rows), so
workers never contend; every file appears under its final name only when complete.
"""
from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .readers import Item


def atomic_write_bytes(path: Path, data: bytes, make_parent: bool = True) -> None:
    if make_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")
    with open(part, "wb") as handle:
        handle.write(data)
    os.replace(part, path)


def jpeg_name(name: str) -> str:
    """The original file name; sources that are not JPEG files get a .JPEG suffix instead."""
    stem, suffix = os.path.splitext(name)
    return name if suffix.lower() in (".jpeg", ".jpg") else f"{stem}.JPEG"


@dataclass(frozen=True)
class JpegTree:
    """``OUT/<corruption>/<severity>/<wnid>/<file name>``: the official ImageNet-C layout."""
    root: str
    quality: int = 85
    optimize: bool = True

    def prepare(self, plan) -> None:
        Path(self.root).mkdir(parents=True, exist_ok=True)

    def write(self, corruption: str, severity: int, position: int, start: int, items: list[Item],
              block: np.ndarray, ok: np.ndarray, total: int) -> str:
        digest = hashlib.sha256()
        folder = Path(self.root) / corruption / str(severity)
        for wnid in {item.wnid for item, good in zip(items, ok) if good}:
            (folder / wnid).mkdir(parents=True, exist_ok=True)
        for item, image, good in zip(items, block, ok):
            if not good:
                continue
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="JPEG", quality=self.quality, optimize=self.optimize)
            name = jpeg_name(item.name)
            atomic_write_bytes(folder / item.wnid / name, buffer.getvalue(), make_parent=False)
            digest.update(f"{item.wnid}/{name}\n".encode())
            digest.update(buffer.getvalue())
        return digest.hexdigest()

    def finalise(self, plan, failures) -> list[str]:
        return [str(Path(self.root))]


def _codecs(compressor: str, level: int):
    """(zarr codecs for the array metadata, numcodecs codec that makes the same chunk bytes)."""
    import numcodecs
    from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec
    if compressor == "zstd":
        return [ZstdCodec(level=level)], numcodecs.Zstd(level=level)
    if compressor == "blosc":
        return ([BloscCodec(cname="zstd", clevel=min(level, 9), shuffle="bitshuffle", typesize=1)],
                numcodecs.Blosc(cname="zstd", clevel=min(level, 9), shuffle=numcodecs.Blosc.BITSHUFFLE))
    if compressor == "gzip":
        return [GzipCodec(level=min(level, 9))], numcodecs.GZip(level=min(level, 9))
    return None, None


@dataclass(frozen=True)
class ZarrStore:
    """``OUT/<name>.zarr``: group per corruption, uint8 array (N, H, W, 3) per severity,
    chunked by shard so each unit writes whole chunks; ``labels``, ``filenames``, ``wnids``."""
    path: str
    chunk_rows: int  # images per chunk: the run's shard size
    compressor: str = "zstd"
    level: int = 1

    def prepare(self, plan) -> None:
        import zarr
        n = len(plan.items)
        height, width = plan.image_size
        root = zarr.open_group(self.path, mode="a", zarr_format=3)
        for corruption in plan.corruptions:
            group = root.require_group(corruption)
            for severity in plan.severities:
                if str(severity) in group:
                    continue
                group.create_array(str(severity), shape=(n, height, width, 3), dtype="uint8",
                                   chunks=(self.chunk_rows, height, width, 3),
                                   compressors=_codecs(self.compressor, self.level)[0], fill_value=0,
                                   dimension_names=("image", "y", "x", "channel"))
        for key, values, dtype in (("labels", [i.label for i in plan.items], "int32"),
                                   ("filenames", [i.name for i in plan.items], str),
                                   ("wnids", [i.wnid for i in plan.items], str)):
            array = np.asarray(values, dtype=dtype) if dtype != str else np.asarray(values, dtype=np.dtypes.StringDType())
            if key not in root:
                root.create_array(key, shape=array.shape, dtype=array.dtype, chunks=(max(len(array), 1),),
                                  dimension_names=("image",))
            root[key][...] = array
        root.attrs.update({"complete": False})

    def write(self, corruption: str, severity: int, position: int, start: int, items, block: np.ndarray, ok,
              total: int) -> str:
        # A unit fills exactly one chunk, so it encodes and writes the chunk file itself (as
        # the Zarr v3 spec lays it out: bytes codec, then the compressor; edge chunks padded
        # to full size), atomically; zarr's own write path costs several times more per chunk.
        if start % self.chunk_rows or len(block) > self.chunk_rows:
            raise ValueError(f"rows {start}:{start + len(block)} are not one chunk of {self.chunk_rows}")
        chunk = np.zeros((self.chunk_rows,) + block.shape[1:], np.uint8)
        chunk[:len(block)] = block
        codec = _codecs(self.compressor, self.level)[1]
        data = chunk.tobytes() if codec is None else bytes(codec.encode(chunk))
        key = Path(self.path, corruption, str(severity), "c", str(start // self.chunk_rows), "0", "0", "0")
        atomic_write_bytes(key, data)
        return hashlib.sha256(np.ascontiguousarray(block).data).hexdigest()

    def finalise(self, plan, failures) -> list[str]:
        import zarr
        root = zarr.open_group(self.path, mode="r+", zarr_format=3)
        root.attrs.update({"complete": True, "config": plan.config, "seed": plan.config["seed"],
                           "version": plan.version, "variant": plan.config["variant"],
                           "classes": list(plan.classes), "failed_images": [f["image_id"] for f in failures]})
        return [self.path]


@dataclass(frozen=True)
class CifarNpy:
    """The official CIFAR-10-C layout: ``<corruption>.npy`` of shape (K N, 32, 32, 3) uint8,
    severity-major (all images at the first severity, then the next), and ``labels.npy``."""
    root: str

    def _path(self, corruption: str, part: bool) -> Path:
        return Path(self.root) / (f".{corruption}.npy.part" if part else f"{corruption}.npy")

    def prepare(self, plan) -> None:
        Path(self.root).mkdir(parents=True, exist_ok=True)
        n, rows = len(plan.items), len(plan.items) * len(plan.severities)
        height, width = plan.image_size
        for corruption in plan.corruptions:
            if not self._path(corruption, False).exists() and not self._path(corruption, True).exists():
                np.lib.format.open_memmap(self._path(corruption, True), mode="w+", dtype=np.uint8,
                                          shape=(rows, height, width, 3)).flush()
        labels = np.tile(np.asarray([i.label for i in plan.items], np.int64), len(plan.severities))
        buffer = io.BytesIO()
        np.save(buffer, labels)
        atomic_write_bytes(Path(self.root) / "labels.npy", buffer.getvalue())

    def write(self, corruption: str, severity: int, position: int, start: int, items, block: np.ndarray, ok,
              total: int) -> str:
        path = self._path(corruption, True)
        if not path.exists():  # finalised already: a retried unit of a finished corruption
            path = self._path(corruption, False)
        array = np.load(path, mmap_mode="r+")
        row = total * position + start  # position: the severity's place in the run's severity list
        array[row:row + len(block)] = block
        array.flush()
        return hashlib.sha256(np.ascontiguousarray(block).data).hexdigest()

    def finalise(self, plan, failures) -> list[str]:
        done = []
        for corruption in plan.corruptions:
            part, final = self._path(corruption, True), self._path(corruption, False)
            if part.exists():
                os.replace(part, final)
            done.append(str(final))
        return done
