"""Hostile and odd sources, in each reader's layout, on a real LocalCluster.

Each case checks what a careful user and an attacker would: nothing is written outside OUT,
the exit status, what ``failures.jsonl`` says, and that the good images' outputs are
byte-identical to a run over a source without the bad ones.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.engine import RunError, generate
from pipeline.readers import SourceError, read_source
from pipeline.runconfig import load_run_config

from .. import sources as fx

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"corruptions": ["contrast", "frost"], "severities": [2], "variant": "imagenet64", "shard_size": 2}


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as connected:
        yield connected


def config(source, out, reader="imagenet_folders", **settings):
    return load_run_config(None, [{"source": str(source), "out": str(out), "reader": reader, **SETTINGS,
                                   **settings}])


def run(source, out, client, reader="imagenet_folders", **settings):
    return generate(config(source, out, reader, **settings), client=client, stream=io.StringIO())


def cli(*args, cwd=ROOT, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.JPEG"))}


def files_under(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*")}


# ---------------------------------------------------------------- names that would escape OUT

def _flat_with_labels(root: Path, wnids: list[str]) -> Path:
    root.mkdir(parents=True)
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(len(wnids))]
    for name, image in zip(names, fx.small_photos(len(names))):
        image.save(root / name, quality=90)
    lines = ["ImageId,PredictionString"] + [f"{Path(n).stem},{w} 1 2 3 4" for n, w in zip(names, wnids)]
    (root / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("label", ["../../escape", "{tmp}/escape", "n0144076", "..", "n01440764/.."])
@pytest.mark.parametrize("reader", ["imagenet_flat", "imagenet_tar"])
def test_labels_that_are_paths_are_refused_before_any_work(tmp_path, reader, label):
    # the escapes aim at this test's own folder, and only it is searched for them
    label = label.replace("{tmp}", str(tmp_path))
    source = _flat_with_labels(tmp_path / "src", ["n01440764", label, "n01443537"])
    if reader == "imagenet_tar":
        with tarfile.open(tmp_path / "val.tar", "w") as archive:
            for path in sorted(source.glob("*.JPEG")):
                archive.add(path, arcname=path.name)
        (tmp_path / "LOC_val_solution.csv").write_bytes((source / "LOC_val_solution.csv").read_bytes())
        source = tmp_path / "val.tar"
    before = files_under(tmp_path)
    result = cli("generate", "imagenet-c", "--source", source, "--out", tmp_path / "out", "--set", f"reader={reader}",
                 "--only", "contrast", "--severities", "1", "--workers", "1")
    assert result.returncode == 2 and result.stderr.startswith("error:") and "wnid" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    assert not {p for p in files_under(tmp_path) - before if "escape" in p}


def test_tiny_imagenet_wnid_column_and_cifar_label_names_are_checked(tmp_path):
    tiny = fx.tiny_imagenet(tmp_path / "tiny", count=3)
    annotations = tiny / "val" / "val_annotations.txt"
    annotations.write_text(annotations.read_text().replace(fx.WNIDS[1], "../../evil", 1))
    with pytest.raises(SourceError, match="wnid"):
        read_source("tiny_imagenet", tiny)
    cifar = fx.cifar(tmp_path / "cifar", "cifar10", count=4)
    meta = cifar / "cifar-10-batches-py" / "batches.meta"
    with open(meta, "wb") as handle:
        pickle.dump({b"label_names": [b"../up"] + [f"class{i}".encode() for i in range(1, 10)]}, handle)
    with pytest.raises(SourceError, match="cannot be a folder name"):
        read_source("cifar10", cifar)
    with open(meta, "wb") as handle:
        pickle.dump({b"label_names": [b"only-one"]}, handle)
    with pytest.raises(SourceError, match="outside the 1 class names"):
        read_source("cifar10", cifar)


def test_the_writers_refuse_unsafe_names_as_a_second_line_of_defence(tmp_path):
    from pipeline.files import UnsafePath, inside
    from pipeline.formats import jpeg_tree
    from pipeline.readers import Item
    from pipeline.task import Block, Key
    item = Item("x", "x.JPEG", "..", 0, "file", "")
    block = Block(Key("contrast", 0, 0, 1), jpeg_tree.DIMS, (1,), np.zeros((1, 1, 8, 8, 3), np.uint8), (item,),
                  np.ones(1, bool))
    with pytest.raises(UnsafePath):
        jpeg_tree.Writer(str(tmp_path / "out")).write(block)
    for bad in ("..", "/etc", "a/b", "", "."):
        with pytest.raises(UnsafePath):
            inside(tmp_path, "ok", bad)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.JPEG"))


def test_names_and_folder_walks_refuse_what_would_leave_the_root(tmp_path):
    """``check_name`` refuses every unsafe name (separators, NUL, line breaks, dots, names over
    255 bytes) and keeps names up to the limit; ``FolderWalk`` (publish's reader) reuses the folders
    it opened and refuses a link planted in place of one, even after reading beside it."""
    from pipeline.files import FolderWalk, UnsafePath, check_name
    for bad in ("", ".", "..", "a/b", "a\\b", "a\x00b", "a\nb", "a\rb", "x\u2028", "x\x85", "/abs", "é" * 128,
                "a" * 256):
        with pytest.raises(UnsafePath):
            check_name(bad)
    for good in ("ILSVRC2012_val_00000001.JPEG", "é" * 127, "a" * 255, "n01440764", "..a", "a.."):
        assert check_name(good) == good
    root = tmp_path / "out"
    for name in ("fog/3/n01/a.JPEG", "fog/3/n01/b.JPEG", "fog/3/n02/c.JPEG", "fog/5/n01/d.JPEG"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(name.encode())
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "n09").mkdir(parents=True)
    (elsewhere / "n09" / "e.JPEG").write_bytes(b"outside")
    (root / "fog" / "3" / "n09").symlink_to(elsewhere / "n09")
    with FolderWalk(root) as walk:
        for name in ("fog/3/n01/a.JPEG", "fog/3/n01/b.JPEG", "fog/3/n02/c.JPEG", "fog/5/n01/d.JPEG",
                     "fog/3/n01/a.JPEG"):
            assert walk.read(name) == name.encode()
        with pytest.raises(UnsafePath):
            walk.read("fog/3/n09/e.JPEG")
        with pytest.raises(UnsafePath):
            walk.read("fog/3/n01/a.JPEG", limit=4)
        assert len(walk.chain) <= 4  # the root and at most one folder per level stay open


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    cifar = fx.cifar(tmp_path / "cifar", "cifar10", count=3)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(cifar / "cifar-10-batches-py" / "test_batch", "wb") as handle:
        pickle.dump({b"data": Payload(), b"labels": [0, 1, 2]}, handle)
    with pytest.raises(SourceError, match="refused"):
        read_source("cifar10", cifar)
    assert not marker.exists()


# ---------------------------------------------------------------- wrong data that used to pass silently

def test_another_source_or_another_name_into_a_finished_out_is_refused(tmp_path, client):
    first = fx.class_folders(tmp_path / "a", count=4)
    second = tmp_path / "b"
    shutil.copytree(first, second)
    victim = sorted(second.rglob("*.JPEG"))[1]
    Image.open(victim).transpose(Image.FLIP_LEFT_RIGHT).save(victim, quality=90)  # same names, other pixels
    run(first, tmp_path / "out", client)
    with pytest.raises(RunError, match="changed since"):
        run(second, tmp_path / "out", client)
    with pytest.raises(RunError, match="name"):
        run(first, tmp_path / "out", client, name="other")
    assert not (tmp_path / "out" / "other.zarr").exists()


def test_name_collisions_are_refused_with_the_names(tmp_path, client):
    nested = fx.class_folders(tmp_path / "nested", count=3)
    for sub in ("a", "b"):
        (nested / fx.WNIDS[0] / sub).mkdir()
        fx.small_photos(1)[0].save(nested / fx.WNIDS[0] / sub / "x.JPEG", quality=90)
    with pytest.raises(RunError, match=r"a/x.JPEG and .*b/x.JPEG"):
        run(nested, tmp_path / "o1", client)
    suffixes = fx.class_folders(tmp_path / "suffixes", count=3)
    for suffix in (".png", ".webp", ".JPEG"):
        fx.small_photos(1)[0].save(suffixes / fx.WNIDS[1] / f"foo{suffix}")
    with pytest.raises(RunError, match="foo.png and .*foo.webp"):
        run(suffixes, tmp_path / "o2", client)
    tar = fx.val_tar(tmp_path / "tar", count=3)
    with tarfile.open(tar, "a") as archive:
        data = (tmp_path / "tar" / "extra.JPEG")
        fx.small_photos(1)[0].save(data, quality=90)
        archive.add(data, arcname="ILSVRC2012_val_00000001.JPEG")  # a second member of that name
    with pytest.raises(RunError, match="ILSVRC2012_val_00000001.JPEG and"):
        run(tar, tmp_path / "o3", client, reader="imagenet_tar")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o3").exists()


def test_failed_rows_and_unfinished_stores_are_not_scored_as_black_images(tmp_path, client):
    from pipeline.formats import DataError, open_data
    source = tmp_path / "val"
    layout = fx.awkward_folders(source)
    out = tmp_path / "out"
    run(source, out, client, variant="imagenet")
    store = open_data(out / "imagenet-c.zarr")
    good = sum(v == "ok" for v in layout.values())
    assert store.count(("contrast", 2)) == good
    images, _ = store.read(("contrast", 2), 0, good)
    assert all(image.any() for image in images)
    import zarr
    group = zarr.open_group(out / "imagenet-c.zarr", mode="r+")
    group.attrs["complete"] = False
    with pytest.raises(DataError, match="incomplete"):
        open_data(out / "imagenet-c.zarr")
    assert open_data(out / "imagenet-c.zarr", allow_partial=True).count(("contrast", 2)) == good


def test_the_store_and_the_tree_give_the_scorer_the_same_pixels(tmp_path, client):
    from pipeline.formats import open_data
    from pipeline.scoring import batches, load_scoring_config
    source = fx.class_folders(tmp_path / "val", count=5)
    out = tmp_path / "out"
    run(source, out, client, variant="imagenet", corruptions=["shot_noise", "frost"], severities=[1, 4])
    zarr_dir = tmp_path / "store"
    (out / "imagenet-c.zarr").rename(zarr_dir)
    from pipeline.readers import imagenet_wnids
    tree, store = open_data(out, list(imagenet_wnids())), open_data(zarr_dir)
    config = load_scoring_config(None, {"device": "cpu", "workers": 0, "batch_size": 8})
    assert tree.cells() == store.cells()
    for cell in tree.cells():
        a = [(i.numpy(), lab.numpy()) for i, lab, _ in batches(tree, [cell], config, False)]
        b = [(i.numpy(), lab.numpy()) for i, lab, _ in batches(store, [cell], config, False)]
        assert np.array_equal(np.concatenate([x for x, _ in a]), np.concatenate([x for x, _ in b])), cell
        assert np.array_equal(np.concatenate([y for _, y in a]), np.concatenate([y for _, y in b])), cell


@pytest.mark.parametrize("kind", ["exif", "sixteen", "cmyk", "palette", "grey", "alpha"])
def test_the_scorer_decodes_clean_images_as_the_generator_does(tmp_path, kind):
    from corruptions.config import preprocess
    from pipeline.readers import Item, load_pixels
    from pipeline.scoring.loader import decode
    photo = fx.small_photos(1)[0].resize((300, 260))
    path = tmp_path / ("image.png" if kind in ("sixteen", "palette", "alpha") else "image.JPEG")
    if kind == "exif":
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees on display
        photo.save(path, quality=90, exif=exif.tobytes())
    elif kind == "sixteen":
        Image.fromarray((np.asarray(photo.convert("L"), np.uint16) * 257)).save(path)
    elif kind == "cmyk":
        photo.convert("CMYK").save(path, quality=90)
    elif kind == "palette":
        photo.convert("P").save(path)
    elif kind == "grey":
        photo.convert("L").save(path, quality=90)
    else:
        photo.convert("RGBA").save(path)
    expected = preprocess(load_pixels(Item("x", path.name, "n", 0, "file", str(path))), "imagenet")
    assert np.array_equal(decode(str(path), 224, 256), expected)


# ---------------------------------------------------------------- faults

def test_fifos_and_odd_tar_members_are_reported_not_hung_on(tmp_path, client):
    source = fx.class_folders(tmp_path / "val", count=4)
    reference = fx.class_folders(tmp_path / "reference", count=4)
    os.mkfifo(source / fx.WNIDS[0] / "fifo.JPEG")
    os.symlink("/nonexistent/image.JPEG", source / fx.WNIDS[1] / "broken.JPEG")
    out = tmp_path / "out"
    summary = run(source, out, client)
    run(reference, tmp_path / "ref", client)
    reasons = {Path(f["path"]).name: f["reason"] for f in summary.failures}
    assert "FIFO" in reasons["fifo.JPEG"] and "broken link" in reasons["broken.JPEG"]
    assert outputs(out) == outputs(tmp_path / "ref")
    lines = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert {Path(line["path"]).name for line in lines} == {"fifo.JPEG", "broken.JPEG"}
    tar = fx.val_tar(tmp_path / "tar", count=3)
    with tarfile.open(tar, "a") as archive:
        for name, kind in (("link.JPEG", tarfile.SYMTYPE), ("dir.JPEG", tarfile.DIRTYPE), ("pipe.JPEG", tarfile.FIFOTYPE),
                           ("hard.JPEG", tarfile.LNKTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "ILSVRC2012_val_00000001.JPEG" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            archive.addfile(info)
    listed = read_source("imagenet_tar", tar)
    assert len(listed.items) == 3
    assert sorted(r["reason"].split("(")[1].rstrip(")") for r in listed.rejected) == [
        "a FIFO", "a folder", "a hard link", "a symbolic link"]


def test_too_large_images_are_reported_before_decoding(tmp_path, client):
    source = fx.class_folders(tmp_path / "val", count=3)
    Image.new("RGB", (3000, 2000), (90, 120, 30)).save(source / fx.WNIDS[2] / "huge.png")
    summary = run(source, tmp_path / "out", client, max_pixels=5_000_000)
    assert [Path(f["path"]).name for f in summary.failures] == ["huge.png"]
    assert "too large: 3000 x 2000" in summary.failures[0]["reason"]


def test_two_runs_on_one_out_at_once_are_refused_and_a_stale_lock_taken_over(tmp_path, client):
    from pipeline.files import FolderLock
    source = fx.class_folders(tmp_path / "val", count=2)
    out = tmp_path / "out"
    out.mkdir()
    with FolderLock(out):
        with pytest.raises(RunError, match=rf"in use by a run of pid {os.getpid()}"):
            run(source, out, client)
    (out / ".lock").write_text("pid 999999 on a-host-long-gone\n")  # a dead holder's file, no lock held
    assert run(source, out, client).units_run == 2 * 1


def test_out_inside_the_source_or_a_file_is_refused(tmp_path, client):
    source = fx.class_folders(tmp_path / "val", count=2)
    for out in (source, source / "inside"):
        with pytest.raises(RunError, match="inside the source"):
            run(source, out, client)
    (tmp_path / "a-file").write_text("x")
    for out in (tmp_path / "a-file", tmp_path / "a-file" / "below"):
        with pytest.raises(RunError, match="is a file"):
            run(source, out, client)


def test_failure_reasons_are_the_same_text_in_every_run(tmp_path, client):
    tar = fx.val_tar(tmp_path / "tar", count=3)
    with tarfile.open(tar, "a") as archive:
        info = tarfile.TarInfo("ILSVRC2012_val_00000009.JPEG")
        payload = b"not an image at all" * 10
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    texts = []
    for attempt in range(2):
        run(tar, tmp_path / f"out{attempt}", client, reader="imagenet_tar")
        texts.append((tmp_path / f"out{attempt}" / "failures.jsonl").read_text())
    assert texts[0] == texts[1] and "0x" not in texts[0] and "ILSVRC2012_val_00000009.JPEG" in texts[0]


def test_a_run_where_the_workers_cannot_see_the_source_stops(tmp_path):
    from pipeline.engine import MissingSource, _check_record
    record = {"shard": 3, "images": 0, "failures": [
        {"reason": "FileNotFoundError: [Errno 2] No such file or directory: 'val/a.JPEG'"}] * 4}
    with pytest.raises(MissingSource, match="do the workers see the source"):
        _check_record(record, type("P", (), {"source": type("S", (), {"root": "/data/val"})})())
    record["failures"][0] = {"reason": "UnidentifiedImageError: cannot identify image file"}
    _check_record(record, None)  # a shard of damaged files is an ordinary, reported failure


def test_a_relative_source_with_a_scheduler_is_resolved_on_the_client(tmp_path, client):
    fx.class_folders(tmp_path / "val", count=3)
    address = client.scheduler.address
    result = cli("generate", "imagenet-c", "--source", "val", "--out", "out", "--scheduler", address, "--only",
                 "contrast", "--severities", "1", "--variant", "imagenet64", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").rglob("*.JPEG"))) == 3
    assert (tmp_path / "out" / "failures.jsonl").read_text() == ""


def test_only_worker_killed_and_every_worker_killed_runs_still_finish(tmp_path):
    import signal
    import threading
    import time

    from distributed import Client, LocalCluster
    source = fx.class_folders(tmp_path / "val", count=6)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as two:
        run(source, tmp_path / "reference", two, shard_size=1)
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40) as cluster, Client(cluster) as connected:
            result = {}
            thread = threading.Thread(target=lambda: result.update(s=run(source, out, connected, shard_size=1)))
            thread.start()
            manifest = out / "manifest.jsonl"
            while thread.is_alive() and not (manifest.exists() and manifest.read_text().count("\n") >= 2):
                time.sleep(0.01)
            for pid in connected.run(os.getpid).values():  # all of them at once
                os.kill(pid, signal.SIGKILL)
            thread.join(timeout=300)
            assert result["s"].units_run == 12
        assert outputs(out) == outputs(tmp_path / "reference"), workers


def test_ctrl_c_is_one_line_exit_130_and_resumable(tmp_path):
    import signal
    import time
    source = fx.class_folders(tmp_path / "val", count=6)
    args = ["generate", "imagenet-c", "--source", source, "--workers", "2", "--shard-size", "1", "--only",
            "contrast", "frost", "--severities", "2", "--variant", "imagenet64"]
    assert cli(*args, "--out", tmp_path / "reference").returncode == 0
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "pipeline", *map(str, args), "--out", str(out)], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 120
    while process.poll() is None and not (manifest.exists() and manifest.read_text().count("\n") >= 2):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)  # as the terminal does: the whole process group
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.count("interrupted; re-run the same command to resume") == 1
    assert len([line for line in stderr.splitlines() if line.strip() and "images/s" not in line
                and "%|" not in line and not line.startswith("dashboard")]) == 1, stderr
    assert cli(*args, "--out", out).returncode == 0
    assert outputs(out) == outputs(tmp_path / "reference")


# ---------------------------------------------------------------- clear errors, one line

@pytest.mark.parametrize("case", ["noequals", "memory", "out-file", "gzip-tar", "cifar-label", "scheduler"])
def test_user_mistakes_are_one_error_line_before_anything_is_created(tmp_path, case):
    import time
    source = fx.class_folders(tmp_path / "val", count=2)
    out = tmp_path / "out"
    extra = []
    if case == "noequals":
        extra = ["--set", "noequals"]
    elif case == "memory":
        extra = ["--set", "cluster.memory_limit=lots"]
    elif case == "out-file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "below"
    elif case == "gzip-tar":
        tar = fx.val_tar(tmp_path / "tar", count=2)
        import gzip
        (tmp_path / "tar" / "val.tar").write_bytes(gzip.compress(tar.read_bytes()))
        shutil.copy(tmp_path / "tar" / "LOC_val_solution.csv", tmp_path / "tar" / "x.csv")
        source = tmp_path / "tar" / "val.tar"
        extra = ["--set", "reader=imagenet_tar"]
    elif case == "cifar-label":
        source = fx.cifar(tmp_path / "cifar", "cifar10", count=3)
        with open(source / "cifar-10-batches-py" / "test_batch", "wb") as handle:
            pickle.dump({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1, 12]}, handle)
        extra = ["--set", "reader=cifar10"]
    else:
        extra = ["--scheduler", "tcp://127.0.0.1:9"]  # nothing listens there
    started = time.monotonic()
    result = cli("generate", "imagenet-c", "--source", source, "--out", out, "--only", "contrast", "--severities", "1",
                 "--workers", "1", *extra, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not out.exists()
    if case == "scheduler":
        assert time.monotonic() - started < 30


def test_report_and_weights_mistakes_are_one_error_line(tmp_path):
    (tmp_path / "notjson.json").write_text("{")
    (tmp_path / "other.json").write_text('{"a": 1}')
    for path in (tmp_path / "missing.json", tmp_path / "notjson.json", tmp_path / "other.json"):
        result = cli("report", path)
        assert result.returncode == 2 and result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    from tests import scoring_data
    model = scoring_data.write_model(tmp_path)
    import torch
    torch.save({"unexpected.weight": torch.zeros(3)}, tmp_path / "w.pth")
    tree = scoring_data.cifar_folder(tmp_path / "cifar", ["fog"])
    result = cli("score", "--model", f"{model}:cifar", "--weights", tmp_path / "w.pth", "--data", tree,
                 "--device", "cpu", "--workers", "0")
    assert result.returncode == 2 and "do not fit the model" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- extending a finished run

def test_more_corruptions_or_formats_extend_a_finished_run(tmp_path, client):
    source = fx.class_folders(tmp_path / "val", count=3)
    out = tmp_path / "out"
    first = run(source, out, client, corruptions=["contrast"], outputs={"formats": ["zarr", "jpeg"]})
    again = run(source, out, client, corruptions=["contrast"], outputs={"formats": ["jpeg", "zarr"]})
    assert first.units_run == 2 and again.units_run == 0
    before = outputs(out)
    more = run(source, out, client, corruptions=["contrast", "frost"])
    assert more.units_run == 2 and more.units_skipped == 2
    after = outputs(out)
    assert {k: v for k, v in after.items() if k.startswith("contrast")} == before
    import zarr
    group = zarr.open_group(out / "imagenet-c.zarr", mode="r")
    assert group.attrs["complete"] and {"contrast", "frost"} <= set(group.group_keys())


def test_help_says_what_every_argument_is():
    text = " ".join(cli("generate", "--help").stdout.split())
    for flag, words in (("--seed", "root seed"), ("--shard-size", "source images per unit of work"),
                        ("--variant", "imagenet, inception"), ("--labels", "LOC_val_solution.csv")):
        assert words in text.split(flag, 2)[-1][:300], flag
    assert "results.json files" in cli("report", "--help").stdout


def test_labels_file_anywhere_for_the_flat_layout(tmp_path, client):
    source = fx.flat_folder(tmp_path / "Data" / "CLS-LOC" / "val", count=3)
    elsewhere = tmp_path / "LOC_val_solution.csv"
    (source / "LOC_val_solution.csv").rename(elsewhere)
    with pytest.raises(SourceError, match="--labels"):
        read_source("imagenet_flat", source)
    summary = run(source, tmp_path / "out", client, reader="imagenet_flat", labels=str(elsewhere))
    assert summary.failures == [] and len(list((tmp_path / "out" / "contrast").rglob("*.JPEG"))) == 3


def test_an_image_that_kills_every_worker_it_reaches_becomes_a_reported_failure(tmp_path):
    """Its shard kills workers on every try (out of memory); the shard is then loaded image by
    image, the killer is reported and the run goes on. Bounded: were the one worker not restarted
    (it once was not, on a busy machine, and the run waited for ever), the run would stop after
    cluster.no_worker_timeout."""
    import dask
    from distributed import Client, LocalCluster
    source = fx.class_folders(tmp_path / "val", count=3)
    reference = fx.class_folders(tmp_path / "reference", count=3)
    Image.new("L", (20000, 20000), 40).save(source / fx.WNIDS[0] / "bomb.png")  # 400 MP, a small file
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                          memory_limit="600MiB", silence_logs=50) as cluster, Client(cluster) as small:
            summary = run(source, tmp_path / "out", small, max_pixels=10**9, shard_size=4,
                          cluster={"no_worker_timeout": 180})
            run(reference, tmp_path / "ref", small, shard_size=4)
    assert [Path(f["path"]).name for f in summary.failures] == ["bomb.png"]
    assert summary.failures[0]["reason"].startswith("KilledWorker")
    assert outputs(tmp_path / "out") == outputs(tmp_path / "ref")


def test_a_full_disk_stops_cleanly_and_resumes_to_identical_bytes(tmp_path):
    """On a 150 KiB file system (a tmpfs in a private mount namespace): one error line saying
    how much more is needed; after the space grows, the same command finishes with the bytes
    of an uninterrupted run."""
    import shlex
    source = fx.class_folders(tmp_path / "val", count=6)
    args = ["generate", "imagenet-c", "--source", str(source), "--workers", "1", "--shard-size", "1",
            "--only", "contrast", "frost", "--severities", "2", "--variant", "imagenet"]
    assert cli(*args, "--out", tmp_path / "reference").returncode == 0
    mount, out = tmp_path / "small", tmp_path / "small" / "out"
    mount.mkdir()
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "pipeline", *args, "--out", str(out)])
    script = f"""
        mount -t tmpfs -o size=150k tmpfs {mount} || exit 99
        cd {ROOT}
        PYTHONPATH={ROOT} {command} > {tmp_path}/first.out 2> {tmp_path}/first.err; echo $? > {tmp_path}/first.rc
        mount -o remount,size=64m {mount}
        PYTHONPATH={ROOT} {command} > {tmp_path}/second.out 2> {tmp_path}/second.err; echo $? > {tmp_path}/second.rc
        cp -r {out} {tmp_path}/copied
    """
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode != 99, f"no private tmpfs could be mounted here: {done.stderr}"
    errors = [line for line in (tmp_path / "first.err").read_text().splitlines() if line.startswith("error:")]
    assert (tmp_path / "first.rc").read_text().strip() == "2", (tmp_path / "first.err").read_text()
    assert len(errors) == 1 and "no space left" in errors[0] and "re-run the same command" in errors[0]
    assert "Traceback" not in (tmp_path / "first.err").read_text()
    assert (tmp_path / "second.rc").read_text().strip() == "0", (tmp_path / "second.err").read_text()
    assert outputs(tmp_path / "copied") == outputs(tmp_path / "reference")
