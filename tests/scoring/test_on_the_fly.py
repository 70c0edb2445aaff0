"""Scoring on the fly: the model sees exactly the bytes of the generated benchmark."""
from __future__ import annotations

import io

import numpy as np
import pytest

from corruptions import corruption_names
from pipeline.engine import generate
from pipeline.formats import open_data
from pipeline.readers import imagenet_wnids
from pipeline.runconfig import load_run_config
from pipeline.scoring import batches, load_scoring_config, score
from pipeline.scoring.on_the_fly import OnTheFly

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
