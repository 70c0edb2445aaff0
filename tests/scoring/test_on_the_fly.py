"""Scoring on the fly: the model sees exactly the bytes of the generated benchmark."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from corruptions import corruption_names
from pipeline.__main__ import main
from pipeline.engine import generate
from pipeline.formats import open_data
from pipeline.readers import imagenet_wnids
from pipeline.runconfig import load_run_config
from pipeline.scoring import batches, load_scoring_config, score
from pipeline.scoring.on_the_fly import OnTheFly, OnTheFlySequences

from .. import scoring_data
from .. import sources as fx


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=50) as cluster, Client(cluster) as connected:
        yield connected


def cells_of(data, cells, config):
    """Every cell's uint8 images, in the order the scorer reads them."""
    out = {cell: [] for cell in cells}
    for images, _, positions in batches(data, cells, config, False):
        for image, position in zip(images.numpy(), positions.numpy()):
            out[cells[position]].append(image)
    return {cell: np.stack(images) for cell, images in out.items()}


@pytest.mark.parametrize("run_config", ["imagenet-c", "cifar-10-c"])
def test_on_the_fly_gives_the_model_the_bytes_of_the_generated_benchmark(tmp_path, client, run_config):
    cifar = run_config == "cifar-10-c"
    source = fx.cifar(tmp_path / "src", "cifar10", count=5) if cifar else fx.class_folders(tmp_path / "src", count=4)
    overrides = {"source": str(source), "out": str(tmp_path / "out"), "shard_size": 2}
    if cifar:
        overrides["corruptions"] = ["gaussian_noise", "glass_blur", "fog", "jpeg_compression"]
    generate(load_run_config(run_config, [overrides]), client=client, stream=io.StringIO())
    model = scoring_data.write_model(tmp_path)
    size = {"input_size": 32, "resize": 32} if cifar else {}
    config = load_scoring_config(None, {"device": "cpu", "workers": 2, "batch_size": 16, **size})
    on_the_fly = load_run_config(run_config, [{"source": str(source)} | (
        {"corruptions": overrides["corruptions"]} if cifar else {})])
    factory = "cifar" if cifar else "imagenet"
    materialised = score(f"{model}:{factory}", str(tmp_path / "out"), config=config, allow_partial=cifar)
    produced = score(f"{model}:{factory}", None, config=config, on_the_fly=on_the_fly, allow_partial=cifar)
    assert produced["errors"] == materialised["errors"] and produced["ce"] == materialised["ce"]
    assert produced["data"]["kind"] == "on_the_fly" and produced["data"]["on_the_fly"]["seed"] == 0
    assert produced["data"]["on_the_fly"]["stored_as"] == ("raw" if cifar else "jpeg")
    # the strongest form: the very pixels, cell by cell, image by image
    classes = None if cifar else list(imagenet_wnids())
    tree = open_data(tmp_path / "out", classes) if not cifar else open_data(tmp_path / "out")
    fly = OnTheFly(on_the_fly, classes)
    cells = tree.cells()
    assert sorted(cells) == sorted(fly.cells())
    expected, got = cells_of(tree, cells, config), cells_of(fly, cells, config)
    for cell in cells:
        assert np.array_equal(got[cell], expected[cell]), cell
    if not cifar:
        assert len(cells) == len(corruption_names("all")) * 5


@pytest.mark.parametrize("variant, kinds", [
    ("imagenet", ["gaussian_noise", "translate"]),  # both x264 settings: noise (tune grain), temporal (crf 20)
    ("imagenet64", ["motion_blur", "gaussian_noise_3"]),  # motion blur frames of shorter side 64, not cropped
])
def test_imagenet_p_on_the_fly_gives_the_model_the_frames_of_the_generated_benchmark(tmp_path, client, variant,
                                                                                      kinds):
    source = fx.class_folders(tmp_path / "src", count=3)
    settings = {"source": str(source), "variant": variant, "sequences": kinds,
                "outputs": {"mp4": {"preset": "ultrafast"}}}
    out = tmp_path / "out"
    generate(load_run_config("imagenet-p", [settings | {"out": str(out), "shard_size": 2}]), client=client,
             stream=io.StringIO())
    on_the_fly = load_run_config("imagenet-p", [settings])
    spec = f"{scoring_data.write_model(tmp_path)}:tiny_cnn"
    config = load_scoring_config(None, {"device": "cpu", "workers": 2, "batch_size": 64, "optimize": False})
    from_mp4 = score(spec, str(out), config=config)
    from_store = score(spec, str(out / "imagenet-p.zarr"), config=config)
    round_trip = score(spec, None, config=config, on_the_fly=on_the_fly, mp4_round_trip=True)
    lossless = score(spec, None, config=config, on_the_fly=on_the_fly)
    for produced, materialised in ((round_trip, from_mp4), (lossless, from_store)):
        assert produced["perturbations"] == materialised["perturbations"]
        assert produced["first_frame_error"] == materialised["first_frame_error"]
        assert produced["data"]["sequences"] == materialised["data"]["sequences"]
        assert not produced["data"]["left_out"]
    assert round_trip["data"]["on_the_fly"]["stored_as"].startswith("mp4 (temporal: pix_fmt yuv444p, preset ultrafast")
    assert lossless["data"]["on_the_fly"]["stored_as"] == "frames"
    # the strongest form: every frame of every video
    wnids = list(imagenet_wnids())
    tree, store = open_data(out, wnids), open_data(out / "imagenet-p.zarr", wnids)
    coded, raw = OnTheFlySequences(on_the_fly, wnids, mp4_round_trip=True), OnTheFlySequences(on_the_fly, wnids)
    assert coded.kinds() == raw.kinds() == tree.kinds() and set(tree.kinds()) == set(kinds)
    lossy = False
    for kind in kinds:
        assert [n.split("/")[-3:] for n in tree.videos(kind).names] == [n.split("/") for n in coded.videos(kind).names]
        assert tree.videos(kind).labels == coded.videos(kind).labels == store.videos(kind).labels
        for index in range(tree.count(kind)):
            from_tree, produced = tree.load(kind, index), coded.load(kind, index)
            assert np.array_equal(produced, from_tree), (kind, index)
            assert np.array_equal(raw.load(kind, index), store.load(kind, index)), (kind, index)
            lossy |= produced.shape != raw.load(kind, index).shape or not np.array_equal(produced,
                                                                                          raw.load(kind, index))
    assert lossy  # the two forms differ: the round trip is not a no-op


def test_imagenet_p_on_the_fly_command_and_its_refusals(tmp_path, capsys):
    source = fx.class_folders(tmp_path / "src", count=2)
    broken = next(source.rglob("*.JPEG")).parent / "ILSVRC2012_val_00000099.JPEG"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    model = scoring_data.write_model(tmp_path)
    base = ["score", "--model", f"{model}:tiny_cnn", "--clean", str(source), "--device", "cpu", "--workers", "0"]
    # the unreadable source image's videos are named and left out, the rest scored: exit status 1
    assert main(base + ["--on-the-fly", "imagenet-p", "--only", "rotate", "shot_noise", "--out",
                        str(tmp_path / "res")]) == 1
    assert broken.name in capsys.readouterr().err
    results = json.loads((tmp_path / "res" / "results.json").read_text())
    assert results["task"] == "imagenet-p" and set(results["perturbations"]) == {"rotate", "shot_noise"}
    assert set(results["perturbations"]["rotate"]) == {"1", "2", "3"}
    assert results["data"]["on_the_fly"]["seed"] == 0 and results["data"]["sequences"]["rotate"]["videos"] == 2
    assert [line for line in results["data"]["left_out"] if broken.name in line] and len(
        results["data"]["left_out"]) == 2  # its rotate and its shot_noise video
    capsys.readouterr()
    refused = {"--severities": base + ["--on-the-fly", "imagenet-p", "--severities", "1"],
               "--mp4-round-trip": base + ["--on-the-fly", "imagenet-c", "--mp4-round-trip"],
               "stores no MP4s": base + ["--on-the-fly", "cifar-10-p", "--mp4-round-trip"],
               "goes with --on-the-fly": base + ["--data", str(tmp_path), "--mp4-round-trip"],
               "translate": base + ["--on-the-fly", "imagenet-p", "--only", "translate", "zoom"]}
    for expected, argv in refused.items():
        assert main(argv) == 2, expected
        err = capsys.readouterr().err
        assert err.startswith("error:") and expected in err and "Traceback" not in err, err


def test_loader_workers_start_after_the_scoring_process_used_opencv_threads(tmp_path):
    """OpenCV's thread count set in a forked loader worker deadlocks when the parent's pool
    threads were waiting at the fork (as after any parallel OpenCV call): the scorer sets it
    before forking. Run in a child process, so a deadlock fails the test instead of hanging."""
    import subprocess
    import sys
    from pathlib import Path
    source = fx.class_folders(tmp_path / "src", count=2)
    script = (
        "import numpy as np, cv2\n"
        "from pipeline.runconfig import load_run_config\n"
        "from pipeline.scoring import batches, load_scoring_config\n"
        "from pipeline.scoring.on_the_fly import OnTheFly\n"
        "cv2.setNumThreads(4)\n"
        "big = np.ones((2000, 2000, 3), np.float32)\n"
        "for _ in range(3):\n"
        "    cv2.GaussianBlur(big, (31, 31), 5)\n"
        f"config = load_run_config('imagenet-c', [{{'source': {str(source)!r}, 'corruptions': ['fog'], "
        "'severities': [1]}])\n"
        "fly = OnTheFly(config, None)\n"
        "settings = load_scoring_config(None, {'device': 'cpu', 'workers': 2})\n"
        "print(sum(len(labels) for _, labels, _ in batches(fly, fly.cells(), settings, False)))\n")
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                              cwd=Path(__file__).resolve().parents[2])
    except subprocess.TimeoutExpired:
        pytest.fail("the loader's workers deadlocked")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "2"
