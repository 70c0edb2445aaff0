"""The WebDataset form of a release (``publish --format webdataset``): the run's outputs in tar
shards a loader can stream, one or more per cell (corruption and severity; for ImageNet-P
perturbation and difficulty) so that a cell streams alone.

``DIST/webdataset/<name>-<level>-NNNNNN.tar``: samples sorted by key, each with its bytes, its
``.cls`` (the class index as decimal text) and its ``.json`` (the parquet form's column names
and the run's: ``label``, ``corruption``, ``level``, ``source_file``, ``wnid`` where the layout
has class folders, ``variant``, ``task``, ``generator_version``, ``seed``):
- JPEG trees (ImageNet-C, its variants, C-bar): ``<wnid>_<stem>.jpg``, the tree's file byte for byte;
- ImageNet-P's MP4 tree: ``<wnid>_<stem>.mp4``, the tree's video byte for byte, the json with
  ``kind``, ``perturbation``, ``difficulty`` and ``frames`` in place of ``corruption`` / ``level``;
- CIFAR arrays: ``<index>.png``, each row as a lossless PNG (``cifar_npy.png_bytes``: stored
  deflate, so its bytes depend on the pixels alone), ``<index>`` its place in the test set;
- CIFAR-P arrays: ``<index>.npy``, each video's frames as a .npy file (``cifar_npy.frames_npy``).
A shard closes before it would pass ``shard_bytes``. ``DIST/webdataset/index.json`` is a ``wids``
shard index (each shard's url, sample count, size and sha256) and names each cell's shards in
brace notation. The shards are written by the release's own tar writer, so they are reproducible
as the tarballs are.
"""
from __future__ import annotations

import json
from pathlib import Path

from .plan import Member, check_member_names, class_names, label_of, member_size, release_samples

FOLDER = "webdataset"
INDEX = f"{FOLDER}/index.json"
DEFAULT_SHARD_BYTES = 1 << 30


def sample_fields(sample, label: int, run: dict, config) -> dict:
    """A sample's ``.json``: the parquet form's columns (``image`` / ``video`` aside), its class
    folder where it has one, and which run made it."""
    if sample.kind is not None:
        fields = {"kind": sample.kind, "perturbation": sample.name, "difficulty": sample.level, "frames": sample.frames}
    else:
        fields = {"corruption": sample.name, "level": sample.level}
    fields.update(label=label, source_file=sample.source_file, variant=config.variant, task=config.task,
                  generator_version=run["version"], seed=config.seed)
    if sample.wnid is not None:
        fields["wnid"] = sample.wnid
    return fields


def plan_shards(out: Path, run: dict, config, records: dict, shard_bytes: int = DEFAULT_SHARD_BYTES
                ) -> dict[str, list[Member]]:
    """Shard name -> its members, for the run in OUT (``records``: its manifest)."""
    samples = release_samples(out, config, records, "webdataset")
    index = {name: i for i, name in enumerate(class_names(config, samples))}
    cells: dict[tuple[str, int], list] = {}
    for sample in samples:
        cells.setdefault((sample.name, sample.level), []).append(sample)
    shards: dict[str, list[Member]] = {}
    for (name, level), group in sorted(cells.items()):
        number, size, members = 0, 0, []
        for sample in sorted(group, key=lambda s: s.key):
            label = label_of(sample, index)
            extra = json.dumps(sample_fields(sample, label, run, config), sort_keys=True, separators=(",", ":"))
            content = Member(f"{sample.key}.{sample.extension}", sample.path, sample.digest, row=sample.row,
                             size=sample.size)
            parts = [Member(f"{sample.key}.cls", None, None, str(label).encode()), content,
                     Member(f"{sample.key}.json", None, None, extra.encode())]
            grows = sum(512 + _padded(member_size(out, m)) for m in parts)
            if members and size + grows > shard_bytes:
                shards[shard_name(name, level, number)] = members
                number, size, members = number + 1, 0, []
            members += parts
            size += grows
        shards[shard_name(name, level, number)] = members
    for members in shards.values():  # names repeat across cells, never within a shard
        check_member_names(members, out)
    return shards


def shard_name(name: str, level: int, index: int) -> str:
    return f"{FOLDER}/{name}-{level}-{index:06d}.tar"


def index(shards: dict[str, list[Member]], written: list[tuple[str, str, int]], title: str) -> bytes:
    """``index.json``: a ``wids`` shard index (urls relative to it) and each cell's shards in
    brace notation, as ``webdataset.WebDataset`` takes them."""
    sizes = {name: (digest, size) for name, digest, size in written}
    shardlist = [{"url": name[len(FOLDER) + 1:], "nsamples": len(members) // 3, "filesize": sizes[name][1],
                  "sha256": sizes[name][0]} for name, members in sorted(shards.items())]
    cells: dict[str, list[str]] = {}
    for name in sorted(shards):
        corruption, level, _ = name[len(FOLDER) + 1:-len(".tar")].rsplit("-", 2)
        cells.setdefault(f"{corruption}/{level}", []).append(name)
    braces = {cell: f"{corruption_level(names[0])}-{{000000..{len(names) - 1:06d}}}.tar"
              for cell, names in cells.items()}
    document = {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": title, "shardlist": shardlist,
                "cells": braces}
    return json.dumps(document, indent=1, sort_keys=True).encode()


def corruption_level(shard: str) -> str:
    return shard[len(FOLDER) + 1:-len(".tar")].rsplit("-", 1)[0]


def cell_counts(shards: dict[str, list[Member]]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for name, members in shards.items():
        corruption, level = corruption_level(name).rsplit("-", 1)
        counts[(corruption, level)] = counts.get((corruption, level), 0) + len(members) // 3
    return counts


def _padded(size: int) -> int:
    return size + (-size % 512)
