"""The Hugging Face form of a release: parquet files a Hub dataset repository serves as it is.

``data/<config>/validation-NNNNN-of-NNNNN.parquet`` (one folder per cell, files of at most
``--shard-mb`` each, far under the Hub's 10,000 files per folder), rows sorted by sample key.
Image benchmarks (configs ``<corruption>_<level>``, e.g. ``fog_3``): columns ``image`` (the
``datasets`` ``Image`` feature: the tree's JPEG bytes exactly, or for CIFAR each array row as a
lossless PNG, with a path), ``label`` (a ``ClassLabel``), ``corruption``, ``level``,
``source_file``. ImageNet-P (configs the sequence kinds, e.g. ``gaussian_noise_2``): ``video``
(the tree's MP4 bytes; CIFAR-P: the video's frames as a .npy file), ``label``, ``kind``,
``perturbation``, ``difficulty``, ``frames``, ``source_file``. The features are stored in each
file's schema metadata, as ``datasets`` writes them. Where the source holds images of
RobustBench's 5,000-image ImageNet subset (``ROBUSTBENCH``), ``robustbench/<cell>/...`` holds
exactly those rows again, for the ``robustbench`` configs.

The release's README.md gains YAML front matter declaring one config per cell, one per
corruption (all its levels), ``all``, the subset's, and for ImageNet the terms as gating text.
No loading script (the Hub no longer runs them). The bytes are reproducible: uncompressed
columns (JPEG, PNG rows and H.264 are what they are), no timestamps.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..files import sha256, write_bytes
from ..tasks import task_spec
from .plan import TITLES, Member, PublishError, class_names, label_of, member_size, release_samples

FOLDER = "data"
SUBSET_FOLDER = "robustbench"
SPLIT = "validation"
GATING = ("The images are derived from the ImageNet validation set: by requesting access you agree to ImageNet's "
          "terms of access (https://image-net.org/download), for non-commercial research and educational use.")
# RobustBench's ImageNet evaluation subset (its `load_imagenet` / `load_imagenetc` read these
# 5,000 validation images), copied as it is into pipeline/data; checked by sha256 when read
ROBUSTBENCH = {"list": "robustbench_imagenet_5000.txt", "images": 5000,
               "repository": "https://github.com/RobustBench/robustbench",
               "path": "robustbench/helper_files/imagenet_test_image_ids.txt",
               "commit": "78fcc9e48a07a861268f295a777b975f25155964",  # read there; unchanged since 5be8f6a (2022)
               "sha256": "d4121626d07722a0126c35b1563042e46a546f1a05ce705f2cdc635896d58574", "licence": "MIT"}


@lru_cache(maxsize=1)
def robustbench_images() -> frozenset[str]:
    """RobustBench's 5,000 ``<wnid>/<file>`` names, checked against their recorded sha256."""
    from ..readers import DATA_DIR
    data = (DATA_DIR / ROBUSTBENCH["list"]).read_bytes()
    names = frozenset(data.decode().split())
    if sha256(data) != ROBUSTBENCH["sha256"] or len(names) != ROBUSTBENCH["images"]:
        raise PublishError(f"{DATA_DIR / ROBUSTBENCH['list']}: not RobustBench's list (sha256 or count differ); "
                           "reinstall the package")
    return names


@dataclass(frozen=True)
class Tables:
    """What the parquet form of a run holds: rows (samples) per config, the class names, whether
    they are sequences, and the RobustBench subset's rows per cell (empty where none)."""
    cells: dict
    classes: list
    sequences: bool
    title: str
    gated: bool
    subset: dict = field(default_factory=dict)


def cell_config(sample) -> str:
    """A sample's cell config: ``<corruption>_<level>``, or a sequence's kind."""
    return sample.kind if sample.kind is not None else f"{sample.name}_{sample.level}"


def plan_cells(out: Path, config, records: dict) -> Tables:
    samples = release_samples(out, config, records, "parquet")
    cells: dict[str, list] = {}
    for sample in samples:
        cells.setdefault(cell_config(sample), []).append(sample)
    cells = {cell: sorted(rows, key=lambda s: s.key) for cell, rows in sorted(cells.items())}
    sequences = task_spec(config.task).scoring == "sequences"
    subset = {}
    if config.task == "imagenet-c" and config.variant != "tiny":
        listed = robustbench_images()
        subset = {cell: kept for cell, rows in cells.items()
                  if (kept := [s for s in rows if f"{s.wnid}/{s.source_file}" in listed])}
    cifar = any(sample.label is not None for sample in samples)
    return Tables(cells, class_names(config, samples), sequences, TITLES.get(config.name, config.name), not cifar,
                  subset)


def features(sequences: bool, classes: list[str]) -> dict:
    """The ``datasets`` features of every file (stored in the parquet schema's metadata)."""
    label = {"_type": "ClassLabel", "names": list(classes)}
    text, integer = {"dtype": "string", "_type": "Value"}, {"dtype": "int32", "_type": "Value"}
    if sequences:
        return {"video": {"dtype": "binary", "_type": "Value"}, "label": label, "kind": text, "perturbation": text,
                "difficulty": integer, "frames": integer, "source_file": text}
    return {"image": {"_type": "Image"}, "label": label, "corruption": text, "level": integer, "source_file": text}


def expected_schema(sequences: bool, classes: list[str]):
    """The arrow schema of every file, the ``datasets`` features in its metadata."""
    import pyarrow as pa
    metadata = {"huggingface": json.dumps({"info": {"features": features(sequences, classes)}}, sort_keys=True)}
    if sequences:
        return pa.schema([("video", pa.binary()), ("label", pa.int64()), ("kind", pa.string()),
                          ("perturbation", pa.string()), ("difficulty", pa.int32()), ("frames", pa.int32()),
                          ("source_file", pa.string())], metadata=metadata)
    return pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("label", pa.int64()),
                      ("corruption", pa.string()), ("level", pa.int32()), ("source_file", pa.string())],
                     metadata=metadata)


def _content(out: Path, sample, rows, walk) -> bytes:
    """A sample's bytes: its file's (checked against the manifest) or its array row's PNG."""
    if sample.row is not None:
        return rows.sample(sample.path, sample.row)
    data = walk.read(sample.path, limit=1 << 30)
    if sample.digest is not None and sha256(data) != sample.digest:
        raise PublishError(f"{out / sample.path}: changed since the run wrote it (sha256 differs from the manifest); "
                           "re-run the same generate command")
    return data


def _table(out: Path, samples, tables: Tables, rows, walk):
    import pyarrow as pa
    index = {name: i for i, name in enumerate(tables.classes)}
    labels = [label_of(s, index) for s in samples]
    schema = expected_schema(tables.sequences, tables.classes)
    if tables.sequences:
        return pa.table({"video": [_content(out, s, rows, walk) for s in samples], "label": labels,
                         "kind": [s.kind for s in samples], "perturbation": [s.name for s in samples],
                         "difficulty": [s.level for s in samples], "frames": [s.frames for s in samples],
                         "source_file": [s.source_file for s in samples]}, schema=schema)
    images = pa.StructArray.from_arrays(
        [pa.array([_content(out, s, rows, walk) for s in samples], pa.binary()),
         pa.array([s.path if s.row is None else f"{s.name}/{s.level}/{s.key}.{s.extension}" for s in samples],
                  pa.string())], names=["bytes", "path"])
    return pa.table({"image": images, "label": labels, "corruption": [s.name for s in samples],
                     "level": [s.level for s in samples], "source_file": [s.source_file for s in samples]},
                    schema=schema)


def _parquet_bytes(table) -> bytes:
    import pyarrow.parquet as pq
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="NONE", use_dictionary=False, write_statistics=False,
                   row_group_size=max(1, table.num_rows))
    return buffer.getvalue()


def write_cells(out: Path, dist: Path, tables: Tables, shard_bytes: int) -> list[tuple[str, str, int]]:
    """Every cell's parquet files under DIST/data/<cell>/ (and the subset's under
    DIST/robustbench/<cell>/): (name, sha256, size) of each."""
    from ..files import FolderWalk
    from ..formats.cifar_npy import ArrayRows
    rows = ArrayRows(out)
    written = []
    with FolderWalk(out) as walk:  # the tree's folders opened once for their consecutive files
        for folder, cells in ((FOLDER, tables.cells), (SUBSET_FOLDER, tables.subset)):
            written += _write_cells(out, dist, folder, cells, tables, shard_bytes, rows, walk)
    return written


def _write_cells(out: Path, dist: Path, folder: str, cells: dict, tables: Tables, shard_bytes: int, rows,
                 walk) -> list[tuple[str, str, int]]:
    """The parquet files of ``cells`` under DIST/<folder>/<cell>/, at most ``shard_bytes`` each."""
    from ..files import make_folders
    written = []
    for cell, samples in cells.items():
        groups, size = [[]], 0
        for sample in samples:
            grows = member_size(out, Member(sample.path, sample.path, sample.digest, size=sample.size))
            if groups[-1] and size + grows > shard_bytes:
                groups.append([])
                size = 0
            groups[-1].append(sample)
            size += grows
        make_folders(dist, f"{folder}/{cell}")
        for number, group in enumerate(groups):
            name = f"{folder}/{cell}/{SPLIT}-{number:05d}-of-{len(groups):05d}.parquet"
            data = _parquet_bytes(_table(out, group, tables, rows, walk))
            write_bytes(dist, name, data)
            written.append((name, sha256(data), len(data)))
    return written


def front_matter(tables: Tables) -> str:
    """The README.md YAML header of a Hub dataset repository: its configs and gating text."""
    configs = [("all", f"{FOLDER}/*/*.parquet")]
    if not tables.sequences:
        names = sorted({cell.rsplit("_", 1)[0] for cell in tables.cells})
        configs += [(name, f"{FOLDER}/{name}_[0-9]/*.parquet") for name in names]
    configs += [(cell, f"{FOLDER}/{cell}/*.parquet") for cell in tables.cells]
    if tables.subset:
        configs += [(SUBSET_FOLDER, f"{SUBSET_FOLDER}/*/*.parquet")]
        configs += [(f"{SUBSET_FOLDER}_{cell}", f"{SUBSET_FOLDER}/{cell}/*.parquet") for cell in tables.subset]
    lines = ["---", "license: other", "task_categories:",
             "- video-classification" if tables.sequences else "- image-classification",
             f"pretty_name: {json.dumps(tables.title)}"]
    if tables.gated:
        lines.append(f"extra_gated_prompt: {json.dumps(GATING)}")
    lines.append("configs:")
    for config_name, pattern in configs:
        lines += [f"- config_name: {config_name}", "  data_files:", f"  - split: {SPLIT}", f"    path: \"{pattern}\""]
    return "\n".join(lines + ["---", ""]) + "\n"


def cell_counts(tables: Tables) -> dict[tuple[str, str], int]:
    """Samples per (corruption or perturbation, level) for the card."""
    counts: dict[tuple[str, str], int] = {}
    for samples in tables.cells.values():
        for sample in samples:
            key = (sample.kind or sample.name, str(sample.level))
            counts[key] = counts.get(key, 0) + 1
    return counts
