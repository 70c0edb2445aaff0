"""The WebDataset form of a release (``publish --format webdataset``): the same JPEG bytes as
the tree, in tar shards a loader can stream, one or more per (corruption, severity) so that a
cell streams alone.

``DIST/webdataset/<corruption>-<severity>-NNNNNN.tar``: samples sorted by key
``<wnid>_<file stem>``, each ``<key>.jpg`` (the tree's file, byte for byte), ``<key>.cls`` (the
class index as decimal text) and ``<key>.json`` (``wnid``, ``label``, ``corruption``, ``level``,
``source_file``, ``variant``, ``task``, ``generator_version``, ``seed``); a shard closes before
it would pass ``shard_bytes``. ``DIST/webdataset/index.json`` is a ``wids`` shard index (each
shard's url, sample count, size and sha256) and names each cell's shards in brace notation.
The shards are written by the release's own tar writer, so they are reproducible as the
tarballs are. For runs that wrote the JPEG tree (ImageNet-C); CIFAR arrays and ImageNet-P
videos are not packed this way yet.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..readers import imagenet_wnids
from .plan import Member, PublishError, check_member_names, member_size, tree_images

FOLDER = "webdataset"
INDEX = f"{FOLDER}/index.json"
DEFAULT_SHARD_BYTES = 1 << 30


def sample_key(wnid: str, file_name: str) -> str:
    """A sample's key: WebDataset splits a member name at its first dot, so the stem's dots go."""
    stem = file_name.rsplit(".", 1)[0] if "." in file_name else file_name
    return f"{wnid}_{stem}".replace(".", "_")


def plan_shards(out: Path, run: dict, config, records: dict, shard_bytes: int = DEFAULT_SHARD_BYTES
                ) -> dict[str, list[Member]]:
    """Shard name -> its members, for the run in OUT (``records``: its manifest)."""
    cells: dict[tuple[str, int], list[tuple[str, str, str, str]]] = {}
    for path, digest, name, level, wnid, file_name in tree_images(out, config, records, "webdataset"):
        cells.setdefault((name, level), []).append((sample_key(wnid, file_name), wnid, file_name, path, digest))
    labels = _labels(config, {sample[1] for samples in cells.values() for sample in samples})
    shards: dict[str, list[Member]] = {}
    for (name, level), samples in sorted(cells.items()):
        index, size, members = 0, 0, []
        for key, wnid, file_name, path, digest in sorted(samples):
            extra = {"wnid": wnid, "label": labels[wnid], "corruption": name, "level": level,
                     "source_file": file_name, "variant": config.variant, "task": config.task,
                     "generator_version": run["version"], "seed": config.seed}
            sample = [Member(f"{key}.cls", None, None, str(labels[wnid]).encode()),
                      Member(f"{key}.jpg", path, digest),
                      Member(f"{key}.json", None, None, json.dumps(extra, sort_keys=True, separators=(",", ":")).encode())]
            grows = sum(512 + _padded(member_size(out, m)) for m in sample)
            if members and size + grows > shard_bytes:
                shards[shard_name(name, level, index)] = members
                index, size, members = index + 1, 0, []
            members += sample
            size += grows
        shards[shard_name(name, level, index)] = members
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


def _labels(config, wnids: set[str]) -> dict[str, int]:
    """Class indices: ImageNet's standard ones (the sorted 1000 wnids), or for Tiny ImageNet its
    own 200 (the sorted wnids present)."""
    if config.variant == "tiny":
        return {wnid: index for index, wnid in enumerate(sorted(wnids))}
    standard = {wnid: index for index, wnid in enumerate(imagenet_wnids())}
    unknown = sorted(wnids - set(standard))
    if unknown:
        raise PublishError(f"--format webdataset: {unknown[0]!r} is not an ImageNet wnid: no class index for .cls")
    return {wnid: standard[wnid] for wnid in wnids}


def _padded(size: int) -> int:
    return size + (-size % 512)
