"""The pipeline end to end on a real LocalCluster of worker processes, real files, real Zarr."""
from __future__ import annotations

import io
import json
import os
import random
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from pipeline.engine import RunError, generate
from pipeline.readers import imagenet_wnids, load_pixels, read_source
from pipeline.runconfig import load_run_config

from .. import sources as fx
from ..helpers import generate_process, sigkill_after
from .conftest import one_worker_client

ROOT = Path(__file__).resolve().parents[2]
SOME = ["gaussian_noise", "glass_blur", "motion_blur", "frost", "elastic_transform"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return fx.class_folders(tmp_path_factory.mktemp("val"), count=9)


def config_for(source, out, **settings):
    overrides = [{"source": str(source), "out": str(out)}] + [{k: v} for k, v in settings.items()]
    return load_run_config(ROOT / "configs" / "imagenet-c.yaml", overrides)


def run(source, out, client, **settings):
    return generate(config_for(source, out, **settings), client=client, stream=io.StringIO())


def jpeg_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.JPEG")) if ".zarr" not in p.parts[-5]}


def chunk_files(out: Path) -> dict[str, bytes]:
    store = out / "imagenet-c.zarr"
    return {str(p.relative_to(store)): p.read_bytes() for p in store.rglob("*")
            if p.is_file() and "c" in p.relative_to(store).parts}


def zarr_contents(path: Path) -> dict[str, np.ndarray]:
    group = zarr.open_group(path, mode="r")
    return {f"{c}/{s}": group[f"{c}/{s}"][...] for c in group.group_keys() for s in group[c].array_keys()}


def test_full_run_both_formats_read_back(source, tmp_path, client):
    out = tmp_path / "out"
    summary = run(source, out, client, shard_size=4)
    assert summary.units_run == 3 * 19 and summary.failures == []
    # the JPEG tree, walked as torchvision's ImageFolder does
    for name in fx.WNIDS:
        assert (out / "fog" / "3" / name).is_dir()
    files = jpeg_files(out)
    assert len(files) == 9 * 19 * 5
    assert all(len(Path(f).parts) == 4 for f in files)  # corruption/severity/wnid/file
    from PIL import Image
    sample = Image.open(out / "snow" / "5" / fx.WNIDS[0] / "ILSVRC2012_val_00000001.JPEG")
    assert sample.size == (224, 224) and sample.format == "JPEG"
    # the Zarr store
    group = zarr.open_group(out / "imagenet-c.zarr", mode="r")
    assert group["fog/3"].shape == (9, 224, 224, 3) and group["fog/3"].chunks == (1, 224, 224, 3)
    assert group["fog/3"].shards == (4, 224, 224, 3)
    expected_labels = [imagenet_wnids().index(fx.WNIDS[i % 3]) for i in range(9)]
    order = sorted(range(9), key=lambda i: (fx.WNIDS[i % 3], i))  # class folders, then file names
    assert list(group["labels"][...]) == [expected_labels[i] for i in order]
    assert group.attrs["complete"] and group.attrs["seed"] == 0 and group.attrs["config"]["variant"] == "imagenet"
    # the JPEG file is the PIL encoding (quality 85, optimised) of a direct call of the kernel
    # with the image's derived generator, and the store decodes to exactly its pixels
    from corruptions import corrupt, rng_for
    from corruptions.config import preprocess
    from pipeline.formats.zarr_codecs import decode_jpeg, pil_jpeg
    item = read_source("imagenet_folders", source).items[5]
    expected = corrupt(preprocess(load_pixels(item), "imagenet"), "glass_blur", 4,
                       rng_for(0, "imagenet", "glass_blur", 4, item.image_id), "imagenet")
    jpeg = (out / "glass_blur" / "4" / item.wnid / item.name).read_bytes()
    assert jpeg == pil_jpeg(expected, 85, True)
    assert np.array_equal(group["glass_blur/4"][5], decode_jpeg(jpeg))
    import warnings

    import xarray as xr
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # consolidated metadata: no warning at open
        dataset = xr.open_zarr(out / "imagenet-c.zarr", group="fog")
        labels = xr.open_zarr(out / "imagenet-c.zarr")["labels"].values
    assert dict(dataset["3"].sizes) == {"image": 9, "y": 224, "x": 224, "channel": 3}
    assert list(labels) == list(group["labels"][...])
    # the manifest: one line per key, with the sha256 of every file and shard written, by format
    import hashlib
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 57 and all(set(line["outputs"]) == {"jpeg", "zarr"} for line in lines)
    recorded = {path: digest for line in lines for path, digest in line["outputs"]["jpeg"].items()}
    assert len(recorded) == 9 * 19 * 5
    assert all(hashlib.sha256((out / path).read_bytes()).hexdigest() == digest for path, digest in recorded.items())
    shards = {path: digest for line in lines for path, digest in line["outputs"]["zarr"].items()}
    assert all(hashlib.sha256((out / "imagenet-c.zarr" / p).read_bytes()).hexdigest() == d for p, d in shards.items())
    # a second run of the same command does nothing and changes nothing
    again = run(source, out, client, shard_size=4)
    assert again.units_run == 0 and again.units_skipped == 57
    assert jpeg_files(out) == files


def test_bytes_do_not_depend_on_workers_or_shard_size(source, tmp_path, client):
    settings = dict(corruptions=SOME, variant="imagenet64")
    run(source, tmp_path / "two", client, shard_size=2, **settings)
    with one_worker_client() as single:
        run(source, tmp_path / "one", single, shard_size=2, **settings)
        run(source, tmp_path / "one_big", single, shard_size=5, **settings)
    reference = jpeg_files(tmp_path / "two")
    assert len(reference) == 9 * 5 * 5
    assert jpeg_files(tmp_path / "one") == reference
    assert jpeg_files(tmp_path / "one_big") == reference
    ref_chunks, one_chunks = chunk_files(tmp_path / "two"), chunk_files(tmp_path / "one")
    assert len(ref_chunks) == 5 * 5 * 5 + 3 and ref_chunks == one_chunks  # same shard size: identical chunks
    big = zarr_contents(tmp_path / "one_big" / "imagenet-c.zarr")
    small = zarr_contents(tmp_path / "two" / "imagenet-c.zarr")
    assert big.keys() == small.keys() and all(np.array_equal(big[k], small[k]) for k in big)



def sigkill_and_resume(source, tmp_path, client, seed: int):
    args = ["configs/imagenet-c.yaml", "--source", str(source), "--shard-size", "1", "--workers", "2",
            "--variant", "imagenet", "--only", *SOME]
    run(source, tmp_path / "reference", client, shard_size=1, corruptions=SOME)
    out = tmp_path / "killed"
    units, kill_after = 9 * len(SOME), random.Random(seed).randint(1, 8)
    process = generate_process(args + ["--out", str(out)], start_new_session=True)
    manifest = out / "manifest.jsonl"
    sigkill_after(process, manifest, kill_after)
    done_at_kill = manifest.read_text().count("\n")
    assert done_at_kill < units, (kill_after, done_at_kill)
    resumed = generate_process(args + ["--out", str(out)])
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert "already done" in stdout
    assert jpeg_files(out) == jpeg_files(tmp_path / "reference"), f"killed after {done_at_kill} units"
    ours, theirs = zarr_contents(out / "imagenet-c.zarr"), zarr_contents(tmp_path / "reference" / "imagenet-c.zarr")
    assert all(np.array_equal(ours[k], theirs[k]) for k in theirs)
    assert not list(out.rglob(".*.part"))


def test_sigkill_and_resume_gives_identical_bytes(source, tmp_path, client):
    sigkill_and_resume(source, tmp_path, client, seed=2019)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_sigkill_at_many_points_and_resume(source, tmp_path, client, seed):
    """The same at six more kill points (a stress run: `make test-all`)."""
    sigkill_and_resume(source, tmp_path, client, seed)


def test_a_worker_killed_mid_run_is_survived(source, tmp_path, client):
    run(source, tmp_path / "reference", client, shard_size=1, corruptions=SOME)
    out = tmp_path / "out"
    result = {}
    thread = threading.Thread(target=lambda: result.update(summary=run(source, out, client, shard_size=1,
                                                                        corruptions=SOME)))
    thread.start()
    manifest = out / "manifest.jsonl"
    while thread.is_alive() and not (manifest.exists() and manifest.read_text().count("\n") >= 3):
        time.sleep(0.01)
    pids = client.run(os.getpid)
    victim = next(iter(pids.values()))
    os.kill(victim, signal.SIGKILL)
    done_at_kill = manifest.read_text().count("\n")
    assert thread.is_alive() and done_at_kill < 9 * len(SOME), "the run ended before the worker was killed"
    thread.join(timeout=300)
    assert result["summary"].units_run == 9 * len(SOME)
    assert jpeg_files(out) == jpeg_files(tmp_path / "reference")
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.run(os.getpid).values()  # the nanny started a new worker


def test_awkward_inputs_are_handled_or_reported(tmp_path, client):
    source = tmp_path / "val"
    layout = fx.awkward_folders(source)
    out = tmp_path / "out"
    summary = run(source, out, client, shard_size=3, corruptions=["contrast", "gaussian_noise"])
    failed = sorted(Path(f["path"]).name for f in summary.failures)
    assert failed == sorted(Path(k).name for k, v in layout.items() if v == "fail")
    reasons = {Path(json.loads(line)["path"]).name: json.loads(line)["reason"]
               for line in (out / "failures.jsonl").read_text().splitlines()}
    assert "truncated" in reasons["truncated.JPEG"].lower() and "not_an_image.JPEG" in reasons
    written = jpeg_files(out)
    for relative, expect in layout.items():
        name = Path(relative).stem + ".JPEG"
        present = f"contrast/1/{Path(relative).parent}/{name}" in written
        assert present == (expect == "ok"), relative
    group = zarr.open_group(out / "imagenet-c.zarr", mode="r")
    assert group["contrast/1"].shape[0] == sum(v != "ignored" for v in layout.values())
    assert sorted(Path(i).name for i in group.attrs["failed_images"]) == failed


def test_cli_exit_status_and_config_errors_before_any_work(tmp_path):
    source = tmp_path / "val"
    fx.awkward_folders(source)
    out = tmp_path / "out"
    base = ["configs/imagenet-c.yaml", "--source", str(source), "--workers", "1", "--only", "contrast",
            "--severities", "1"]
    process = generate_process(base + ["--out", str(out)])
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 1 and "could not be read" in stdout, stderr
    process = generate_process(base + ["--out", str(out), "--allow-failures"])
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    for extra, words in ((["--only", "glass"], ["corruptions", "gaussian_noise"]),
                         (["--severities", "6"], ["severities", "1, 2, 3, 4, 5"]),
                         (["--set", "outputs.formats=[png]"], ["outputs.formats", "jpeg, zarr, cifar_npy"]),
                         (["--set", "shardsize=3"], ["shardsize", "shard_size"]),
                         (["--set", "noequals"], ["KEY=VALUE"]),
                         (["--set", "cluster.memory_limit=lots"], ["cluster.memory_limit", "2GiB"]),
                         (["--set", "reader=lmdb"], ["reader", "imagenet_folders"]),
                         (["--source", str(tmp_path / "missing")], ["does not exist"])):
        fresh = tmp_path / f"never-{len(words[0])}"
        process = generate_process(base + ["--out", str(fresh)] + extra)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 2, stderr
        assert all(word in stderr for word in words), stderr
        assert not fresh.exists()


def test_resuming_into_a_folder_of_another_run_is_refused(source, tmp_path, client):
    run(source, tmp_path / "out", client, corruptions=["contrast"], severities=[1])
    with pytest.raises(RunError, match="seed"):
        run(source, tmp_path / "out", client, corruptions=["contrast"], severities=[1], seed=5)


@pytest.mark.parametrize("layout", ["imagenet_flat", "imagenet_tar", "tiny_imagenet", "cifar10", "cifar100"])
def test_each_reader_lists_and_loads_its_layout(tmp_path, layout):
    builders = {"imagenet_flat": fx.flat_folder, "imagenet_tar": fx.val_tar, "tiny_imagenet": fx.tiny_imagenet,
                "cifar10": lambda p: fx.cifar(p, "cifar10"), "cifar100": lambda p: fx.cifar(p, "cifar100")}
    path = builders[layout](tmp_path / "src")
    listed = read_source(layout, path)
    assert listed.items and len({i.image_id for i in listed.items}) == len(listed.items)
    for item in listed.items:
        image = load_pixels(item)
        assert min(image.size) >= 32
        assert 0 <= item.label < len(listed.classes) and listed.classes[item.label] == item.wnid
    if layout.startswith("imagenet"):
        assert [i.name for i in listed.items] == sorted(i.name for i in listed.items)
        assert [i.wnid for i in listed.items] == [fx.WNIDS[k % 3] for k in range(len(listed.items))]
        reference = fx.small_photos(len(listed.items))
        assert np.abs(np.asarray(load_pixels(listed.items[2]), float) - np.asarray(reference[2], float)).mean() < 8
    if layout == "tiny_imagenet":
        assert listed.classes == tuple(sorted(fx.WNIDS))


def test_cifar_run_writes_the_official_npy_layout(tmp_path, client):
    source = fx.cifar(tmp_path / "src", "cifar10", count=7)
    config = load_run_config(ROOT / "configs" / "cifar-10-c.yaml",
                             [{"source": str(source), "out": str(tmp_path / "out"), "shard_size": 3,
                               "corruptions": ["gaussian_noise", "fog"]}])
    generate(config, client=client, stream=io.StringIO())
    array = np.load(tmp_path / "out" / "fog.npy")
    labels = np.load(tmp_path / "out" / "labels.npy")
    listed = read_source("cifar10", source)
    assert array.shape == (35, 32, 32, 3) and array.dtype == np.uint8
    assert list(labels) == [i.label for i in listed.items] * 5
    assert labels.dtype == np.uint8  # as make_cifar_c.py saves them
    group = zarr.open_group(tmp_path / "out" / "cifar-10-c.zarr", mode="r")
    for position in range(5):
        assert np.array_equal(array[7 * position:7 * (position + 1)], group[f"fog/{position + 1}"][...])
    assert not list((tmp_path / "out").glob(".*.part"))


def test_missing_source_and_empty_source(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        generate(config_for(tmp_path / "nowhere", tmp_path / "out"))
    (tmp_path / "empty" / "n01440764").mkdir(parents=True)
    with pytest.raises(RunError, match="holds no images"):
        generate(config_for(tmp_path / "empty", tmp_path / "out"))


def test_the_same_images_give_the_same_bytes_whichever_layout_holds_them(tmp_path, client):
    folders = fx.class_folders(tmp_path / "folders", count=5)
    flat = fx.flat_folder(tmp_path / "flat", count=5)
    tar = fx.val_tar(tmp_path / "tar", count=5)
    settings = dict(corruptions=["glass_blur", "frost"], variant="imagenet64", severities=[2], shard_size=2)
    run(folders, tmp_path / "a", client, **settings)
    run(flat, tmp_path / "b", client, reader="imagenet_flat", **settings)
    run(tar, tmp_path / "c", client, reader="imagenet_tar", **settings)
    reference = jpeg_files(tmp_path / "a")
    assert len(reference) == 10
    assert jpeg_files(tmp_path / "b") == reference and jpeg_files(tmp_path / "c") == reference


def test_every_zarr_codec_reads_back_the_same_pixels(source, tmp_path, client):
    """Lossless codecs hold the kernel's pixels; the jpeg codec holds the JPEG tree's bytes."""
    contents = {}
    for codec in ("zstd", "blosc", "gzip", "none", "jpeg"):
        out = tmp_path / codec
        run(source, out, client, corruptions=["fog", "pixelate"], severities=[1, 5], variant="imagenet64",
            shard_size=4, outputs={"formats": ["zarr", "jpeg"], "zarr": {"codec": codec, "level": 3}})
        contents[codec] = zarr_contents(out / "imagenet-c.zarr")
    reference = contents["zstd"]
    assert set(reference) == {"fog/1", "fog/5", "pixelate/1", "pixelate/5"}
    for codec in ("blosc", "gzip", "none"):
        assert all(np.array_equal(contents[codec][k], reference[k]) for k in reference), codec
    from pipeline.formats.zarr_codecs import decode_jpeg
    items = read_source("imagenet_folders", source).items
    for key, array in contents["jpeg"].items():
        name, level = key.split("/")
        tree = np.stack([decode_jpeg((tmp_path / "jpeg" / name / level / i.wnid / i.name).read_bytes()) for i in items])
        assert np.array_equal(array, tree), key
        assert not np.array_equal(array, reference[key])  # the lossy bytes, not the kernel's pixels
    assert reference["fog/5"].shape == (9, 64, 64, 3) and reference["fog/5"].any()


def test_our_shard_files_are_what_zarr_itself_writes(tmp_path):
    """The writer assembles shard files directly (index, CRC32C); zarr's own encoder must agree."""
    from pipeline.formats.zarr_store import from_arrays
    from pipeline.readers import Item
    rng = np.random.default_rng(0)
    items = [Item(str(i), f"{i}.JPEG", "n01440764", 0, "file", "") for i in range(7)]
    images = rng.integers(0, 256, (7, 16, 24, 3), dtype=np.uint8)
    for codec in ("zstd", "jpeg"):
        ours = Path(from_arrays(str(tmp_path / f"ours-{codec}.zarr"), items, ["n01440764"], {("fog", 2): images},
                                shard_rows=4, codec=codec))
        theirs = tmp_path / f"theirs-{codec}.zarr"
        array = zarr.open_group(ours, mode="r")["fog/2"]
        copy = zarr.create_array(theirs, shape=array.shape, dtype=array.dtype, shards=array.shards,
                                 chunks=array.chunks, serializer=array.serializer, compressors=array.compressors,
                                 fill_value=0)
        copy[...] = images
        for shard in ("0", "1"):
            assert (ours / "fog" / "2" / "c" / shard / "0" / "0" / "0").read_bytes() == \
                (theirs / "c" / shard / "0" / "0" / "0").read_bytes(), (codec, shard)


@pytest.mark.parametrize("formats", [["jpeg"], ["zarr"], ["cifar_npy"]])
@pytest.mark.parametrize("severities", [[1, 2, 3, 4, 5], [1, 3], [4]])
def test_each_format_reads_back_what_it_wrote(tmp_path, client, formats, severities):
    """Writer -> reader round trip through the scorer's reader of each format, severity subsets
    included: every cell holds what the kernel made, under its own severity."""
    from pipeline.formats import open_data
    from pipeline.formats.zarr_codecs import decode_jpeg, encode_jpeg
    from pipeline.scoring.loader import decode
    source = fx.cifar(tmp_path / "src", "cifar10", count=5)
    out = tmp_path / "out"
    config = load_run_config("cifar-10-c", [{"source": str(source), "out": str(out), "shard_size": 2,
                                             "corruptions": ["contrast", "fog"], "severities": severities,
                                             "outputs": {"formats": formats}}])
    generate(config, client=client, stream=io.StringIO())
    data = open_data(out, list(read_source("cifar10", source).classes))
    assert sorted(data.cells()) == sorted((c, s) for c in ("contrast", "fog") for s in severities)
    from corruptions import corrupt, rng_for
    from corruptions.config import preprocess
    items = read_source("cifar10", source).items
    for name, level in data.cells():
        expected = np.stack([corrupt(preprocess(load_pixels(i), "cifar"), name, level,
                                     rng_for(0, "cifar", name, level, i.image_id), "cifar") for i in items])
        if data.files((name, level)) is not None:  # the JPEG tree
            files = data.files((name, level))
            got = np.stack([decode(p, 32, 32) for p in files.paths])
            order = [next(k for k, i in enumerate(items) if p.endswith(f"/{i.wnid}/{Path(i.name).stem}.JPEG"))
                     for p in files.paths]
            expected = np.stack([decode_jpeg(encode_jpeg(expected[k], 85, True)) for k in order])
            assert list(files.labels) == [items[k].label for k in order]
        else:
            got, labels = data.read((name, level), 0, data.count((name, level)))
            assert list(labels) == [i.label for i in items]
        assert np.array_equal(got, expected), (name, level)


def _thread_limits():
    import cv2
    from threadpoolctl import threadpool_info
    return os.environ.get("OMP_NUM_THREADS"), cv2.getNumThreads(), sorted({p["num_threads"] for p in threadpool_info()})


def test_a_cluster_that_starts_empty_gains_workers_mid_run(source, tmp_path, client):
    """Batch jobs arrive late: the run waits, then uses the workers as they join; thread limits
    reach workers that joined after the run started (set by the worker plugin, not LocalCluster)."""
    from distributed import Client, LocalCluster
    settings = dict(shard_size=1, corruptions=["contrast", "fog"], severities=[1, 2])
    run(source, tmp_path / "reference", client, **settings)
    out = tmp_path / "out"
    manifest = out / "manifest.jsonl"
    with LocalCluster(n_workers=0, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as empty:
        result = {}
        thread = threading.Thread(target=lambda: result.update(summary=run(source, out, empty, **settings)))
        thread.start()
        time.sleep(3)
        assert thread.is_alive() and not (manifest.exists() and manifest.read_text())  # nothing can run yet
        cluster.scale(1)
        deadline = time.monotonic() + 120
        while thread.is_alive() and not (manifest.exists() and manifest.read_text().count("\n") >= 2):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        cluster.scale(2)
        thread.join(timeout=300)
        assert result["summary"].units_run == 9 * 2
        empty.wait_for_workers(2, timeout=60)
        limits = empty.run(_thread_limits)
        assert len(limits) == 2 and all(v == ("1", 1, [1]) for v in limits.values()), limits
    assert jpeg_files(out) == jpeg_files(tmp_path / "reference")
