"""The scoring stage end to end on the CPU, with a model whose predictions are known."""
import json
import re

import numpy as np
import pytest

from corruptions import corruption_names
from pipeline import metrics
from pipeline.scoring import ScoreError, compare, load_scoring_config, score

from .. import scoring_data as fx

N = 6
CLEAN_ERROR = 1 / 6


def hand_computed(errors: dict, clean_error):
    """CE, relative CE and their means from the definitions, with AlexNet's numbers."""
    ce, rel = {}, {}
    for name, cells in errors.items():
        alexnet = (metrics.ALEXNET_ERRORS[name] if name in metrics.ALEXNET_ERRORS
                   else [metrics.ALEXNET_MEAN_ERRORS[name]] * 5)
        ce[name] = 100 * sum(cells.values()) / sum(alexnet)
        if clean_error is not None:
            rel[name] = 100 * sum(e - clean_error for e in cells.values()) / sum(a - 0.435 for a in alexnet)
    bench = [n for n in corruption_names("benchmark") if n in ce]
    return ce, rel, np.mean([ce[n] for n in bench]), (np.mean([rel[n] for n in bench]) if rel else None)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("scoring")
    model = fx.write_model(root)
    tree, clean = fx.jpeg_tree(root / "tree", corruption_names("all"))
    return root, model, tree, clean


def cpu_config(**overrides):
    return load_scoring_config(None, {"device": "cpu", "batch_size": 4, "workers": 0, **overrides})


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


# The CPU path always runs; the CUDA path (pinned memory, on-device normalisation, autocast)
# runs too where torch sees a GPU.
ON_CUDA = pytest.mark.skipif(not _cuda_available(), reason="torch sees no CUDA device")
DEVICES = [pytest.param({"device": "cpu"}, id="cpu"),
           pytest.param({"device": "cuda"}, id="cuda", marks=ON_CUDA),
           pytest.param({"device": "cuda", "amp": "bf16"}, id="cuda-bf16", marks=ON_CUDA)]


@pytest.mark.parametrize("device", DEVICES)
def test_jpeg_tree_scores_equal_hand_computed_values(workspace, tmp_path, device):
    root, model, tree, clean = workspace
    results = score(f"{model}:imagenet", str(tree), str(clean), str(tmp_path / "out"),
                    config=cpu_config(workers=2, **device))
    assert results["device"].startswith(device["device"])
    expected = fx.expected_errors(corruption_names("all"), N)
    assert results["clean_error"] == pytest.approx(CLEAN_ERROR)
    for name in corruption_names("all"):
        for severity in range(1, 6):
            assert results["errors"][name][str(severity)] == pytest.approx(expected[name][severity]), (name, severity)
    ce, rel, mce, rel_mce = hand_computed(expected, CLEAN_ERROR)
    for name in corruption_names("all"):
        assert results["ce"][name] == pytest.approx(ce[name])
        assert results["relative_ce"][name] == pytest.approx(rel[name])
    assert results["mce"] == pytest.approx(mce) and results["relative_mce"] == pytest.approx(rel_mce)
    assert results["missing"] == [] and results["data"]["kind"] == "jpeg_tree"
    out = tmp_path / "out"
    saved = json.loads((out / "results.json").read_text())
    assert saved["mce"] == pytest.approx(mce)
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("corruption,severity,top1_error") and len(rows) == 1 + 1 + 19 * 5
    report = (out / "report.md").read_text()
    assert "| AlexNet | 43.5 | 100.0 |" in report and f"| {mce:.1f} |" in report
    assert (out / "ce.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("device", DEVICES)
def test_zarr_store_and_torchscript_give_the_same_numbers(workspace, tmp_path, device):
    import torch
    root, model, tree, clean = workspace
    names = ["gaussian_noise", "fog", "saturate"]
    store = fx.zarr_store(tmp_path, names)
    import importlib.util
    spec = importlib.util.spec_from_file_location("code_reader", model)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    scripted = tmp_path / "reader.pt"
    torch.jit.script(module.imagenet()).save(str(scripted))
    results = score(str(scripted), str(store), config=cpu_config(workers=2, **device), allow_partial=True)
    expected = fx.expected_errors(names, N)
    assert results["data"]["kind"] == "zarr"
    for name in names:
        for severity in range(1, 6):
            assert results["errors"][name][str(severity)] == pytest.approx(expected[name][severity])
    assert results["clean_error"] is None and results["relative_ce"] == {}
    ce, _, _, _ = hand_computed(expected, None)
    assert results["ce"] == pytest.approx(ce)
    assert results["partial"] and results["mce"] == pytest.approx(np.mean([ce["gaussian_noise"], ce["fog"]]))


def test_missing_cells_are_reported_and_mce_left_out(workspace, tmp_path):
    root, model, tree, clean = workspace
    import shutil
    partial = tmp_path / "partial"
    for name in ("fog", "snow"):
        shutil.copytree(tree / name, partial / name)
    shutil.rmtree(partial / "snow" / "4")
    results = score(f"{model}:imagenet", str(partial), config=cpu_config(), out=str(tmp_path / "out"))
    assert results["mce"] is None and "snow/4" in results["missing"] and "contrast/1" in results["missing"]
    assert "fog" in results["ce"] and "snow" not in results["ce"]
    assert "mCE left out" in (tmp_path / "out" / "report.md").read_text()


def test_cifar_folder(tmp_path, workspace):
    root, model, _, _ = workspace
    names = ["contrast", "pixelate"]
    folder = fx.cifar_folder(tmp_path / "cifar", names)
    results = score(f"{model}:cifar", str(folder), config=cpu_config(input_size=32, resize=32), allow_partial=True)
    labels = np.load(folder / "labels.npy")[:8]
    for name in names:
        for severity in range(1, 6):
            wrong = fx.destroyed(name, severity, 8)
            # a destroyed image shows the code of label + 1, which is right only if that is the label (never)
            assert results["errors"][name][str(severity)] == pytest.approx(len(wrong) / len(labels))


def test_bad_models_and_labels_fail_before_the_long_run(workspace, tmp_path):
    root, model, tree, clean = workspace
    with pytest.raises(ScoreError, match="N x num_classes"):
        score(f"{model}:bad_shape", str(tree), config=cpu_config())
    with pytest.raises(ScoreError, match="N x 3 outputs, not N x 1000"):
        score(f"{model}:three_classes", str(tree), config=cpu_config())
    folder = fx.cifar_folder(tmp_path / "cifar", ["fog"])
    labels = np.load(folder / "labels.npy")
    labels[3] = 10
    np.save(folder / "labels.npy", labels)
    with pytest.raises(ScoreError, match="labels outside the model's 10 classes"):
        score(f"{model}:cifar", str(folder), config=cpu_config(input_size=32, resize=32))
    with pytest.raises(ScoreError, match="torch.export program .*module.py:factory"):
        score("no-such-model", str(tree), config=cpu_config())
    with pytest.raises(ScoreError, match="unknown scoring key 'batchsize'"):
        load_scoring_config(None, {"batchsize": 3})


def test_report_compares_several_models(workspace, tmp_path):
    root, model, tree, clean = workspace
    first = score(f"{model}:imagenet", str(tree), str(clean), str(tmp_path / "a"), config=cpu_config())
    second = dict(first, model={"name": "other"}, mce=first["mce"] + 1)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text(json.dumps(second))
    table = compare([str(tmp_path / "a" / "results.json"), str(tmp_path / "b" / "results.json")], str(tmp_path / "cmp"))
    assert "| code_reader.imagenet |" in table and "| other |" in table
    assert (tmp_path / "cmp" / "comparison.png").exists() and (tmp_path / "cmp" / "comparison.md").exists()


def test_cli_score(workspace, tmp_path):
    from pipeline.__main__ import main
    root, model, tree, clean = workspace
    status = main(["score", "--model", f"{model}:imagenet", "--data", str(tree), "--clean", str(clean),
                   "--out", str(tmp_path / "r"), "--device", "cpu", "--workers", "0"])
    assert status == 0 and (tmp_path / "r" / "results.json").exists()
    assert main(["score", "--model", f"{model}:imagenet", "--data", str(tmp_path / "none")]) == 2


@pytest.mark.parametrize("library", ["torchvision", "timm"])
def test_library_model_specs_load_or_fail_clearly(library):
    import importlib

    import torch

    from pipeline.scoring import load_model
    try:
        importlib.import_module("torchvision.models" if library == "torchvision" else "timm")
        importable = True
    except Exception:  # noqa: BLE001 - e.g. the torchvision wheel here does not match the CPU torch
        importable = False
    if importable:
        model = load_model(f"{library}:resnet18", random_weights=True)
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)
    else:
        with pytest.raises(ScoreError, match=f"{library} is not importable"):
            load_model(f"{library}:resnet18")


def test_weights_are_loaded_into_a_factory_model(workspace, tmp_path):
    import torch

    from pipeline.scoring import load_model
    root, model, tree, clean = workspace
    reader = load_model(f"{model}:imagenet")
    state = reader.state_dict()
    state["mean"] = torch.zeros_like(state["mean"])
    torch.save(state, tmp_path / "w.pth")
    assert torch.equal(load_model(f"{model}:imagenet", str(tmp_path / "w.pth")).mean, state["mean"])
    results = score(f"{model}:imagenet", str(tree), config=cpu_config(), weights=str(tmp_path / "w.pth"))
    untouched = score(f"{model}:imagenet", str(tree), config=cpu_config())
    assert results["model"]["weights_sha256"]
    assert results["mce"] > untouched["mce"] + 10  # a wrong mean spoils the code reading


@pytest.mark.parametrize("size, mode", [((224, 224), "RGB"), ((500, 375), "RGB"), ((300, 420), "L")])
def test_decode_gives_the_pixels_of_the_original_pil_loader(tmp_path, size, mode):
    """OpenCV decodes for speed; the pixels must be those of test.py's PIL loader (convert("RGB"),
    then Resize(256) and CenterCrop(224) when the image is not already 224 x 224)."""
    import skimage.data
    from PIL import Image

    from corruptions.preprocess import apply_step
    from pipeline.scoring import decode
    photo = Image.fromarray(skimage.data.coffee()).resize(size, Image.BILINEAR).convert(mode)
    path = tmp_path / "image.JPEG"
    photo.save(path, quality=85, optimize=True)
    expected = Image.open(path).convert("RGB")
    if expected.size != (224, 224):
        expected = apply_step(apply_step(expected, {"op": "resize_shorter", "size": 256}),
                              {"op": "center_crop", "size": 224})
    got = decode(str(path), 224, 256)
    assert got.shape == (224, 224, 3) and got.dtype == np.uint8
    assert np.array_equal(got, np.asarray(expected))


def test_unreadable_files_are_named_and_left_out_and_the_run_goes_on(workspace, tmp_path, capsys):
    """A damaged or non-image file in a cell is reported by path and skipped: the cell's error
    is that of the same tree without the file, and the CLI exits 1 after writing the results."""
    import shutil

    from pipeline.__main__ import main
    root, model, tree, clean = workspace
    damaged, without = tmp_path / "damaged", tmp_path / "without"
    for name in ("fog", "snow"):
        shutil.copytree(tree / name, damaged / name)
        shutil.copytree(tree / name, without / name)
    victims = sorted((damaged / "fog" / "3").rglob("*.JPEG"))[:2]
    whole = victims[0].read_bytes()
    victims[0].write_bytes(whole[:len(whole) // 2])  # cut short, as an interrupted copy leaves it
    victims[1].write_bytes(b"not an image")
    for victim in victims:
        (without / victim.relative_to(damaged)).unlink()
    got = score(f"{model}:imagenet", str(damaged), config=cpu_config(workers=2))
    expected = score(f"{model}:imagenet", str(without), config=cpu_config(workers=2))
    assert sorted(line.split(":")[0].split()[-1] for line in got["data"]["unreadable"]) == sorted(map(str, victims))
    assert got["errors"] == expected["errors"] and got["data"]["images"] == expected["data"]["images"]
    assert got["data"]["images"]["fog/3"] == got["data"]["images"]["fog/2"] - 2
    status = main(["score", "--model", f"{model}:imagenet", "--data", str(damaged), "--out", str(tmp_path / "r"),
                   "--device", "cpu", "--workers", "0"])
    assert status == 1 and str(victims[0]) in capsys.readouterr().err
    assert "2 unreadable files skipped" in (tmp_path / "r" / "report.md").read_text()


@pytest.mark.parametrize("override, message", [
    ({"batch_size": 0}, "'batch_size': expected an integer from 1 to 65536"),
    ({"workers": -1}, "'workers': expected null (one per core) or an integer >= 0"),
    ({"device": "tpu"}, "'device': expected auto, cuda or cpu"),
    ({"amp": "fp8"}, "'amp': expected null, bf16 or fp16"),
    ({"mean": [0.5, 0.5]}, "'mean': expected null or a list of 3 numbers"),
    ({"std": [0.2, 0.0, 0.2]}, "'std': expected null or a list of 3 positive numbers"),
    ({"channels_last": "yes"}, "'channels_last': expected true or false"),
    ({"input_size": 22.5}, "'input_size': expected null or an integer from 1 to 4096"),
    ({"batchsize": 3}, "unknown scoring key 'batchsize'; allowed: input_size, resize"),
])
def test_scoring_config_mistakes_name_the_key_and_the_allowed_values(override, message):
    with pytest.raises(ScoreError, match=re.escape(message)):
        load_scoring_config(None, override)


def test_scoring_config_file_is_checked(tmp_path):
    (tmp_path / "s.yaml").write_text("batch_size: 32\nresize: big\n")
    with pytest.raises(ScoreError, match="'resize': expected null or an integer from 1 to 4096, got 'big'"):
        load_scoring_config(tmp_path / "s.yaml")
    with pytest.raises(ScoreError, match="not found"):
        load_scoring_config(tmp_path / "missing.yaml")
    assert load_scoring_config(None).batch_size == 128  # the shipped defaults pass their own checks


def test_a_baseline_results_file_replaces_alexnet_in_report_and_chart(workspace, tmp_path):
    root, model, tree, clean = workspace
    base = score(f"{model}:imagenet", str(tree), str(clean), str(tmp_path / "base"), config=cpu_config(),
                 name="my-baseline")
    results = score(f"{model}:imagenet", str(tree), str(clean), str(tmp_path / "out"),
                    config=cpu_config(baseline=str(tmp_path / "base" / "results.json")))
    assert results["baseline"] == "my-baseline" and results["mce"] == pytest.approx(100.0)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "AlexNet" not in report and "(my-baseline = 100)" in report
    assert f"| my-baseline | {100 * base['clean_error']:.1f} | 100.0 |" in report
    assert "43.5" not in report


def test_only_severity_folders_1_to_5_are_cells(workspace, tmp_path):
    import shutil
    root, model, tree, clean = workspace
    odd = tmp_path / "odd"
    shutil.copytree(tree / "fog", odd / "fog")
    for name in ("34", "12345", "0", "6", "1.5"):
        shutil.copytree(tree / "fog" / "1", odd / "fog" / name)
    from pipeline.formats import open_data
    assert sorted(open_data(odd).cells()) == [("fog", s) for s in range(1, 6)]


def test_nan_logits_are_an_error_naming_the_batch(workspace):
    root, model, tree, clean = workspace
    with pytest.raises(ScoreError, match=r"NaN or infinite values in batch 0 \(cell"):
        score(f"{model}:not_finite", str(tree), config=cpu_config(optimize=False))


def test_cifar_has_no_alexnet_baseline_and_needs_matching_classes(workspace, tmp_path):
    root, model, _, _ = workspace
    folder = fx.cifar_folder(tmp_path / "cifar", ["contrast", "fog"])
    results = score(f"{model}:cifar", str(folder), out=str(tmp_path / "out"),
                    config=cpu_config(input_size=32, resize=32), allow_partial=True)
    assert results["baseline"] is None and results["ce"] == {} and results["mce"] is None
    assert results["errors"]["fog"]["1"] == pytest.approx(len(fx.destroyed("fog", 1, 8)) / 8)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "AlexNet" not in report and "no baseline" in report
    with pytest.raises(ScoreError, match="not N x 10 or N x 100"):
        score(f"{model}:imagenet", str(folder), config=cpu_config(input_size=32, resize=32))
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(f"c{i}" for i in range(1000)))
    mapped = score(f"{model}:imagenet", str(folder), config=cpu_config(input_size=32, resize=32),
                   classes_file=str(classes), allow_partial=True)
    assert mapped["errors"] == results["errors"]


def test_an_empty_severity_folder_is_refused_before_scoring_unless_partial(workspace, tmp_path):
    import shutil
    root, model, tree, clean = workspace
    holed = tmp_path / "holed"
    shutil.copytree(tree / "fog", holed / "fog")
    for image in (holed / "fog" / "4").rglob("*.JPEG"):
        image.unlink()
    with pytest.raises(ScoreError, match="cells hold no images .*fog/4"):
        score(f"{model}:imagenet", str(holed), out=str(tmp_path / "never"), config=cpu_config())
    assert not (tmp_path / "never").exists()
    results = score(f"{model}:imagenet", str(holed), config=cpu_config(), allow_partial=True)
    assert "4" not in results["errors"]["fog"] and "fog/4" in results["missing"]


def test_library_models_without_weights_are_refused_unless_random_weights_is_given():
    from pipeline.scoring import load_model
    try:
        import torchvision.models  # noqa: F401
        importable = True
    except Exception:  # noqa: BLE001 - the registry's torchvision does not import with the CPU torch here
        importable = False
    if not importable:
        with pytest.raises(ScoreError, match="not importable"):
            load_model("torchvision:resnet18")
        return
    with pytest.raises(ScoreError, match="pretrained weights could not be had"):
        load_model("torchvision:resnet18")  # no network here
    assert load_model("torchvision:resnet18", random_weights=True) is not None
