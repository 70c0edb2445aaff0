"""Releases: reproducible tarballs, SHA256SUMS, card, Croissant; verify and its failures."""
from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.engine import generate
from pipeline.publish import PublishError, publish, verify
from pipeline.runconfig import load_run_config

from .. import sources as fx
from .conftest import load_dataset, one_worker_client

SETTINGS = {"corruptions": ["gaussian_noise", "glass_blur", "frost", "contrast", "saturate"], "severities": [1, 3],
            "variant": "imagenet64"}


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=50) as cluster, Client(cluster) as connected:
        yield connected


def make_run(source, out, client, config="imagenet-c", **settings):
    generate(load_run_config(config, [{"source": str(source), "out": str(out), **settings}]), client=client,
             stream=io.StringIO())
    return out


@pytest.fixture(scope="module")
def release(tmp_path_factory, client):
    root = tmp_path_factory.mktemp("release")
    source = fx.class_folders(root / "val", count=7)
    out = make_run(source, root / "out", client, shard_size=3, **SETTINGS)
    publish(out, root / "dist")
    return root, source, out, root / "dist"


def digests(dist: Path) -> str:
    return (dist / "SHA256SUMS").read_text()


def test_the_release_layout_card_and_croissant(release):
    root, source, out, dist = release
    assert sorted(p.name for p in dist.glob("*.tar")) == ["blur.tar", "digital.tar", "extra.tar", "noise.tar",
                                                          "weather.tar"]
    with tarfile.open(dist / "weather.tar") as archive:
        files = [m for m in archive.getmembers() if m.isfile()]
        assert {m.name.split("/")[0] for m in files} == {"frost"}
        assert len(files) == 7 * 2 and all(m.mtime == files[0].mtime and m.uid == 0 and m.uname == "" and
                                           m.mode == 0o644 for m in files)
        assert [m.name for m in archive.getmembers()] == sorted(m.name for m in archive.getmembers())
        for member in files:
            assert archive.extractfile(member).read() == (out / member.name).read_bytes()
    with tarfile.open(dist / "extra.tar") as archive:
        assert {m.name.split("/")[0] for m in archive.getmembers()} == {"saturate"}
    lines = digests(dist).splitlines()
    assert {line.split("  ")[1] for line in lines} >= {"noise.tar", "README.md", "croissant.json", "run.json",
                                                       "MEMBERS/noise.tar.sha256"}
    card = (dist / "README.md").read_text()
    for words in ("Hendrycks", "@inproceedings", "seed 0", "sha256sum -c SHA256SUMS", "python -m pipeline score",
                  "terms of access", "in distribution", "| frost | 7 | 7 |", "numpy"):
        assert words in card, words
    # AlexNet's errors as the paper's Appendix D (means) and the author's per-severity list give them
    for words in ("## Measures: CE and mCE", "over the benchmark's 15 corruptions (not the 4 extra ones)",
                  "| gaussian_noise | 69.5 | 82.5 | 93.6 | 98.1 | 99.5 | 88.6 |", "| glass_blur |",
                  "| saturate | - | - | - | - | - | 65.8 |", "clean 43.5"):
        assert words in card, words
    metadata = json.loads((dist / "croissant.json").read_text())
    assert metadata["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    assert [c["name"] for c in metadata["creator"]] == ["Dan Hendrycks", "Thomas Dietterich"]
    assert metadata["datePublished"] and metadata["license"] and metadata["citeAs"].startswith("@inproceedings")
    for field in ("rai:dataLimitations", "rai:dataBiases", "rai:dataUseCases", "rai:dataCollection",
                  "rai:personalSensitiveInformation"):
        assert metadata[field], field
    assert "Not for training" in metadata["rai:dataUseCases"] and "ImageNet" in metadata["rai:dataBiases"]
    assert all(f.get("sha256") for f in metadata["distribution"] if f["@type"] == "cr:FileObject")
    records = croissant_records(dist, root / "cache")
    assert len(records) == 5 * 2 * 7
    assert {(r[0], r[1]) for r in records} == {(c, s) for c in SETTINGS["corruptions"] for s in (1, 3)}
    assert {r[2] for r in records} == set(fx.WNIDS)
    assert all(r[3] == [64, 64] for r in records)


def croissant_records(dist: Path, cache: Path) -> list:
    """The image record set as mlcroissant reads it from the tarballs (a fresh process and
    cache: mlcroissant caches files by their relative URL)."""
    import os
    import subprocess
    import sys
    code = ("import json, sys, mlcroissant as mlc; d = mlc.Dataset(jsonld=sys.argv[1]); print(json.dumps("
            "[[r['images/corruption'].decode(), r['images/severity'], r['images/wnid'].decode(), "
            "list(r['images/image'].size)] for r in d.records('images')]))")
    done = subprocess.run([sys.executable, "-c", code, str(dist / "croissant.json")], capture_output=True, text=True,
                          env=dict(os.environ, CROISSANT_CACHE=str(cache)), check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tarballs_are_reproducible_across_publishes_and_regenerations(release, tmp_path):
    root, source, out, dist = release
    publish(out, tmp_path / "again", workers=1)
    assert digests(tmp_path / "again") == digests(dist)
    with one_worker_client() as one:
        regenerated = make_run(source, tmp_path / "regenerated", one, shard_size=2, **SETTINGS)
    publish(regenerated, tmp_path / "dist2")
    ours = {line.split("  ")[1]: line.split("  ")[0] for line in digests(dist).splitlines()}
    theirs = {line.split("  ")[1]: line.split("  ")[0] for line in digests(tmp_path / "dist2").splitlines()}
    assert all(ours[name] == theirs[name] for name in ours if name.endswith(".tar") or name.startswith("MEMBERS"))
    # the streaming forms too: every shard, parquet file (RobustBench's included) and member list
    forms = ("tree", "webdataset", "parquet")
    publish(out, tmp_path / "forms1", forms=forms, shard_bytes=10 << 10)
    publish(regenerated, tmp_path / "forms2", forms=forms, shard_bytes=10 << 10, workers=1)
    ours = {k: v for k, v in (line.split("  ")[::-1] for line in digests(tmp_path / "forms1").splitlines())
            if k not in ("run.json", "README.md", "croissant.json")}
    theirs = {line.split("  ")[1]: line.split("  ")[0] for line in digests(tmp_path / "forms2").splitlines()}
    assert any(k.startswith("webdataset/") for k in ours) and any(k.startswith("data/") for k in ours)
    assert all(theirs[name] == digest for name, digest in ours.items())
    # an interrupted publish (a half-written tarball left behind) re-run gives the same bytes
    broken = tmp_path / "broken"
    shutil.copytree(dist, broken)
    (broken / "noise.tar").unlink()
    (broken / ".noise.tar.part").write_bytes(b"half a tarball")
    publish(out, broken)
    assert digests(broken) == digests(dist) and not list(broken.glob(".*.part"))
    gz1, gz2 = tmp_path / "gz1", tmp_path / "gz2"
    publish(out, gz1, compress="gzip")
    publish(out, gz2, compress="gzip", workers=1)
    assert digests(gz1) == digests(gz2) and (gz1 / "noise.tar.gz").is_file()
    assert verify(gz1, log=lambda *a: None) == []


def test_verify_passes_and_regenerates_a_sample(release, tmp_path):
    root, source, out, dist = release
    lines = []
    assert verify(dist, str(source), sample=12, log=lines.append) == []
    assert any("regenerated 12 images" in line and "12 identical" in line for line in lines)
    assert any(line.strip().startswith("frost") and "1: 7" in line for line in lines)
    changed = tmp_path / "val"
    shutil.copytree(source, changed)
    from PIL import Image
    for path in sorted(changed.rglob("*.JPEG")):
        Image.open(path).rotate(90).save(path, quality=92)  # every source image now differs
    problems = verify(dist, str(changed), sample=4, log=lambda *a: None)
    assert len([p for p in problems if p.startswith("regeneration:") and "differs" in p]) == 4


def _retar(dist: Path, name: str, edit) -> None:
    """Rewrite a tarball with its members edited, and SHA256SUMS to match, so only the member
    checks can see the change."""
    import hashlib
    with tarfile.open(dist / name) as archive:
        members = [(m, archive.extractfile(m).read() if m.isfile() else None) for m in archive.getmembers()]
    members = edit(members)
    with tarfile.open(dist / name, "w", format=tarfile.GNU_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    sums = dist / "SHA256SUMS"
    digest = hashlib.sha256((dist / name).read_bytes()).hexdigest()
    sums.write_text("".join(f"{digest}  {name}\n" if line.endswith(f"  {name}") else line + "\n"
                            for line in sums.read_text().splitlines()))


@pytest.mark.parametrize("damage, expected", [
    ("flipped byte", "sha256 differs"),
    ("missing member", "is missing"),
    ("extra member", "extra member"),
    ("renamed tarball", "listed in SHA256SUMS but missing"),
    ("truncated tarball", "sha256 differs"),
    ("bad SHA256SUMS line", "not '<sha256>  <file>'"),
    ("member outside its folder", "outside its folder"),
])
def test_verify_names_each_kind_of_damage(release, tmp_path, damage, expected):
    root, source, out, dist = release
    broken = tmp_path / "dist"
    shutil.copytree(dist, broken)
    target = broken / "blur.tar"
    if damage == "flipped byte":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "missing member":
        _retar(broken, "blur.tar", lambda members: [m for m in members if not m[0].name.endswith("00000002.JPEG")])
    elif damage == "extra member":
        def add(members):
            info = tarfile.TarInfo("glass_blur/1/n01440764/intruder.JPEG")
            info.size = 4
            return members + [(info, b"evil")]
        _retar(broken, "blur.tar", add)
    elif damage == "renamed tarball":
        target.rename(broken / "blurry.tar")
    elif damage == "truncated tarball":
        target.write_bytes(target.read_bytes()[:10000])
    elif damage == "bad SHA256SUMS line":
        sums = broken / "SHA256SUMS"
        sums.write_text(sums.read_text() + "not a checksum line\n")
    else:
        def escape(members):
            info = tarfile.TarInfo("../../escaped.JPEG")
            info.size = 4
            return members + [(info, b"evil")]
        _retar(broken, "blur.tar", escape)
    problems = verify(broken, log=lambda *a: None)
    assert any(expected in p for p in problems), problems
    if damage == "truncated tarball":
        assert any("cannot be read to the end" in p for p in problems), problems
    assert not (tmp_path / "escaped.JPEG").exists()


def test_cifar_and_tiny_releases_have_their_official_layouts(tmp_path, client):
    cifar = make_run(fx.cifar(tmp_path / "c", "cifar10", count=4), tmp_path / "cout", client, config="cifar-10-c",
                     corruptions=["fog", "contrast"], shard_size=2)
    publish(cifar, tmp_path / "cdist")
    with tarfile.open(tmp_path / "cdist" / "CIFAR-10-C.tar") as archive:
        names = [m.name for m in archive.getmembers() if m.isfile()]
    assert names == ["CIFAR-10-C/contrast.npy", "CIFAR-10-C/fog.npy", "CIFAR-10-C/labels.npy"]
    assert verify(tmp_path / "cdist", log=lambda *a: None) == []
    import mlcroissant as mlc
    mlc.Dataset(jsonld=str(tmp_path / "cdist" / "croissant.json"))
    tiny = make_run(fx.tiny_imagenet(tmp_path / "t", count=3), tmp_path / "tout", client, config="tiny-imagenet-c",
                    corruptions=["fog"], severities=[2])
    publish(tiny, tmp_path / "tdist")
    with tarfile.open(tmp_path / "tdist" / "Tiny-ImageNet-C.tar") as archive:
        names = [m.name for m in archive.getmembers() if m.isfile()]
    assert len(names) == 3 and all(n.startswith("Tiny-ImageNet-C/fog/2/n0") for n in names)


def test_an_unfinished_run_is_not_published(release, tmp_path):
    root, source, out, dist = release
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    lines = (partial / "manifest.jsonl").read_text().splitlines()
    (partial / "manifest.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(PublishError, match="not finished"):
        publish(partial, tmp_path / "never")
    changed = tmp_path / "changed"
    shutil.copytree(out, changed)
    victim = next(changed.glob("frost/1/*/*.JPEG"))
    victim.write_bytes(victim.read_bytes()[:-10])
    with pytest.raises(PublishError, match="changed since it was generated"):
        publish(changed, tmp_path / "never2", check=True)
    publish(changed, tmp_path / "unchecked")  # without --check, verify finds the changed member
    problems = verify(tmp_path / "unchecked", log=lambda *a: None)
    assert any(victim.name in p and "differs from its listed sha256" in p for p in problems), problems
    assert json.loads((dist / "run.json").read_text())["config"]["seed"] == 0


def test_the_webdataset_form_streams_every_cell_with_the_trees_bytes(release, tmp_path):
    """``publish --format tree webdataset``: read back by the real ``webdataset`` library, each
    cell's shards yield every image of that cell, the JPEG bytes equal to the tree's, with its
    class index, corruption and level; the wids index counts them; verify passes, and the tree
    part of the release is the tree-only release byte for byte."""
    import webdataset as wds

    from pipeline.readers import imagenet_wnids
    root, source, out, dist = release
    both = tmp_path / "both"
    publish(out, both, forms=("tree", "webdataset"), shard_bytes=10 << 10)  # small shards: cells span several
    tree_sums = {line for line in digests(dist).splitlines() if not line.endswith(("README.md", "croissant.json"))}
    assert tree_sums <= set(digests(both).splitlines())
    index = json.loads((both / "webdataset" / "index.json").read_text())
    assert index["__kind__"] == "wids-shard-index-v1"
    assert sum(shard["nsamples"] for shard in index["shardlist"]) == 7 * 2 * len(SETTINGS["corruptions"])
    assert any(not brace.endswith("{000000..000000}.tar") for brace in index["cells"].values())  # split cells
    standard = {wnid: i for i, wnid in enumerate(imagenet_wnids())}
    for cell, brace in index["cells"].items():
        corruption, level = cell.split("/")
        samples = list(wds.WebDataset(str(both / "webdataset" / brace), shardshuffle=False))
        tree = sorted((out / corruption / level).rglob("*.JPEG"))
        assert len(samples) == len(tree) == 7
        for sample in samples:
            meta = json.loads(sample["json"])
            assert (meta["corruption"], meta["level"]) == (corruption, int(level))
            assert sample["jpg"] == (out / corruption / level / meta["wnid"] / meta["source_file"]).read_bytes()
            assert int(sample["cls"]) == meta["label"] == standard[meta["wnid"]]
    assert verify(both, log=lambda *a: None) == []
    again = tmp_path / "again"
    publish(out, again, forms=("webdataset",), shard_bytes=10 << 10, workers=1)
    shards = {line for line in digests(both).splitlines() if "webdataset/" in line}
    assert shards and shards <= set(digests(again).splitlines())  # reproducible, whatever else is published
    assert not list(again.glob("*.tar")) and verify(again, log=lambda *a: None) == []


def test_a_damaged_shard_or_a_lying_index_is_named_by_verify(release, tmp_path):
    root, source, out, dist = release
    wds_dist = tmp_path / "wds"
    publish(out, wds_dist, forms=("webdataset",))
    shard = sorted((wds_dist / "webdataset").glob("*.tar"))[0]
    data = bytearray(shard.read_bytes())
    data[1024] ^= 0xFF  # a byte inside the first sample
    shard.write_bytes(bytes(data))
    index = wds_dist / "webdataset" / "index.json"
    index.write_text(index.read_text().replace('"nsamples": 7', '"nsamples": 8', 1))
    problems = verify(wds_dist, log=lambda *a: None)
    assert any(p.startswith(f"webdataset/{shard.name}: sha256 differs") for p in problems)
    assert any(p.startswith("webdataset/index.json: sha256 differs") for p in problems)
    # the same lie with SHA256SUMS made to agree: the index is checked against the member lists
    sums = wds_dist / "SHA256SUMS"
    import hashlib
    lines = [f"{hashlib.sha256(index.read_bytes()).hexdigest()}  webdataset/index.json" if line.endswith(
        "webdataset/index.json") else line for line in sums.read_text().splitlines()]
    sums.write_text("\n".join(lines) + "\n")
    assert any("samples, the index says 8" in p for p in verify(wds_dist, log=lambda *a: None))
    with pytest.raises(PublishError, match="shard-mb"):
        publish(out, tmp_path / "none", forms=("webdataset",), shard_bytes=0)


@pytest.mark.parametrize("form, folder", [("webdataset", "webdataset"), ("parquet", "data")])
def test_a_link_planted_as_a_forms_folder_is_refused(release, tmp_path, form, folder):
    """DIST/webdataset or DIST/data linked elsewhere: publish stops with an error, nothing lands there."""
    root, source, out, dist = release
    elsewhere, target = tmp_path / "elsewhere", tmp_path / "target"
    elsewhere.mkdir()
    target.mkdir()
    (target / folder).symlink_to(elsewhere)
    with pytest.raises(PublishError):
        publish(out, target, forms=(form,))
    assert list(elsewhere.iterdir()) == []


def test_the_parquet_form_loads_with_the_datasets_library(release, tmp_path, monkeypatch):
    """``publish --format parquet``: the real ``datasets`` library, offline, loads a cell's config
    (``fog_3``-style), with and without streaming, and a corruption's config: every image of the
    cell, its JPEG bytes equal to the tree's, its class index among the 1000 wnids, corruption and
    level; publishing again (other shard size: other files) or into another folder gives the same
    bytes for the same shard size; verify passes."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    from pipeline.readers import imagenet_wnids
    root, source, out, dist = release
    hub = tmp_path / "hub"
    publish(out, hub, forms=("parquet",), shard_bytes=8 << 10)  # small files: cells span several
    assert verify(hub, log=lambda *a: None) == []
    standard = {wnid: i for i, wnid in enumerate(imagenet_wnids())}
    corruption = SETTINGS["corruptions"][0]
    for level in SETTINGS["severities"]:
        cell = f"{corruption}_{level}"
        assert len(list((hub / "data" / cell).glob("*.parquet"))) > 1
        table = load_dataset(tmp_path, str(hub), cell, split="validation").cast_column("image",
                                                                                      datasets.Image(decode=False))
        streamed = list(load_dataset(tmp_path, str(hub), cell, split="validation", streaming=True))
        tree = sorted((out / corruption / str(level)).rglob("*.JPEG"))
        assert len(table) == len(streamed) == len(tree) == 7
        assert table.features["label"].names == list(imagenet_wnids())
        for row, decoded in zip(table, streamed):
            wnid = table.features["label"].names[row["label"]]
            path = out / corruption / str(level) / wnid / row["source_file"]
            assert (row["corruption"], row["level"]) == (corruption, level) and row["label"] == standard[wnid]
            assert row["image"]["bytes"] == path.read_bytes()
            assert np.array_equal(np.asarray(decoded["image"].convert("RGB")),
                                  np.asarray(Image.open(path).convert("RGB")))
    everything = load_dataset(tmp_path, str(hub), corruption, split="validation")
    assert sorted(set(everything["level"])) == sorted(SETTINGS["severities"]) and len(everything) == 7 * 2
    again = tmp_path / "again"
    publish(out, again, forms=("parquet", "tree"), shard_bytes=8 << 10, workers=1)
    tables = {line for line in digests(hub).splitlines() if "data/" in line}
    assert tables and tables <= set(digests(again).splitlines())
    # an interrupted publish (a file missing, a half-written one left, a stale one of another release)
    # re-run gives the same release
    first = sorted((hub / "data").rglob("*.parquet"))[0]
    first.unlink()
    (first.parent / f".{first.name}.part").write_bytes(b"half a file")
    (first.parent / "validation-00009-of-00010.parquet").write_bytes(b"an older release's file")
    publish(out, hub, forms=("parquet",), shard_bytes=8 << 10)
    assert {line for line in digests(hub).splitlines() if "data/" in line} == tables
    assert not list((hub / "data").rglob(".*.part")) and verify(hub, log=lambda *a: None) == []


def test_a_parquet_file_with_another_schema_or_other_rows_is_named_by_verify(release, tmp_path):
    """Tampered files whose checksums were rewritten to match: verify still names them."""
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq
    root, source, out, dist = release
    hub = tmp_path / "hub"
    publish(out, hub, forms=("parquet",))
    files = sorted((hub / "data").rglob("*.parquet"))
    wrong_schema, other_rows = files[0], files[1]
    table = pq.read_table(wrong_schema)
    pq.write_table(table.drop_columns(["source_file"]), wrong_schema)
    moved = pq.read_table(files[2])
    pq.write_table(pa.concat_tables([pq.read_table(other_rows), moved]), other_rows)
    sums = (hub / "SHA256SUMS").read_text().splitlines()
    fixed = []
    for line in sums:
        digest, name = line.split("  ", 1)
        fixed.append(f"{hashlib.sha256((hub / name).read_bytes()).hexdigest()}  {name}")
    (hub / "SHA256SUMS").write_text("\n".join(fixed) + "\n")
    problems = verify(hub, log=lambda *a: None)
    relative = lambda path: str(path.relative_to(hub))  # noqa: E731
    assert any(p.startswith(relative(wrong_schema)) and "schema" in p for p in problems)
    assert any(p.startswith(relative(other_rows)) and "holds rows of" in p for p in problems)


def test_the_webdataset_shards_load_with_the_datasets_library(release, tmp_path, monkeypatch):
    """``load_dataset("webdataset", data_files=<a cell's shards>)``, offline: every image of the
    cell with the tree's JPEG bytes, its class index and its metadata."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets
    root, source, out, dist = release
    shards = tmp_path / "shards"
    publish(out, shards, forms=("webdataset",), shard_bytes=10 << 10)
    corruption, level = SETTINGS["corruptions"][1], SETTINGS["severities"][-1]
    files = sorted(str(p) for p in (shards / "webdataset").glob(f"{corruption}-{level}-*.tar"))
    assert len(files) > 1  # the cell spans several shards
    table = load_dataset(tmp_path, "webdataset", data_files={"validation": files}, split="validation")
    table = table.cast_column("jpg", datasets.Image(decode=False))
    assert len(table) == 7
    for row in table:
        meta = row["json"]
        assert (meta["corruption"], meta["level"]) == (corruption, level) and row["cls"] == meta["label"]
        assert row["jpg"]["bytes"] == (out / corruption / str(level) / meta["wnid"] / meta["source_file"]).read_bytes()
