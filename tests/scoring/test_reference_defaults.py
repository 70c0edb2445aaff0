"""The scorer's defaults give the reference evaluators' numbers: the clean loader of
ImageNet-C/test.py, the model's own logits, RobustBench's CIFAR convention, the originals'
label dtype, a store xarray opens, and torch.export programs as models. Each reference is
restated here from its source, not taken from the scorer; and a model's own pretrained
configuration (timm's ``pretrained_cfg``) against timm's evaluation transform restated."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.scoring import Normaliser, load_scoring_config, score

from .. import scoring_data as fx

RAW_MODEL = '''
import torch


class RawCodeReader(torch.nn.Module):
    """Reads the class code from inputs in [0, 1] (RobustBench's convention: no mean or std)."""

    def forward(self, x):
        block = (x * 255.0)[:, :, 4:12, 4:12].mean(dim=(2, 3))
        code = torch.floor(block[:, 0] / 8.0) * 32 + torch.floor(block[:, 1] / 8.0)
        return torch.nn.functional.one_hot(code.clamp(0, 9).long(), 10).float()


def cifar_raw():
    return RawCodeReader()
'''

MEAN, STD = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def defaults(**overrides):
    return load_scoring_config(None, {"device": "cpu", "batch_size": 4, "workers": 0, **overrides}, auto=True)


def torchvision_eval_input(path, resize: int, crop: int, resample, mean, std) -> torch.Tensor:
    """torchvision's eval transforms restated: PIL RGB, Resize(resize) (shorter side, the longer
    side truncated), CenterCrop(crop) (offsets rounded), ToTensor, Normalize(mean, std)."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    size = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
    image = image.resize(size, resample)
    left, top = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
    image = image.crop((left, top, left + crop, top + crop))
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div(255)
    return (x - mean) / std


def restated_clean_input(path) -> torch.Tensor:
    """ImageNet-C/test.py's clean loader: Resize(256) bilinear, CenterCrop(224), ImageNet's mean, std."""
    return torchvision_eval_input(path, 256, 224, Image.BILINEAR, MEAN, STD)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("defaults")
    model = fx.write_model(root)
    corrupted, clean = fx.jpeg_tree(root / "tree", ["fog"])
    # two clean files already 224 x 224, as 4 of the 40 sources of the report were: their code
    # sits where a 224 crop of the unresized image looks, not where Resize(256) + crop does
    for index, wnid in ((0, fx.WNIDS[0]), (2, fx.WNIDS[1])):
        path = clean / wnid / f"ILSVRC2012_val_{index:08d}.JPEG"
        Image.fromarray(fx.coded_image(fx.LABELS[index // 2], 224, index)).save(path, quality=95)
    return root, model, corrupted, clean


def test_clean_error_equals_test_pys_clean_loader_on_224_pixel_files(tree):
    root, model_path, corrupted, clean = tree
    results = score(f"{model_path}:imagenet", str(corrupted), str(clean), config=defaults(), allow_partial=True)
    import importlib.util
    spec = importlib.util.spec_from_file_location("code_reader", model_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.imagenet().eval()
    files = sorted(clean.rglob("*.JPEG"))
    wnids = sorted({p.parent.name for p in files})
    from pipeline.readers import imagenet_wnids
    index = {w: i for i, w in enumerate(imagenet_wnids())}
    with torch.inference_mode():
        predictions = model(torch.stack([restated_clean_input(p) for p in files])).argmax(1).numpy()
    labels = np.array([index[p.parent.name] for p in files])
    expected = float(np.mean(predictions != labels))
    assert wnids and results["clean_error"] == expected
    assert expected > 1 / 6  # the 224 px files are read as test.py reads them (wrongly, by this model)
    assert results["preprocessing"]["family"] == "imagenet" and results["preprocessing"]["resize"] == 256


def test_default_logits_are_the_eager_models_bit_for_bit(tree):
    root, _, corrupted, clean = tree
    config = defaults()
    assert config.optimize is False and config.channels_last is False
    from pipeline.scoring.config import for_family
    config = for_family(config, "imagenet")
    model = fx_model("tiny_cnn")
    files = sorted(clean.rglob("*.JPEG"))
    from pipeline.scoring.loader import decode
    batch = torch.from_numpy(np.stack([decode(str(p), 224, 256, clean=True) for p in files]))
    with torch.inference_mode():
        ours = model(Normaliser(config, torch.device("cpu"))(batch))
        reference = model(torch.stack([restated_clean_input(p) for p in files]))
    assert torch.equal(ours, reference)
    results = score(f"{tree[1]}:imagenet", str(corrupted), config=defaults(), allow_partial=True)
    assert results["inference"]["path"] == "eager"
    fast = score(f"{tree[1]}:imagenet", str(corrupted), config=defaults(optimize=True), allow_partial=True)
    assert fast["inference"]["path"] == "torch.compile" and fast["inference"]["freezing"] is True
    assert fast["inference"]["check"]["top1_agreement"] == 1.0 and fast["errors"] == results["errors"]


def fx_model(name):
    import importlib.util
    import tempfile
    from pathlib import Path
    folder = Path(tempfile.mkdtemp())
    path = fx.write_model(folder)
    spec = importlib.util.spec_from_file_location("code_reader_defaults", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)().eval()


def test_cifar_cells_scored_with_defaults_equal_robustbench_convention(tmp_path):
    folder = fx.cifar_folder(tmp_path / "cifar", ["contrast", "fog"])
    model_path = tmp_path / "raw.py"
    model_path.write_text(RAW_MODEL)
    results = score(f"{model_path}:cifar_raw", str(folder), config=defaults(), allow_partial=True)
    assert results["preprocessing"]["family"] == "cifar" and results["preprocessing"]["std"] == [1.0, 1.0, 1.0]
    import importlib.util
    spec = importlib.util.spec_from_file_location("raw", model_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.cifar_raw()
    labels = np.load(folder / "labels.npy")
    n = len(labels) // 5
    for name in ("contrast", "fog"):
        # RobustBench's load_cifar10c: rows of severity s, transposed to NCHW, float32 / 255
        x = np.load(folder / f"{name}.npy")
        for severity in range(1, 6):
            rows = slice((severity - 1) * n, severity * n)
            batch = torch.from_numpy(np.transpose(x[rows], (0, 3, 1, 2)).astype(np.float32) / 255)
            with torch.inference_mode():
                wrong = (model(batch).argmax(1).numpy() != labels[rows]).mean()
            assert results["errors"][name][str(severity)] == float(wrong), (name, severity)


def test_the_imagenet_p_store_opens_in_xarray_at_its_root(tmp_path):
    import xarray

    from perturbations import sequence_names
    from pipeline.formats import zarr_store
    frames, _, labels = fx.sequence_data(["rotate", "translate"], 2, 32, "imagenet")  # 31 and 41 frames
    store = tmp_path / "p.zarr"
    fx.write_sequences(zarr_store.SequenceWriter(str(store), 2), frames, labels)
    dataset = xarray.open_zarr(store, consolidated=False)
    assert dataset["translate"].sizes["frame41"] == 41 and dataset["rotate"].sizes["frame"] == frames["rotate"].shape[1]
    assert np.array_equal(dataset["translate"].values, frames["translate"])
    assert "rotate" in sequence_names("all")


def test_a_torch_export_program_is_scored_as_its_module(tree, tmp_path):
    root, model_path, corrupted, clean = tree
    model = fx_model("imagenet")
    batch = torch.zeros(2, 3, 224, 224)
    program = torch.export.export(model, (batch,), dynamic_shapes=({0: torch.export.Dim("batch", max=4096)},))
    torch.export.save(program, str(tmp_path / "reader.pt2"))
    exported = score(str(tmp_path / "reader.pt2"), str(corrupted), config=defaults(), allow_partial=True)
    module = score(f"{model_path}:imagenet", str(corrupted), config=defaults(), allow_partial=True)
    assert exported["errors"] == module["errors"] and exported["model"]["name"] == "reader"
    json.dumps(exported)  # the record is plain JSON


TIMM_STYLE_MODEL = '''
import torch

CFG = {"input_size": (3, 240, 240), "crop_pct": 0.875, "interpolation": "bicubic",
       "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}


class OwnInputs(torch.nn.Module):
    """Reads the class code of a 240 px input normalised by its own mean and std (timm's
    pretrained_cfg convention); any other input size is refused."""
    pretrained_cfg = CFG

    def forward(self, x):
        assert x.shape[-1] == 240, x.shape
        mean, std = torch.tensor(CFG["mean"]).view(1, 3, 1, 1), torch.tensor(CFG["std"]).view(1, 3, 1, 1)
        pixels = (x * std + mean) * 255.0
        block = pixels[:, :, 100:140, 100:140].mean(dim=(2, 3))
        code = torch.floor(block[:, 0] / 8.0 + 0.5) * 32 + torch.floor(block[:, 1] / 8.0 + 0.5)
        return torch.nn.functional.one_hot(code.clamp(0, 999).long(), 1000).float() + 1e-3 * block[:, 2:3]


def own_inputs():
    return OwnInputs()
'''


def restated_timm_input(path) -> torch.Tensor:
    """timm's eval transform for input_size 240, crop_pct 0.875, bicubic: Resize(floor(240 /
    0.875) = 274) of the shorter side (torchvision's rule: the longer side truncated), bicubic;
    CenterCrop(240); ToTensor; Normalize(the model's mean, std)."""
    return torchvision_eval_input(path, 274, 240, Image.BICUBIC, 0.5, 0.25)


def test_a_models_pretrained_configuration_sets_its_inputs(tree, tmp_path):
    root, _, corrupted, clean = tree
    model_path = tmp_path / "own.py"
    model_path.write_text(TIMM_STYLE_MODEL)
    results = score(f"{model_path}:own_inputs", str(corrupted), str(clean), config=defaults(), allow_partial=True)
    used = results["preprocessing"]
    assert (used["input_size"], used["resize"], used["interpolation"]) == (240, 274, "bicubic")
    assert used["mean"] == [0.5] * 3 and used["std"] == [0.25] * 3
    assert sorted(used["from_model"]) == ["input_size", "interpolation", "mean", "resize", "std"]
    import importlib.util
    spec = importlib.util.spec_from_file_location("own", model_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.own_inputs()
    from pipeline.readers import imagenet_wnids
    index = {w: i for i, w in enumerate(imagenet_wnids())}
    for folder, got in ((clean, results["clean_error"]), (corrupted / "fog" / "1", results["errors"]["fog"]["1"])):
        files = sorted(folder.rglob("*.JPEG"))
        with torch.inference_mode():
            predictions = model(torch.stack([restated_timm_input(p) for p in files])).argmax(1).numpy()
        assert got == float(np.mean(predictions != np.array([index[p.parent.name] for p in files]))), folder
    # a key the scoring config gives wins over the model's
    given = score(f"{model_path}:own_inputs", str(corrupted), config=defaults(interpolation="bilinear"),
                  allow_partial=True)
    assert given["preprocessing"]["interpolation"] == "bilinear" and "interpolation" in given["preprocessing"][
        "from_config"]
