"""ImageNet-C-bar and CIFAR-10-C-bar end to end on a real LocalCluster: the released layouts
(JPEG tree with level folders 1-5 at quality 85; CIFAR-10-C-bar's level-major arrays and
repeated labels), outputs equal to the kernels' on the source, bytes independent of workers and
shards, publish and verify with regeneration, scoring (materialised and on the fly), and
config mistakes as one error line before anything is written."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from corruptions.bar import bar_benchmark, corrupt_bar
from corruptions.config import preprocess
from pipeline.__main__ import main
from pipeline.engine import generate
from pipeline.imagenet_c_bar import ImageNetCBar
from pipeline.readers import load_pixels, read_source
from pipeline.runconfig import ConfigError, load_run_config

from .. import sources as fx
from .conftest import one_worker_client

NAMES = ["sparkles", "blue_noise_sample", "checkerboard_cutout"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return fx.class_folders(tmp_path_factory.mktemp("val"), count=4)


def run(config_name, source, out, client, **settings):
    config = load_run_config(config_name, [{"source": str(source), "out": str(out)}, settings])
    return config, generate(config, client=client, stream=io.StringIO())


def files(out: Path, suffix: str) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob(f"*{suffix}"))}


def test_imagenet_c_bar_writes_the_released_tree_of_the_kernels_outputs(source, tmp_path, client):
    out = tmp_path / "out"
    config, summary = run("imagenet-c-bar", source, out, client, bar_corruptions=NAMES, severities=[1, 4], shard_size=3)
    assert summary.outputs_written == 4 * 3 * 2 and not summary.failures
    assert config.bar_corruptions == tuple(n for n in bar_benchmark("imagenet") if n in NAMES)  # the benchmark's order
    listing = read_source("imagenet_folders", source)
    task = ImageNetCBar("imagenet", config.bar_corruptions, (1, 4), 0)
    for name in NAMES:
        assert sorted(p.name for p in (out / name).iterdir()) == ["1", "4"]  # level folders, as released
        for item in listing.items:
            clean = preprocess(load_pixels(item), "imagenet")
            for level in (1, 4):
                path = out / name / str(level) / item.wnid / item.name
                expected = corrupt_bar(clean, name, level, task.rng(name, level, item), "imagenet")
                buffer = io.BytesIO()
                Image.fromarray(expected).save(buffer, "JPEG", quality=85, optimize=True)
                assert path.read_bytes() == buffer.getvalue(), (name, level, item.name)


def test_bytes_do_not_depend_on_workers_or_shards(source, tmp_path, client):
    run("imagenet-c-bar", source, tmp_path / "two", client, bar_corruptions=NAMES[:2], severities=[2], shard_size=1)
    with one_worker_client() as single:
        run("imagenet-c-bar", source, tmp_path / "one", single, bar_corruptions=NAMES[:2], severities=[2], shard_size=4)
    reference = files(tmp_path / "two", ".JPEG")
    assert len(reference) == 8 and files(tmp_path / "one", ".JPEG") == reference


def test_cifar_10_c_bar_writes_the_scripts_arrays(tmp_path, client):
    source = fx.cifar(tmp_path / "src", "cifar10", count=5)
    out = tmp_path / "out"
    config, summary = run("cifar-10-c-bar", source, out, client, bar_corruptions=["ripple", "lines"], shard_size=2)
    listing = read_source("cifar10", source)
    labels = np.load(out / "labels.npy")
    assert list(labels) == [item.label for item in listing.items] * 5  # repeated for the five levels
    task = ImageNetCBar("cifar", config.bar_corruptions, (1, 2, 3, 4, 5), 0)
    for name in ("ripple", "lines"):
        array = np.load(out / f"{name}.npy")
        assert array.shape == (25, 32, 32, 3) and array.dtype == np.uint8
        for level in range(1, 6):
            for row, item in enumerate(listing.items):
                clean = preprocess(load_pixels(item), "cifar")
                expected = corrupt_bar(clean, name, level, task.rng(name, level, item), "cifar")
                assert np.array_equal(array[(level - 1) * 5 + row], expected)  # level-major


def test_publish_verify_and_score(source, tmp_path, client):
    from ..scoring_data import write_model
    out, dist = tmp_path / "out", tmp_path / "dist"
    run("imagenet-c-bar", source, out, client, bar_corruptions=NAMES[:2])
    assert main(["publish", str(out), "--to", str(dist)]) == 0
    assert (dist / "ImageNet-C-Bar.tar").is_file()
    card = (dist / "README.md").read_text()
    assert "Mintun, Kirillov & Xie" in card and "mintun2021interaction" in card
    assert main(["verify", str(dist), "--source", str(source), "--sample", "4"]) == 0
    model = write_model(tmp_path)
    assert main(["score", "--model", f"{model}:imagenet", "--data", str(out), "--device", "cpu", "--workers", "0",
                 "--out", str(tmp_path / "results")]) == 0
    import json
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["task"] == "imagenet-c-bar" and sorted(results["errors"]) == sorted(NAMES[:2])
    assert results["baseline"] is None and results["mce"] is None  # no AlexNet errors on C-bar: errors only
    assert results["mean_error"] == pytest.approx(np.mean([np.mean(list(e.values())) for e in results["errors"].values()]))
    assert main(["score", "--model", f"{model}:imagenet", "--on-the-fly", "imagenet-c-bar", "--clean", str(source),
                 "--only", *NAMES[:2], "--device", "cpu", "--workers", "0", "--out", str(tmp_path / "fly")]) == 0
    fly = json.loads((tmp_path / "fly" / "results.json").read_text())
    assert fly["task"] == "imagenet-c-bar" and fly["errors"] == results["errors"]


def test_config_mistakes_are_one_error_line_before_anything_is_written(source, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", "imagenet-c-bar", "--source", str(source), "--out", str(out), "--only", "ripple"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: ") and "'ripple'" in error[0] and "caustic_refraction" in error[0]
    assert not out.exists()
    with pytest.raises(ConfigError, match="bar_corruptions"):
        load_run_config("imagenet-c-bar", [{"bar_corruptions": ["fog"]}])


def test_the_card_says_when_a_variant_is_an_extension():
    """299 px, 64 px and Tiny ImageNet C-bar follow the original's rules but no release has them."""
    from pipeline.publish.card import dataset_card
    run = {"identity": {"images": 3, "versions": {}}, "version": "0"}
    extension = dataset_card(run, load_run_config("imagenet-c-bar", [{"variant": "inception"}]), [], {}, 0)
    released = dataset_card(run, load_run_config("imagenet-c-bar", []), [], {}, 0)
    assert "**An extension**: no published release of ImageNet-C-bar has the `inception` variant" in extension
    assert "An extension" not in released
