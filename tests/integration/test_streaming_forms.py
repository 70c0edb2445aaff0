"""The streaming forms of a release beyond ImageNet-C's JPEG tree (test_publish.py has those):
ImageNet-P's videos and CIFAR's arrays as WebDataset shards and parquet, read back by the real
``webdataset``, ``datasets`` and ``mlcroissant`` libraries offline; RobustBench's 5,000-image
subset config; verify and regeneration on each."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.engine import generate
from pipeline.formats.mp4_tree import decode
from pipeline.publish import publish, verify
from pipeline.runconfig import load_run_config

from .. import sources as fx
from .conftest import load_dataset

KINDS = ["gaussian_noise_2", "rotate"]


@pytest.fixture()
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def make_run(out: Path, client, config: str, **settings) -> Path:
    generate(load_run_config(config, [{"out": str(out), **settings}]), client=client, stream=io.StringIO())
    return out


def sums(dist: Path) -> dict[str, str]:
    return {line.split("  ")[1]: line.split("  ")[0] for line in (dist / "SHA256SUMS").read_text().splitlines()}


def croissant_rows(dist: Path, record_set: str, cache: Path) -> list[dict]:
    """A record set as mlcroissant reads it from the release (a fresh process and cache)."""
    import os
    import subprocess
    import sys
    code = ("import json, sys, mlcroissant as mlc; d = mlc.Dataset(jsonld=sys.argv[1]); print(json.dumps("
            "[{k: v.decode() if isinstance(v, bytes) else v for k, v in r.items()} for r in d.records(sys.argv[2])],"
            " default=str))")
    done = subprocess.run([sys.executable, "-c", code, str(dist / "croissant.json"), record_set], capture_output=True,
                          text=True, env=dict(os.environ, CROISSANT_CACHE=str(cache)), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def imagenet_p(tmp_path_factory, client):
    root = tmp_path_factory.mktemp("p")
    source = fx.class_folders(root / "val", count=4)
    out = make_run(root / "out", client, "imagenet-p", source=str(source), sequences=KINDS, variant="imagenet64",
                   shard_size=2, outputs={"mp4": {"preset": "ultrafast"}})
    dist = root / "dist"
    publish(out, dist, forms=("tree", "webdataset", "parquet"), shard_bytes=40 << 10)
    return root, source, out, dist


def test_imagenet_p_videos_stream_as_shards_and_parquet_with_the_trees_bytes(imagenet_p, tmp_path, offline):
    """Every form holds each video's MP4 bytes as the tree has them (decoded with the project's
    decoder: the same frames), with its kind, difficulty and frame count; the tree form is one
    tarball ``ImageNet-P.tar``; verify passes; Croissant reads back every parquet row."""
    import webdataset as wds

    from pipeline.readers import imagenet_wnids
    root, source, out, dist = imagenet_p
    tree = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.mp4"))}
    assert len(tree) == 4 * len(KINDS)
    with tarfile.open(dist / "ImageNet-P.tar") as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
    assert members == {f"ImageNet-P/{name}": data for name, data in tree.items()}
    index = json.loads((dist / "webdataset" / "index.json").read_text())
    assert set(index["cells"]) == {"gaussian_noise/2", "rotate/1"}
    wnids = list(imagenet_wnids())
    seen = 0
    for cell, brace in index["cells"].items():
        for sample in wds.WebDataset(str(dist / "webdataset" / brace), shardshuffle=False):
            meta = json.loads(sample["json"])
            video = tree[f"{meta['kind']}/{meta['wnid']}/{meta['source_file']}"]
            assert sample["mp4"] == video and int(sample["cls"]) == meta["label"] == wnids.index(meta["wnid"])
            assert (meta["perturbation"], str(meta["difficulty"])) == tuple(cell.split("/"))
            assert meta["frames"] == 31 and len(decode(sample["mp4"])) == 31
            seen += 1
    assert seen == len(tree)
    assert np.array_equal(decode(sample["mp4"]), decode(out / meta["kind"] / meta["wnid"] / meta["source_file"]))
    for kind in KINDS:
        table = load_dataset(tmp_path, str(dist), kind, split="validation")
        streamed = list(load_dataset(tmp_path, str(dist), kind, split="validation", streaming=True))
        assert len(table) == len(streamed) == 4
        for row, again in zip(table, streamed):
            wnid = table.features["label"].names[row["label"]]
            assert row["video"] == again["video"] == tree[f"{kind}/{wnid}/{row['source_file']}"]
            assert (row["kind"], row["frames"]) == (kind, 31)
    assert len(load_dataset(tmp_path, str(dist), "all", split="validation")) == len(tree)
    assert verify(dist, log=lambda *a: None) == []
    rows = croissant_rows(dist, "parquet", tmp_path / "cache")
    assert sorted((r["parquet/kind"], r["parquet/source_file"]) for r in rows) == sorted(
        (name.split("/")[0], name.split("/")[2]) for name in tree)
    card = (dist / "README.md").read_text()
    assert "| rotate | 4 |" in card and "wds.WebDataset" in card and "load_dataset" in card
    # the paper's Appendix E: AlexNet's FP and uT5D for rotate; none given for a difficulty-2 kind
    assert "## Measures: flip rate, mFR, mT5D" in card and "| rotate | 13.10 | 2.95 |" in card
    assert "| gaussian_noise_2 |" not in card.split("## Measures")[1].split("\n## ")[0]


def test_the_imagenet_p_card_gives_appendix_e_as_printed():
    """AlexNet's FP as the paper prints them (two decimals), its uT5D, for the difficulty-1 kinds;
    CIFAR-10-P's card says the paper gives none."""
    from pipeline.publish.card import dataset_card
    run = {"identity": {"images": 3, "versions": {}}, "version": "0"}
    card = dataset_card(run, load_run_config("imagenet-p", []), [], {}, 0)
    measures = card.split("## Measures")[1].split("\n## ")[0]
    for row in ("| gaussian_noise | 23.65 | 4.77 |", "| tilt | 7.05 | 1.75 |", "| speckle_noise | 18.65 | 3.89 |",
                "| gaussian_blur | 2.78 | 0.70 |"):
        assert row in measures, row
    assert "| gaussian_noise_2 |" not in measures and measures.count("\n| ") == 1 + 14  # the header and 14 perturbations
    cifar = dataset_card(run, load_run_config("cifar-10-p", []), [], {}, 0)
    assert "The paper gives no AlexNet figures for" in cifar and "| rotate | 13.10" not in cifar


def test_imagenet_p_forms_are_reproducible_and_regenerate_from_the_source(imagenet_p, tmp_path):
    root, source, out, dist = imagenet_p
    again = tmp_path / "again"
    publish(out, again, forms=("tree", "webdataset", "parquet"), shard_bytes=40 << 10, workers=1)
    assert sums(again) == sums(dist)
    lines = []
    assert verify(dist, source=str(source), sample=3, log=lines.append) == []
    assert any("regenerated 3" in line and "3 identical" in line for line in lines), lines


def test_cifar_rows_stream_as_lossless_pngs(tmp_path, client, offline):
    """CIFAR-10-C's arrays as shards and parquet: each row a PNG whose pixels are the array's,
    with labels.npy's label; the same bytes when published again; verify passes."""
    import webdataset as wds
    source = fx.cifar(tmp_path / "c", "cifar10", count=5)
    out = make_run(tmp_path / "out", client, "cifar-10-c", source=str(source), corruptions=["fog", "contrast"],
                   severities=[1, 3], shard_size=2)
    dist = tmp_path / "dist"
    publish(out, dist, forms=("webdataset", "parquet"))
    labels = np.load(out / "labels.npy")
    arrays = {name: np.load(out / f"{name}.npy") for name in ("fog", "contrast")}
    index = json.loads((dist / "webdataset" / "index.json").read_text())
    count = 0
    for cell, brace in index["cells"].items():
        name, level = cell.split("/")
        offset = [1, 3].index(int(level)) * 5
        for sample in wds.WebDataset(str(dist / "webdataset" / brace), shardshuffle=False):
            meta = json.loads(sample["json"])
            row = offset + int(meta["source_file"])
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(sample["png"]))), arrays[name][row])
            assert int(sample["cls"]) == meta["label"] == labels[row] and meta["corruption"] == name
            count += 1
    assert count == 2 * 2 * 5
    table = load_dataset(tmp_path, str(dist), "fog_3", split="validation")
    assert len(table) == 5 and table.features["label"].names == [str(i) for i in range(10)]
    for row in table:
        index_in_set = int(row["source_file"])
        assert np.array_equal(np.asarray(row["image"]), arrays["fog"][5 + index_in_set])
        assert row["label"] == labels[5 + index_in_set] and row["level"] == 3
    lines = []
    assert verify(dist, source=str(source), sample=4, log=lines.append) == []
    assert any("regenerated 4 images" in line and "4 identical" in line for line in lines), lines
    again = tmp_path / "again"
    publish(out, again, forms=("parquet", "webdataset"), workers=1)
    assert sums(again) == sums(dist)
    card = (dist / "README.md").read_text()
    assert "gated" not in card.split("---")[1]  # no ImageNet terms for CIFAR
    assert "## Measures: CE and mCE" in card and "The paper gives no AlexNet errors for" in card


def test_cifar_p_videos_stream_as_arrays_of_frames(tmp_path, client, offline):
    """CIFAR-10-P's arrays as shards and parquet: each video the .npy of its frames, equal to the
    array's row, with its kind, frames and label; verify regenerates some from the source."""
    import webdataset as wds
    source = fx.cifar(tmp_path / "c", "cifar10", count=3)
    out = make_run(tmp_path / "out", client, "cifar-10-p", source=str(source), sequences=KINDS, shard_size=2)
    dist = tmp_path / "dist"
    publish(out, dist, forms=("tree", "webdataset", "parquet"))
    labels = np.load(out / "labels.npy")
    index = json.loads((dist / "webdataset" / "index.json").read_text())
    seen = 0
    for brace in index["cells"].values():
        for sample in wds.WebDataset(str(dist / "webdataset" / brace), shardshuffle=False):
            meta = json.loads(sample["json"])
            row = int(meta["source_file"])
            frames = np.load(io.BytesIO(sample["npy"]))
            assert np.array_equal(frames, np.load(out / f"{meta['kind']}.npy")[row])
            assert meta["frames"] == len(frames) and int(sample["cls"]) == meta["label"] == labels[row]
            seen += 1
    assert seen == 3 * len(KINDS)
    table = load_dataset(tmp_path, str(dist), "rotate", split="validation")
    assert len(table) == 3
    for row in table:
        assert np.array_equal(np.load(io.BytesIO(row["video"])), np.load(out / "rotate.npy")[int(row["source_file"])])
    lines = []
    assert verify(dist, source=str(source), sample=3, log=lines.append) == []
    assert any("regenerated 3 videos" in line and "3 identical" in line for line in lines), lines
    with tarfile.open(dist / "CIFAR-10-P.tar") as archive:
        assert sorted(m.name for m in archive.getmembers() if m.isfile()) == [
            "CIFAR-10-P/gaussian_noise_2.npy", "CIFAR-10-P/labels.npy", "CIFAR-10-P/rotate.npy"]


def test_the_robustbench_config_holds_exactly_its_list(tmp_path, client, offline):
    """A source holding RobustBench's 5,000 images and 3 others: the ``robustbench`` config
    yields exactly the list, in every cell; a subset file given a row outside the list (its
    checksum rewritten to match) is named by verify."""
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.publish.parquet import robustbench_images
    listed = sorted(robustbench_images())
    source = tmp_path / "val"
    pixels = np.asarray(fx.small_photos(1)[0].convert("RGB").resize((72, 72)))
    others = ["n01440764/ILSVRC2012_val_00000001.JPEG", "n01443537/ILSVRC2012_val_00000002.JPEG",
              "n02123045/not_in_the_list.JPEG"]
    assert not set(others) & set(listed)
    encoded = io.BytesIO()
    Image.fromarray(pixels).save(encoded, "JPEG", quality=90)
    for name in listed + others:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(encoded.getvalue())
    out = make_run(tmp_path / "out", client, "imagenet-c", source=str(source), corruptions=["brightness"],
                   severities=[2, 5], variant="imagenet64", shard_size=1024, outputs={"formats": ["jpeg"]})
    dist = tmp_path / "dist"
    publish(out, dist, forms=("parquet",))
    subset = load_dataset(tmp_path, str(dist), "robustbench", split="validation").remove_columns("image")
    names = subset.features["label"].names
    assert len(subset) == 2 * 5000
    for level in (2, 5):
        rows = subset.filter(lambda row, level=level: row["level"] == level)
        assert sorted(f"{names[label]}/{file}" for label, file in zip(rows["label"], rows["source_file"])) == listed
    cell = load_dataset(tmp_path, str(dist), "robustbench_brightness_5", split="validation")
    assert len(cell) == 5000 and set(cell["level"]) == {5}
    assert len(load_dataset(tmp_path, str(dist), "brightness_5", split="validation")) == 5003
    assert verify(dist, log=lambda *a: None) == []
    tampered = sorted((dist / "robustbench").rglob("*.parquet"))[0]
    table = pq.read_table(tampered)
    outside = pq.read_table(sorted((dist / "data").rglob("*.parquet"))[0])
    outside = outside.filter(pa.compute.equal(outside["source_file"], "not_in_the_list.JPEG"))
    pq.write_table(pa.concat_tables([table, outside.slice(0, 1)]), tampered)
    lines = []
    for line in (dist / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        lines.append(f"{hashlib.sha256((dist / name).read_bytes()).hexdigest()}  {name}")
    (dist / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    problems = verify(dist, log=lambda *a: None)
    assert any("not in RobustBench's list" in p and "not_in_the_list" in p for p in problems), problems


@pytest.mark.parametrize("config, settings", [
    ("tiny-imagenet-c", {"corruptions": ["fog"], "severities": [2, 5]}),
    ("imagenet-c-bar", {"bar_corruptions": ["sparkles"], "severities": [2, 5], "variant": "imagenet64"}),
])
def test_tiny_and_c_bar_cells_stream_with_the_trees_bytes(config, settings, tmp_path, client, offline):
    """Tiny ImageNet-C (its own classes) and ImageNet-C-bar (ImageNet's 1000) as shards and
    parquet: each cell's samples carry the tree's JPEG bytes and the tree's class; verify
    regenerates samples from the source; the card says the paper gives no AlexNet errors."""
    import webdataset as wds

    from pipeline.readers import imagenet_wnids
    if config.startswith("tiny"):
        source = fx.tiny_imagenet(tmp_path / "t", count=4)
        classes = sorted(set(fx.WNIDS))  # the wnids present: the 3 the source uses
    else:
        source = fx.class_folders(tmp_path / "val", count=4)
        classes = list(imagenet_wnids())
    out = make_run(tmp_path / "out", client, config, source=str(source), shard_size=3, **settings)
    tree = {p.relative_to(out).parts[:2] + (p.name,): p.read_bytes() for p in out.rglob("*.JPEG")}
    assert len(tree) == 4 * 2
    dist = tmp_path / "dist"
    publish(out, dist, forms=("webdataset", "parquet"))
    index = json.loads((dist / "webdataset" / "index.json").read_text())
    seen = []
    for cell, brace in index["cells"].items():
        for sample in wds.WebDataset(str(dist / "webdataset" / brace), shardshuffle=False):
            meta = json.loads(sample["json"])
            key = (meta["corruption"], str(meta["level"]), meta["source_file"])
            assert cell == f"{key[0]}/{key[1]}" and sample["jpg"] == tree[key]
            assert (out / key[0] / key[1] / meta["wnid"] / key[2]).is_file()
            assert int(sample["cls"]) == meta["label"] == classes.index(meta["wnid"])
            seen.append(key)
    assert sorted(seen) == sorted(tree)
    name = next(iter(index["cells"])).split("/")[0]
    table = load_dataset(tmp_path, str(dist), f"{name}_5", split="validation")
    assert len(table) == 4 and table.features["label"].names == classes
    for row in table:
        path = out / name / "5" / classes[row["label"]] / row["source_file"]
        assert row["level"] == 5 and np.array_equal(np.asarray(row["image"]), np.asarray(Image.open(path)))
    lines = []
    assert verify(dist, source=str(source), sample=3, log=lines.append) == []
    assert any("regenerated 3" in line and "3 identical" in line for line in lines), lines
    assert "The paper gives no AlexNet errors for" in (dist / "README.md").read_text()
