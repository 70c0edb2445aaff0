"""The format contract, beside the kernel contract: every format x every task whose blocks it
stores writes a small block through its writer's phases (``prepare(layout)``, ``write(block)``,
``finalise``), with no Dask and no engine, and the reader ``open_data`` picks for the folder
reads it back: the same cells or kinds, the source's labels, and the block's pixels (exactly
where the format is lossless, within JPEG's or x264's loss otherwise)."""
from __future__ import annotations

import io

import numpy as np
import pytest

from corruptions import __version__
from pipeline.engine import byte_versions
from pipeline.formats import FORMATS, formats_for, open_data
from pipeline.formats.common import Layout, fixed_frames
from pipeline.formats.zarr_codecs import encode_jpeg
from pipeline.readers import read_source
from pipeline.runconfig import load_run_config
from pipeline.tasks import TASKS, task_from_config

from .. import sources as fx

# the run config each task is written with, per source kind, and a cheap kernel of it
RUNS = {("imagenet-c", "imagenet"): ("imagenet-c", {"corruptions": ["contrast"], "severities": [1, 4]}),
        ("imagenet-c", "cifar"): ("cifar-10-c", {"corruptions": ["contrast"], "severities": [1, 4]}),
        ("imagenet-p", "imagenet"): ("imagenet-p", {"sequences": ["brightness"]}),
        ("imagenet-p", "cifar"): ("cifar-10-p", {"sequences": ["brightness"]}),
        ("imagenet-c-bar", "imagenet"): ("imagenet-c-bar", {"bar_corruptions": ["single_frequency_greyscale"],
                                                            "severities": [1, 4]}),
        ("imagenet-c-bar", "cifar"): ("cifar-10-c-bar", {"bar_corruptions": ["ripple"], "severities": [1, 4]})}
CASES = [(task, name) for task in TASKS for name in formats_for(TASKS[task].dims)]


def written(tmp_path, task_name: str, format_name: str):
    """A run config, its task, the block of its one key, and OUT after the format's writer wrote it."""
    readers = getattr(FORMATS[format_name], "READERS", None)
    kind = "cifar" if readers else "imagenet"
    source = (fx.cifar(tmp_path / "src", readers[0], count=3) if readers
              else fx.class_folders(tmp_path / "src", count=3))
    out = tmp_path / "out"
    run_name, kernels = RUNS[(task_name, kind)]
    config = load_run_config(run_name, [{"source": str(source), "out": str(out), "outputs": {"formats": [format_name]},
                                         **kernels}])
    task = task_from_config(config)
    listing = read_source(config.reader, config.source, config.labels)
    items = tuple(listing.items)
    [key] = task.keys(len(items), len(items))
    block = task.produce(key, task.load_shard(items))
    frames = {name: task.frame_count(name) for name in task.names} if hasattr(task, "frame_count") else {}
    layout = Layout(task.name, task.variant, tuple(task.names), tuple(task.levels), tuple(task.image_size), items,
                    tuple(listing.classes), frames, config.as_json(), config.seed, __version__, byte_versions())
    writer = FORMATS[format_name].make_writer(config, out, task.dims)
    writer.prepare(layout)
    assert writer.write(block)  # the digest of everything it wrote
    writer.finalise(layout, [], True)
    return config, task, block, listing, out



def row_of(items, name: str) -> int:
    """The source row a stored file (named after its source image's stem) came from."""
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    [row] = [r for r, item in enumerate(items) if item.name.rsplit(".", 1)[0] == stem]
    return row


def check_pixels(got: np.ndarray, expected: np.ndarray, exact: bool, mean_bound: float) -> None:
    assert got.shape == expected.shape
    difference = np.abs(got.astype(int) - expected.astype(int))
    assert difference.max() == 0 if exact else difference.mean() < mean_bound, difference.mean()


@pytest.mark.parametrize("task_name, format_name", CASES)
def test_every_format_writes_a_block_and_reads_it_back(tmp_path, task_name, format_name):
    from PIL import Image
    config, task, block, listing, out = written(tmp_path, task_name, format_name)
    items = tuple(listing.items)
    exact = format_name == "cifar_npy" or (format_name == "zarr" and config.outputs.zarr.codec != "jpeg")
    data = open_data(out, list(listing.classes))  # labels read as indices into the source's class list
    assert data.task == task.name
    labels = sorted(item.label for item in items)
    if TASKS[task_name].scoring == "images":
        assert sorted(data.cells()) == sorted((name, level) for name in task.names for level in task.levels)
        for index, level in enumerate(task.levels):
            cell = (task.names[0], level)
            files = data.files(cell)
            if files is not None:  # image files: each one's source row from its name
                rows = [row_of(items, path) for path in files.paths]
                images, got = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files.paths]), files.labels
            else:  # stored arrays, in source order
                rows = list(range(len(items)))
                images, got = data.read(cell, 0, data.count(cell))
            assert sorted(int(label) for label in got) == labels
            expected = block.data[index][rows]
            if not exact:  # JPEG: the decoded bytes of the tree's own encoding, exactly
                jpeg = config.outputs.jpeg
                expected = np.stack([np.asarray(Image.open(io.BytesIO(encode_jpeg(image, jpeg.quality, jpeg.optimize)))
                                                .convert("RGB")) for image in expected])
            check_pixels(images, expected, True, 0)
    else:
        kind = task.names[0]
        assert data.kinds() == [kind]
        videos = data.videos(kind)
        assert sorted(videos.labels) == labels and len(videos.names) == len(items)
        for index, name in enumerate(videos.names):
            row = row_of(items, name) if data.in_workers else index  # MP4 files, or stored arrays in source order
            frames = data.load(kind, index)
            # as produced, or cut to the variant's size where a fixed-shape format stores them
            expected = block.frames[row] if frames.shape == block.frames[row].shape else fixed_frames(block, row)
            check_pixels(frames, expected, exact, 5)
