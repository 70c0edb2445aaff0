import shutil

import numpy as np
import pytest
import yaml

from corruptions import ConfigError, corrupt, corruption_names, load_variant, load_variant_file, rng_for, variant_names
from corruptions.config import VARIANT_DIR
from corruptions.registry import register, registered

PAPER_ORDER = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
               "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
               "jpeg_compression"]


def test_names_follow_the_papers_tables():
    assert corruption_names("benchmark") == PAPER_ORDER
    assert corruption_names("extra") == ["speckle_noise", "gaussian_blur", "spatter", "saturate"]
    assert corruption_names("all") == PAPER_ORDER + corruption_names("extra")
    with pytest.raises(ValueError, match="benchmark, extra, all"):
        corruption_names("weather")


def test_every_corruption_has_a_kernel_and_every_kernel_an_entry_in_every_variant():
    assert sorted(registered()) == sorted(corruption_names("all"))
    for variant in variant_names():
        table = load_variant(variant).params
        for name, spec in registered().items():
            assert len(table[name]) == 5, (variant, name)
            for params in table[name]:
                assert set(params) == set(spec.levels.model_fields) | set(spec.shared.model_fields), (variant, name)


def test_registry_refuses_duplicates_and_names_outside_its_task():
    registered()
    with pytest.raises(ValueError, match="already registered"):
        register("fog", family="weather", levels={})(lambda image, params, draws: image)
    with pytest.raises(ValueError, match="not one of imagenet-c's names"):
        register("rotate", family="digital", levels={})(lambda image, params, draws: image)


def test_a_second_task_has_its_own_registry_and_namespace():
    from corruptions.registry import Registry
    from corruptions.seeding import stream_key
    other = Registry("imagenet-p", {"test": ("gaussian_noise", "rotate")}, ())
    other.register("gaussian_noise", family="noise", levels={})(lambda image, params, draws: image)
    assert other.names() == ["gaussian_noise", "rotate"] and registered()["gaussian_noise"].apply is not \
        other.get("gaussian_noise").apply
    # ImageNet-C keeps the key of its first release (its bytes are unchanged); other tasks are prefixed
    assert stream_key("imagenet-c", "imagenet", "fog", 3, "x.JPEG") == "imagenet\x1ffog\x1f3\x1fx.JPEG".encode()
    assert stream_key("imagenet-p", "imagenet", "fog", 3, "x.JPEG").startswith(b"imagenet-p\x1f")
    draw = lambda task: rng_for(0, "imagenet", "gaussian_noise", 1, "x.JPEG", task=task).integers(2**62)  # noqa: E731
    assert draw("imagenet-c") != draw("imagenet-p")


def test_variant_sizes():
    assert {v: load_variant(v).size for v in variant_names()} == {
        "imagenet": (224, 224), "inception": (299, 299), "imagenet64": (64, 64), "tiny": (64, 64), "cifar": (32, 32)}


def _broken_copy(tmp_path, edit):
    doc = yaml.safe_load((VARIANT_DIR / "imagenet.yaml").read_text())
    edit(doc)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("edit, key, expected", [
    (lambda d: d["corruptions"].pop("fog"), "corruptions.fog", "'shared' and 'severities'"),
    (lambda d: d["corruptions"]["glass_blur"]["severities"].pop(), "corruptions.glass_blur.severities", "list of 5"),
    (lambda d: d["corruptions"]["glass_blur"]["severities"][2].pop("sigma"),
     "corruptions.glass_blur.severities[3].sigma", "missing"),
    (lambda d: d["corruptions"]["motion_blur"]["shared"].pop("backend"), "corruptions.motion_blur.shared.backend",
     "missing"),
    (lambda d: d["corruptions"]["motion_blur"]["shared"].update(backend="gimp"),
     "corruptions.motion_blur.shared.backend", "one of native, imagemagick"),
    (lambda d: d["corruptions"]["spatter"]["severities"][0].update(liquid="oil"),
     "corruptions.spatter.severities[1].liquid", "one of water, mud"),
    (lambda d: d["corruptions"]["frost"]["shared"].update(textures=["frost7.png"]),
     "corruptions.frost.shared.textures", "frost1.png"),
    (lambda d: d["corruptions"]["spatter"]["shared"].update(canny_low="fifty"),
     "corruptions.spatter.shared.canny_low", "a number >= 0"),
    (lambda d: d["corruptions"]["glass_blur"]["severities"][0].update(max_delta=1.5),
     "corruptions.glass_blur.severities[1].max_delta", "a positive integer"),
    (lambda d: d["corruptions"]["fog"]["shared"].update(mapsize=100), "corruptions.fog.shared.mapsize", "power of two"),
    (lambda d: d["corruptions"]["snow"]["shared"].update(colour=1), "corruptions.snow.shared.colour", "unknown key"),
    (lambda d: d["corruptions"].update(fgsm={"shared": {}, "severities": []}), "corruptions.fgsm", "allowed:"),
    (lambda d: d.pop("size"), "size", "missing"),
    (lambda d: d.update(size=[224]), "size", "[height, width]"),
    (lambda d: d["preprocess"].append({"op": "rotate"}), "preprocess[2].op", "resize_shorter"),
    (lambda d: d["preprocess"][0].update(size=-3), "preprocess[0].size", "a positive integer"),
    (lambda d: d["corruptions"]["fog"]["severities"][0].update(strength=True), "strength", "a positive number"),
    (lambda d: d["corruptions"]["shot_noise"]["severities"][0].update(photons=1e9),
     "corruptions.shot_noise.severities[1].photons", "at most 100000"),
])
def test_malformed_config_fails_at_load_naming_file_and_key(tmp_path, edit, key, expected):
    path = _broken_copy(tmp_path, edit)
    with pytest.raises(ConfigError) as info:
        load_variant_file(path)
    message = str(info.value)
    assert str(path) in message and key in message and expected in message


def test_config_that_is_not_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("corruptions: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_variant_file(path)


def test_a_custom_variant_file_drives_the_kernels(tmp_path):
    doc = yaml.safe_load((VARIANT_DIR / "imagenet.yaml").read_text())
    doc["corruptions"]["gaussian_noise"]["severities"][0]["scale"] = 0.0
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(doc))
    image = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    assert np.array_equal(corrupt(image, "gaussian_noise", 1, 0, variant=load_variant_file(path)), image)
    assert not np.array_equal(corrupt(image, "gaussian_noise", 1, 0, variant="imagenet"), image)


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="glass"), "allowed: gaussian_noise, shot_noise"),
    (dict(severity=0), r"severity must be one of \[1, 2, 3, 4, 5\]"),
    (dict(severity=6), r"severity must be one of"),
    (dict(severity=2.0), r"severity must be one of"),
    (dict(variant="imagenet-c"), "allowed: imagenet, inception, imagenet64, tiny, cifar"),
    (dict(image=np.zeros((32, 32, 3), np.float32)), "dtype must be uint8"),
    (dict(image=np.zeros((32, 32, 2), np.uint8)), "HxW, HxWx1, HxWx3 or HxWx4"),
    (dict(image=np.zeros((32,), np.uint8)), "HxW, HxWx1, HxWx3 or HxWx4"),
    (dict(image=np.zeros((4, 32, 3), np.uint8)), "at least 8 pixels"),
    (dict(image=[[1, 2], [3, 4]]), "numpy array"),
])
def test_bad_arguments_raise_value_error_listing_allowed_values(kwargs, message):
    args = dict(image=np.zeros((32, 32, 3), np.uint8), name="fog", severity=1, variant="imagenet")
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        corrupt(args["image"], args["name"], severity=args["severity"], rng=0, variant=args["variant"])


def test_frost_textures_are_verified(tmp_path, monkeypatch):
    from corruptions import assets
    assert assets.missing_textures() == []
    for name in assets.FROST_SHA256:
        shutil.copy(assets.FROST_DIR / name, tmp_path / name)
    (tmp_path / "frost3.png").write_bytes(b"not the texture")
    assert assets.missing_textures(tmp_path) == ["frost3.png"]


def test_the_kernel_package_never_imports_the_pipeline():
    """Kernels are pure: nothing under corruptions/ imports pipeline code, and running every
    kernel loads no pipeline module."""
    import ast
    import subprocess
    import sys
    from pathlib import Path
    package = Path(__file__).resolve().parents[2] / "corruptions"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n == "pipeline" or n.startswith("pipeline.") for n in names), path.name
    code = ("import sys, numpy as np; from corruptions import corrupt, corruption_names;"
            "image = np.full((32, 32, 3), 90, np.uint8);"
            "[corrupt(image, n, 3, 0, 'cifar') for n in corruption_names('all')];"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pipeline'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=package.parent).stdout.strip()
    assert out == "[]", out
