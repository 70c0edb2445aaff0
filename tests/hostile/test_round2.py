"""Hostile inputs, second round: links planted in output folders, tampered releases, bombs in
scored data, state that lies, and user files that would crash, hang or mislead. Each test names
the finding it covers; every one failed before the fix it guards."""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.engine import RunError, generate
from pipeline.files import FolderLock, UnsafePath, write_bytes
from pipeline.formats import DataError
from pipeline.publish import PublishError, publish, verify
from pipeline.runconfig import load_run_config

from .. import scoring_data as sfx
from .. import sources as fx

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"corruptions": ["contrast"], "severities": [2], "variant": "imagenet64", "shard_size": 2}
SECRET = b"-----BEGIN PRIVATE KEY----- not for the release\n"


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=50) as cluster, Client(cluster) as connected:
        yield connected


def run(source, out, client, **settings):
    config = load_run_config(None, [{"source": str(source), "out": str(out), **{**SETTINGS, **settings}}])
    return generate(config, client=client, stream=io.StringIO())


def cli(*args, timeout=300, env=None):
    environment = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(result) -> bool:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return (result.returncode == 2 and "Traceback" not in result.stderr and len(lines) >= 1
            and lines[-1].startswith("error:"))


@pytest.fixture
def victim(tmp_path):
    """A file outside every output folder that no write may touch."""
    path = tmp_path / "victim" / "id_rsa"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


# ---------------------------------------------------------------- writes never follow planted links

def test_a_lock_file_planted_as_a_link_or_hard_link_leaves_its_target_alone(tmp_path, victim):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").symlink_to(victim)
    with FolderLock(out):
        pass
    assert victim.read_bytes() == SECRET
    (out / ".lock").unlink()
    os.link(victim, out / ".lock")
    with FolderLock(out):
        pass
    assert victim.read_bytes() == SECRET


def test_a_final_name_that_is_a_link_or_hard_link_is_replaced_not_written_through(tmp_path, victim):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").symlink_to(victim)
    os.link(victim, out / "report.md")
    write_bytes(out, "run.json", b"{}")
    write_bytes(out, "report.md", b"# report")
    assert victim.read_bytes() == SECRET
    assert not (out / "run.json").is_symlink() and (out / "run.json").read_bytes() == b"{}"
    (out / "sub").symlink_to(victim.parent)
    with pytest.raises(UnsafePath, match="link"):
        write_bytes(out, "sub/x.JPEG", b"jpeg")
    assert sorted(p.name for p in victim.parent.iterdir()) == ["id_rsa"]
    with pytest.raises(UnsafePath):
        write_bytes(out, "../escaped", b"x")


def test_generate_refuses_links_planted_in_out_and_writes_nothing_through_them(tmp_path, victim, client):
    source = fx.class_folders(tmp_path / "val", count=4)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # a corruption folder linked elsewhere
    out = tmp_path / "out1"
    out.mkdir()
    (out / "contrast").symlink_to(elsewhere)
    with pytest.raises(RunError, match="link"):
        run(source, out, client)
    assert not list(elsewhere.rglob("*"))
    # a class folder inside OUT linked back into the source: the clean images stay clean
    before = {p: p.read_bytes() for p in source.rglob("*.JPEG")}
    out = tmp_path / "out2"
    (out / "contrast" / "2").mkdir(parents=True)
    (out / "contrast" / "2" / fx.WNIDS[0]).symlink_to(source / fx.WNIDS[0])
    with pytest.raises(RunError, match="link"):
        run(source, out, client)
    assert {p: p.read_bytes() for p in source.rglob("*.JPEG")} == before
    # the store linked elsewhere, and the manifest and the lock as links to a file
    out = tmp_path / "out3"
    out.mkdir()
    (out / "imagenet-c.zarr").symlink_to(elsewhere)
    with pytest.raises(RunError, match="link"):
        run(source, out, client, name="imagenet-c", outputs={"formats": ["zarr"]})
    assert not list(elsewhere.rglob("*"))
    out = tmp_path / "out4"
    out.mkdir()
    (out / "manifest.jsonl").symlink_to(victim)
    (out / ".lock").symlink_to(victim)
    with pytest.raises(RunError, match="link"):
        run(source, out, client)
    assert victim.read_bytes() == SECRET


def test_cifar_arrays_are_created_fresh_never_through_a_planted_part_file(tmp_path, victim, client):
    source = fx.cifar(tmp_path / "cifar", "cifar10", count=4)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".contrast.npy.part").symlink_to(victim)
    with pytest.raises(RunError, match="link"):
        run(source, out, client, reader="cifar10", variant="cifar", outputs={"formats": ["cifar_npy"]})
    assert victim.read_bytes() == SECRET


# ---------------------------------------------------------------- releases

@pytest.fixture(scope="module")
def release(tmp_path_factory, client):
    root = tmp_path_factory.mktemp("release")
    source = fx.class_folders(root / "val", count=4)
    out = root / "out"
    run(source, out, client)
    publish(out, root / "dist", workers=1)
    return root, source, out, root / "dist"


def test_publish_never_writes_through_links_in_dist(release, tmp_path, victim):
    root, source, out, dist = release
    target = tmp_path / "dist"
    target.mkdir()
    (target / "MEMBERS").symlink_to(victim.parent)
    with pytest.raises(PublishError, match="link"):
        publish(out, target, workers=1)
    assert sorted(p.name for p in victim.parent.iterdir()) == ["id_rsa"]
    (target / "MEMBERS").unlink()
    (target / ".digital.tar.part").symlink_to(victim)
    (target / "README.md").symlink_to(victim)
    publish(out, target, workers=1)
    assert victim.read_bytes() == SECRET
    assert verify(target, log=lambda *a: None) == []


def test_publish_packs_only_files_the_run_wrote(release, tmp_path, victim):
    root, source, out, dist = release
    copy = tmp_path / "out"
    shutil.copytree(out, copy, symlinks=True)
    member = next(copy.rglob("*.JPEG"))
    member.unlink()
    member.symlink_to(victim)
    with pytest.raises(PublishError, match="link"):
        publish(copy, tmp_path / "dist", workers=1, check=True)
    member.unlink()
    os.link(victim, member)
    with pytest.raises(PublishError):
        publish(copy, tmp_path / "dist2", workers=1, check=True)
    # a manifest naming a path outside OUT
    shutil.rmtree(copy)
    shutil.copytree(out, copy)
    manifest = copy / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    outputs = records[0]["outputs"]["jpeg"]
    name = next(iter(outputs))
    outputs[f"../../victim/{Path(name).name}"] = outputs.pop(name)
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(PublishError, match="not finished|cannot be published"):
        publish(copy, tmp_path / "dist3", workers=1)


def _sums(dist: Path) -> None:
    import hashlib
    lines = []
    for line in (dist / "SHA256SUMS").read_text().splitlines():
        name = line.split("  ", 1)[1]
        lines.append(f"{hashlib.sha256((dist / name).read_bytes()).hexdigest()}  {name}\n")
    (dist / "SHA256SUMS").write_text("".join(lines))


def test_verify_reads_every_gzip_member_of_a_release(release, tmp_path):
    root, source, out, dist = release
    gz = tmp_path / "gz"
    publish(out, gz, compress="gzip", workers=1)
    assert verify(gz, log=lambda *a: None) == []
    appended = io.BytesIO()
    with tarfile.open(fileobj=appended, mode="w", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo("contrast/2/n01440764/ILSVRC2012_val_00000001.JPEG")
        data = b"not the published image"
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("etc")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc"
        archive.addfile(link)
    with open(gz / "digital.tar.gz", "ab") as handle:
        handle.write(gzip.compress(appended.getvalue()))
    _sums(gz)
    problems = verify(gz, log=lambda *a: None)
    assert any("digital.tar.gz" in p and "more after its end-of-archive" in p for p in problems), problems
    assert verify(gz, source=str(source), log=lambda *a: None) != []


def test_verify_streams_members_through_the_hash(tmp_path):
    import tracemalloc
    dist = tmp_path / "dist"
    dist.mkdir()
    size = 64 << 20
    with gzip.open(dist / "big.tar.gz", "wb", compresslevel=1) as handle:
        with tarfile.open(fileobj=handle, mode="w|", format=tarfile.GNU_FORMAT) as archive:
            info = tarfile.TarInfo("big.bin")
            info.size = size
            archive.addfile(info, io.BytesIO(bytes(size)))
    import hashlib
    digest = hashlib.sha256(bytes(size)).hexdigest()
    (dist / "MEMBERS").mkdir()
    (dist / "MEMBERS" / "big.tar.gz.sha256").write_text(f"{digest}  big.bin\n")
    for name in ("README.md", "croissant.json", "run.json"):
        (dist / name).write_text("{}")
    (dist / "SHA256SUMS").write_text("".join(
        f"{hashlib.sha256((dist / n).read_bytes()).hexdigest()}  {n}\n"
        for n in ("big.tar.gz", "README.md", "croissant.json", "run.json", "MEMBERS/big.tar.gz.sha256")))
    tracemalloc.start()
    problems = verify(dist, log=lambda *a: None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert problems == [] and peak < 16 << 20, (problems, peak)


def test_verify_reports_damaged_listings_without_a_traceback(release, tmp_path):
    root, source, out, dist = release
    copy = tmp_path / "dist"
    shutil.copytree(dist, copy)
    (copy / "MEMBERS" / "digital.tar.sha256").write_bytes(b"\xff\xfe not utf-8\n")
    _sums(copy)
    result = cli("verify", copy)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "not UTF-8" in result.stderr
    (copy / "MEMBERS" / "digital.tar.sha256").write_text("no separator here\n")
    _sums(copy)
    result = cli("verify", copy)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "line 1" in result.stderr
    (copy / "SHA256SUMS").write_bytes(b"\xff\xfe\n")
    result = cli("verify", copy)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "not UTF-8" in result.stderr


def test_publish_again_into_an_older_release_leaves_one_release_that_verifies(release, tmp_path, client):
    root, source, out, dist = release
    target = tmp_path / "dist"
    shutil.copytree(dist, target)
    (target / "noise.tar").write_bytes(b"an earlier release's tarball")
    (target / "MEMBERS" / "noise.tar.sha256").write_text("")
    publish(out, target, workers=1)
    assert not (target / "noise.tar").exists() and verify(target, log=lambda *a: None) == []
    assert not (target / ".lock").exists()


def test_two_publishes_into_one_dist_do_not_interleave(release, tmp_path):
    root, source, out, dist = release
    target = tmp_path / "dist"
    target.mkdir()
    with FolderLock(target):
        with pytest.raises(PublishError, match="in use"):
            publish(out, target, workers=1)


def test_names_that_fold_to_one_file_are_not_published_as_two(tmp_path, client):
    source = tmp_path / "val"
    photos = fx.small_photos(2)
    for name, image in zip(("ILSVRC2012_val_A.JPEG", "ILSVRC2012_val_a.JPEG"), photos):
        (source / fx.WNIDS[0]).mkdir(parents=True, exist_ok=True)
        image.save(source / fx.WNIDS[0] / name, quality=90)
    out = tmp_path / "out"
    run(source, out, client)
    with pytest.raises(PublishError, match="case-insensitive"):
        publish(out, tmp_path / "dist", workers=1)


def test_publish_and_verify_errors_are_one_line(release, tmp_path):
    root, source, out, dist = release
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = cli("publish", out, "--to", blocker / "dist")
    assert one_error_line(result), result.stderr
    empty = tmp_path / "out"
    shutil.copytree(out, empty)
    (empty / "run.json").write_text("")
    result = cli("publish", empty, "--to", tmp_path / "dist")
    assert one_error_line(result) and "damaged" in result.stderr, result.stderr


# ---------------------------------------------------------------- sources: links, content, retries

def test_links_leaving_the_source_are_not_followed_and_are_reported(tmp_path, client, victim):
    source = fx.class_folders(tmp_path / "val", count=3)
    outside = tmp_path / "outside"
    outside.mkdir()
    fx.small_photos(1)[0].save(outside / "private.JPEG", quality=90)
    (source / fx.WNIDS[0] / "linked.JPEG").symlink_to(outside / "private.JPEG")
    (source / "n09999999").symlink_to(outside)
    (source / fx.WNIDS[1] / "inside.JPEG").symlink_to(next((source / fx.WNIDS[2]).glob("*.JPEG")))
    summary = run(source, tmp_path / "out", client)
    reasons = {Path(f["path"]).name: f["reason"] for f in summary.failures}
    assert "leading out of the source" in reasons["linked.JPEG"]
    assert "leading out of the source" in reasons["n09999999"]
    assert not list((tmp_path / "out").rglob("linked.JPEG")) and not (tmp_path / "out" / "contrast" / "2" /
                                                                      "n09999999").exists()
    assert list((tmp_path / "out").rglob("inside.JPEG"))  # a link inside the source is read


def test_an_extended_run_refuses_a_source_image_replaced_by_another_of_the_same_size(tmp_path, client):
    source = fx.class_folders(tmp_path / "val", count=4)
    path = sorted(source.rglob("*.JPEG"))[1]
    Image.open(path).save(path, quality=92, comment=b"AAAA")
    out = tmp_path / "out"
    run(source, out, client, corruptions=["contrast"])
    data = path.read_bytes()
    path.write_bytes(data.replace(b"AAAA", b"BBBB"))  # the same size, other bytes
    assert len(path.read_bytes()) == len(data)
    with pytest.raises(RunError, match="changed since"):
        run(source, out, client, corruptions=["contrast", "fog"])


def test_an_image_unreadable_once_is_retried_by_the_next_run(tmp_path, client):
    source = fx.class_folders(tmp_path / "val", count=4)
    path = sorted(source.rglob("*.JPEG"))[2]
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 3])  # half copied
    out = tmp_path / "out"
    first = run(source, out, client)
    assert len(first.failures) == 1
    path.write_bytes(whole)
    second = run(source, out, client)
    assert second.failures == [] and second.units_run >= 1
    assert list(out.rglob(path.name))


def test_an_incomplete_labels_file_reports_the_unlabelled_image(tmp_path, client):
    source = fx.flat_folder(tmp_path / "flat", count=4)
    solution = source / "LOC_val_solution.csv"
    solution.write_text("".join(solution.read_text().splitlines(keepends=True)[:-1]))
    summary = run(source, tmp_path / "out", client, reader="imagenet_flat")
    assert [Path(f["path"]).name for f in summary.failures] == ["ILSVRC2012_val_00000004.JPEG"]
    assert "no label" in summary.failures[0]["reason"]
    assert not (tmp_path / "out" / "contrast" / "2" / "unknown").exists()


def test_a_pickle_whose_memo_references_would_expand_is_refused_quickly(tmp_path):
    from pipeline.readers import SourceError, read_source
    cifar = fx.cifar(tmp_path / "cifar", "cifar10", count=3)
    row = [0] * 1000
    table = [row] * 1000
    bomb = {b"data": [table] * 1000, b"labels": [0, 1, 2]}  # 10^9 values through shared references
    payload = pickle.dumps(bomb, protocol=2)
    assert len(payload) < 10_000
    (cifar / "cifar-10-batches-py" / "test_batch").write_bytes(payload)
    started = time.monotonic()
    with pytest.raises(SourceError, match="uint8 array"):
        read_source("cifar10", cifar)
    assert time.monotonic() - started < 10


def test_names_a_file_system_cannot_hold_are_one_error_line(tmp_path):
    source = tmp_path / "val" / fx.WNIDS[0]
    source.mkdir(parents=True)
    fx.small_photos(1)[0].save(source / "line\u2028separator.JPEG", quality=90)
    result = cli("generate", "imagenet-c", "--source", tmp_path / "val", "--out", tmp_path / "out", "--only",
                 "contrast", "--severities", "1", "--workers", "1", "--variant", "imagenet64")
    assert one_error_line(result), result.stderr
    assert not (tmp_path / "out").exists()


def test_a_250_byte_name_is_written_and_resumed(tmp_path, client):
    source = tmp_path / "val" / fx.WNIDS[0]
    source.mkdir(parents=True)
    name = "x" * 245 + ".JPEG"
    fx.small_photos(1)[0].save(source / name, quality=90)
    out = tmp_path / "out"
    run(source.parent, out, client)
    assert (out / "contrast" / "2" / fx.WNIDS[0] / name).is_file()
    again = run(source.parent, out, client)
    assert again.units_run == 0


# ---------------------------------------------------------------- config and state that lie

def test_a_billion_laughs_run_config_is_refused_at_once(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for index in range(1, 10):
        prev = chr(ord("a") + index - 1)
        this = chr(ord("a") + index)
        lines.append(f"{this}: &{this} [{', '.join(['*' + prev] * 9)}]")
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\nseed: *j\n")
    assert path.stat().st_size < 1000
    result = cli("generate", path, "--source", tmp_path, "--out", tmp_path / "out", timeout=60)
    assert one_error_line(result) and "expand" in result.stderr, result.stderr


@pytest.mark.parametrize("flag", [["--shard-size", "1000000000"], ["--set", "name=" + "n" * 300],
                                  ["--set", "name=a\u2028b"]])
def test_bounds_on_sizes_and_names_are_checked_before_out_is_created(tmp_path, flag):
    source = fx.class_folders(tmp_path / "val", count=2)
    result = cli("generate", "imagenet-c", "--source", source, "--out", tmp_path / "out", *flag)
    assert one_error_line(result) and "key" in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_a_damaged_run_record_or_manifest_in_out(tmp_path, client):
    source = fx.class_folders(tmp_path / "val", count=2)
    out = tmp_path / "out"
    run(source, out, client)
    manifest = (out / "manifest.jsonl").read_text()
    (out / "manifest.jsonl").write_text('{"key": 1}\n[]\n"text"\n' + manifest[: len(manifest) // 2])
    again = run(source, out, client)  # damaged lines are not trusted: their keys run again
    assert again.units_run >= 1 and again.failures == []
    (out / "run.json").write_text("")
    with pytest.raises(RunError, match="damaged"):
        run(source, out, client)


def test_generate_imagenet_p_takes_kinds_with_only(tmp_path):
    source = fx.class_folders(tmp_path / "val", count=1)
    result = cli("generate", "imagenet-p", "--source", source, "--out", tmp_path / "out", "--only", "rotate",
                 "--workers", "1", "--variant", "imagenet64", "--formats", "zarr", timeout=600)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "imagenet-p.zarr" / "rotate").is_dir()
    assert not (tmp_path / "out" / "imagenet-p.zarr" / "translate").exists()


def test_sigterm_stops_like_ctrl_c_with_the_resume_line(tmp_path):
    source = fx.class_folders(tmp_path / "val", count=8)
    process = subprocess.Popen([sys.executable, "-m", "pipeline", "generate", "imagenet-c", "--source", str(source),
                                "--out", str(tmp_path / "out"), "--workers", "1", "--variant", "imagenet64",
                                "--shard-size", "1"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (tmp_path / "out" / "manifest.jsonl").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143 and "interrupted; re-run" in stderr and "Traceback" not in stderr, stderr


def test_frost_without_its_textures_is_one_error_line_naming_the_command(tmp_path):
    source = fx.class_folders(tmp_path / "val", count=1)
    empty = tmp_path / "no-textures"
    empty.mkdir()
    result = cli("generate", "imagenet-c", "--source", source, "--out", tmp_path / "out", "--only", "frost",
                 "--workers", "1", "--variant", "imagenet64", timeout=300,
                 env={"CORRUPTIONS_FROST_DIR": str(empty), "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
                      "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(empty), "PIP_RETRIES": "0", "PIP_TIMEOUT": "2"})
    assert one_error_line(result) and "python -m corruptions.assets" in result.stderr, result.stderr


# ---------------------------------------------------------------- scored data of the wrong kind, and bombs

@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return sfx.write_model(tmp_path_factory.mktemp("model"))


def cpu_config(**overrides):
    from pipeline.scoring import load_scoring_config
    return load_scoring_config(None, {"device": "cpu", "batch_size": 4, "workers": 0, **overrides})


def test_cifar_arrays_of_the_wrong_type_or_layout_are_refused(tmp_path, model):
    from pipeline.scoring import score
    folder = sfx.cifar_folder(tmp_path / "cifar", ["contrast"])
    pixels = np.load(folder / "contrast.npy")
    cases = {"float32": ((pixels / 255.0).astype(np.float32), "uint8"),
             "channels first": (np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)), "channels first")}
    for _what, (array, message) in cases.items():
        np.save(folder / "contrast.npy", array)
        with pytest.raises(DataError, match=message):
            score(f"{model}:cifar", str(folder), config=cpu_config(input_size=32, resize=32), allow_partial=True)
    np.save(folder / "contrast.npy", np.array([object()] * 10, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="objects"):
        score(f"{model}:cifar", str(folder), config=cpu_config(input_size=32, resize=32), allow_partial=True)
    np.save(folder / "contrast.npy", pixels)
    for levels in ([1, 1, 2, 3, 4], [1, 2, 3, 4, 9], "five"):
        (folder / "severities.json").write_text(json.dumps({"severities": levels, "images": 8}))
        with pytest.raises(DataError, match="severities"):
            score(f"{model}:cifar", str(folder), config=cpu_config(input_size=32, resize=32), allow_partial=True)


def test_a_fifo_in_scored_data_is_refused_not_waited_on(tmp_path, model):
    from pipeline.scoring import score
    folder = sfx.cifar_folder(tmp_path / "cifar", ["contrast"])
    os.mkfifo(folder / "fog.npy")
    with pytest.raises(DataError, match="regular file"):
        score(f"{model}:cifar", str(folder), config=cpu_config(input_size=32, resize=32), allow_partial=True)
    store = sfx.zarr_store(tmp_path, ["fog"])
    chunk = next(p for p in sorted(store.rglob("*")) if p.is_file() and "/c/" in str(p))
    chunk.unlink()
    os.mkfifo(chunk)
    with pytest.raises(DataError, match="regular file"):
        score(f"{model}:imagenet", str(store), config=cpu_config(), allow_partial=True)


def test_a_store_declaring_impossible_shapes_is_refused_before_allocating(tmp_path, model):
    from pipeline.scoring import score
    store = sfx.zarr_store(tmp_path, ["fog"])
    meta = store / "labels" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["shape"] = [10 ** 12]
    meta.write_text(json.dumps(doc))
    (store / "zarr.json").write_text(json.dumps({**json.loads((store / "zarr.json").read_text()),
                                                 "consolidated_metadata": None}))
    with pytest.raises(DataError, match="labels"):
        score(f"{model}:imagenet", str(store), config=cpu_config(), allow_partial=True)


def test_a_jpeg_chunk_of_the_wrong_size_is_one_error_not_a_traceback(tmp_path, model):
    from pipeline.formats.zarr_codecs import decode_jpeg
    data = io.BytesIO()
    Image.new("RGB", (300, 200)).save(data, "JPEG")
    with pytest.raises(ValueError, match="declares"):
        decode_jpeg(data.getvalue(), (1, 224, 224, 3))


def test_decompression_bombs_are_refused_from_their_header_when_scored(tmp_path):
    from pipeline.scoring.loader import decode_rgb
    bomb = tmp_path / "bomb.png"
    Image.new("1", (12000, 12000)).save(bomb)
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(DataError, match="pixels"):
        decode_rgb(str(bomb))
    guard = subprocess.run([sys.executable, "-c", "import pipeline.readers, pipeline.scoring, PIL.Image; "
                            "print(PIL.Image.MAX_IMAGE_PIXELS)"], cwd=ROOT, capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert guard.stdout.strip() not in ("", "None"), guard  # importing the project leaves PIL's guard on


def test_a_long_mp4_is_refused_as_it_decodes(tmp_path):
    from pipeline.formats.mp4_tree import MAX_FRAMES, Encoding, decode, encode
    frames = np.zeros((MAX_FRAMES + 5, 16, 16, 3), np.uint8)
    data = encode(frames, Encoding(preset="ultrafast"))
    with pytest.raises(DataError, match="frames"):
        decode(data)


def test_classes_baseline_and_results_files_are_checked_before_the_pass(tmp_path, model):
    from pipeline.scoring import ScoreError, compare, score
    tree, clean = sfx.jpeg_tree(tmp_path / "tree", ["fog"])
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(["n01440764"] * 2 + [f"c{i}" for i in range(998)]))
    with pytest.raises(ScoreError, match="listed twice"):
        score(f"{model}:imagenet", str(tree), config=cpu_config(), classes_file=str(classes), allow_partial=True)
    results = json.loads(json.dumps({"task": "imagenet-c", "model": {"name": "zero"}, "clean_error": 0.0,
                                     "errors": {"fog": {str(s): 0.0 for s in range(1, 6)}}, "ce": {},
                                     "relative_ce": {}, "mce": None, "relative_mce": None}))
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(results))
    started = time.monotonic()
    with pytest.raises(ScoreError, match="zero error"):
        score(f"{model}:imagenet", str(tree), config=cpu_config(baseline=str(baseline)), allow_partial=True)
    baseline.write_text(json.dumps(results).replace('"clean_error": 0.0', '"clean_error": NaN'))
    with pytest.raises(ScoreError, match="clean_error"):
        score(f"{model}:imagenet", str(tree), config=cpu_config(baseline=str(baseline)), allow_partial=True)
    with pytest.raises(ScoreError, match="baseline"):
        score(f"{model}:imagenet", str(tree), config=cpu_config(baseline=str(tmp_path / "missing.json")))
    assert time.monotonic() - started < 60
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**results, "mce": "high", "errors": {"fog": {"1": "x"}}}))
    with pytest.raises(ScoreError, match="not a results.json"):
        compare([str(broken)], None)


def test_a_model_name_cannot_forge_report_rows(tmp_path, model):
    from pipeline.scoring import compare, score
    tree, _ = sfx.jpeg_tree(tmp_path / "tree", ["fog"])
    out = tmp_path / "results"
    score(f"{model}:imagenet", str(tree), config=cpu_config(), allow_partial=True, out=str(out),
          name="good\n| forged | 0.0 | 0.0 |")
    table = compare([str(out / "results.json")], None)
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert not any(line.startswith("| forged") for line in rows)
    assert any("good \\| forged" in line for line in rows)


def test_score_out_never_writes_through_links(tmp_path, model, victim):
    from pipeline.scoring import score
    tree, _ = sfx.jpeg_tree(tmp_path / "tree", ["fog"])
    out = tmp_path / "results"
    out.mkdir()
    (out / "report.md").symlink_to(victim)
    os.link(victim, out / "results.json")
    score(f"{model}:imagenet", str(tree), config=cpu_config(), allow_partial=True, out=str(out))
    assert victim.read_bytes() == SECRET
    assert "fog" in json.loads((out / "results.json").read_text())["errors"]


def test_a_stopped_worker_is_dropped_and_its_work_redone_within_worker_ttl(tmp_path):
    import psutil
    source = fx.class_folders(tmp_path / "val", count=24)
    out = tmp_path / "out"
    total = 24 * 19
    process = subprocess.Popen([sys.executable, "-m", "pipeline", "generate", "imagenet-c", "--source", str(source),
                                "--out", str(out), "--workers", "2", "--shard-size", "1", "--severities", "3",
                                "--set", "cluster.worker_ttl=10"],
                               cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    stopped = None
    try:
        deadline = time.monotonic() + 240
        manifest = out / "manifest.jsonl"
        while time.monotonic() < deadline and not (manifest.is_file() and manifest.read_text().count("\n") >= 2):
            time.sleep(0.1)
        workers = [p for p in psutil.Process(process.pid).children(recursive=True)
                   if "spawn_main" in " ".join(p.cmdline())]  # the worker processes (not the resource tracker)
        assert workers, [p.cmdline() for p in psutil.Process(process.pid).children(recursive=True)]
        stopped = workers[0]
        stopped.suspend()
        paused = time.monotonic()
        assert manifest.read_text().count("\n") < total / 2  # most of the work is still to do
        while time.monotonic() - paused < 150 and manifest.read_text().count("\n") < total:
            time.sleep(0.2)
        took = time.monotonic() - paused
        assert manifest.read_text().count("\n") >= total, "the run stalled behind the stopped worker"
        assert took < 120, took  # Dask's own worker-ttl is five minutes
    finally:
        if stopped is not None:
            with contextlib.suppress(psutil.Error):
                stopped.resume()
        _, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr


def test_a_huge_variant_size_or_input_size_is_refused_before_out_is_created(tmp_path):
    from pipeline.scoring import ScoreError, load_scoring_config
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    variant = configs / "variants" / "imagenet64.yaml"
    variant.write_text(variant.read_text().replace("size: [64, 64]", "size: [100000, 100000]", 1))
    source = fx.class_folders(tmp_path / "val", count=1)
    result = cli("generate", "imagenet-c", "--source", source, "--out", tmp_path / "out", "--variant", "imagenet64",
                 env={"CORRUPTIONS_CONFIG_DIR": str(configs)})
    assert one_error_line(result) and "size" in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()
    with pytest.raises(ScoreError, match="input_size"):
        load_scoring_config(None, {"input_size": 100000})
