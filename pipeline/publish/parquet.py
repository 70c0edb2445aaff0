"""The Hugging Face form of a release: parquet files a Hub dataset repository serves as it is.

``data/<corruption>_<level>/validation-NNNNN-of-NNNNN.parquet`` (one folder per cell, files of at
most ``--shard-mb`` each, far under the Hub's 10,000 files per folder), rows sorted by (wnid, file
name), columns ``image`` (the JPEG bytes exactly as in the tree, with its tree path: the
``datasets`` ``Image`` feature), ``label`` (a ``ClassLabel`` over the 1000 wnids), ``corruption``,
``level``, ``source_file``; the features are stored in each file's schema metadata, as ``datasets``
writes them. The release's README.md gains YAML front matter declaring one config per cell
(``fog_3``), one per corruption (``fog``, all levels) and ``all``, and the ImageNet terms as gating
text. No loading script (the Hub no longer runs them). The bytes are reproducible: uncompressed
columns (JPEG is compressed already), no timestamps.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

from ..files import read_bytes, sha256, write_bytes
from ..formats.jpeg_tree import parse_path
from ..readers import imagenet_wnids
from .plan import Member, PublishError, member_size, tree_images

FOLDER = "data"
SPLIT = "validation"
GATING = ("The images are derived from the ImageNet validation set: by requesting access you agree to ImageNet's "
          "terms of access (https://image-net.org/download), for non-commercial research and educational use.")


def cell_config(name: str, level: int) -> str:
    return f"{name}_{level}"


def plan_cells(out: Path, config, records: dict) -> dict[str, list[tuple[str, str, str, str, int]]]:
    """Per cell config: its rows (tree path, manifest digest, wnid, file name, level), sorted."""
    cells: dict[str, list[tuple[str, str, str, str, int]]] = {}
    for path, digest, name, level, wnid, file_name in tree_images(out, config, records, "parquet"):
        cells.setdefault(cell_config(name, level), []).append((path, digest, wnid, file_name, level))
    return {cell: sorted(rows, key=lambda row: (row[2], row[3])) for cell, rows in sorted(cells.items())}


def features() -> dict:
    """The ``datasets`` features of every file (stored in the parquet schema's metadata)."""
    return {"image": {"_type": "Image"},
            "label": {"_type": "ClassLabel", "names": list(imagenet_wnids())},
            "corruption": {"dtype": "string", "_type": "Value"},
            "level": {"dtype": "int32", "_type": "Value"},
            "source_file": {"dtype": "string", "_type": "Value"}}


def expected_schema():
    """The arrow schema of every file, the ``datasets`` features in its metadata."""
    import pyarrow as pa
    return pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("label", pa.int64()),
                      ("corruption", pa.string()), ("level", pa.int32()), ("source_file", pa.string())],
                     metadata={"huggingface": json.dumps({"info": {"features": features()}}, sort_keys=True)})


def _table(out: Path, rows, labels: dict[str, int]):
    import pyarrow as pa
    images = []
    for path, digest, _, _, _ in rows:
        data = read_bytes(out, path, limit=1 << 30)
        if digest is not None and sha256(data) != digest:
            raise PublishError(f"{out / path}: changed since the run wrote it (sha256 differs from the manifest); "
                               "re-run the same generate command")
        images.append({"bytes": data, "path": path})
    schema = expected_schema()
    return pa.table({"image": images, "label": [labels[row[2]] for row in rows],
                     "corruption": [parse_path(row[0])[0] for row in rows], "level": [row[4] for row in rows],
                     "source_file": [row[3] for row in rows]}, schema=schema)


def _parquet_bytes(table) -> bytes:
    import pyarrow.parquet as pq
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="NONE", use_dictionary=False, write_statistics=False,
                   row_group_size=max(1, table.num_rows))
    return buffer.getvalue()


def write_cells(out: Path, dist: Path, cells: dict, shard_bytes: int) -> list[tuple[str, str, int]]:
    """Every cell's parquet files under DIST/data/<cell>/: (name, sha256, size) of each."""
    from ..files import make_folders
    labels = {wnid: index for index, wnid in enumerate(imagenet_wnids())}
    written = []
    for cell, rows in cells.items():
        groups, size = [[]], 0
        for row in rows:
            grows = member_size(out, Member(row[0], row[0], row[1]))
            if groups[-1] and size + grows > shard_bytes:
                groups.append([])
                size = 0
            groups[-1].append(row)
            size += grows
        make_folders(dist, f"{FOLDER}/{cell}")
        for index, group in enumerate(groups):
            name = f"{FOLDER}/{cell}/{SPLIT}-{index:05d}-of-{len(groups):05d}.parquet"
            data = _parquet_bytes(_table(out, group, labels))
            write_bytes(dist, name, data)
            written.append((name, sha256(data), len(data)))
    return written


def front_matter(cells: dict) -> str:
    """The README.md YAML header of a Hub dataset repository: its configs and gating text."""
    names = sorted({cell.rsplit("_", 1)[0] for cell in cells})
    configs = [("all", f"{FOLDER}/*/*.parquet")]
    configs += [(name, f"{FOLDER}/{name}_*/*.parquet") for name in names]
    configs += [(cell, f"{FOLDER}/{cell}/*.parquet") for cell in cells]
    lines = ["---", "license: other", "task_categories:", "- image-classification", "pretty_name: corrupted images",
             f"extra_gated_prompt: {json.dumps(GATING)}", "configs:"]
    for config_name, pattern in configs:
        lines += [f"- config_name: {config_name}", "  data_files:", f"  - split: {SPLIT}", f"    path: \"{pattern}\""]
    return "\n".join(lines + ["---", ""]) + "\n"
