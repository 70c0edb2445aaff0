"""ImageNet-P sequences against the originals' own frames and statistics
(``shared/reference/imagenet-p``: the original ``make_*_p.py`` scripts, run).

- Golden frames (imagenet, astronaut and coffee, frames 0, 1, 15 and last): the deterministic
  kinds bit for bit; snow and spatter too when fed the originals' draws, replayed with
  ``np.random.RandomState(0)`` (the reference seeded ``np.random.seed(0)`` before each sequence).
- Every variant x kind (100 cells): frame count, frame size, and the mean over photos and
  three seeds of PSNR against frame 0 and the previous frame, and of the mean shift, within
  max(4.25 x the reference's seed SD, 0.3 dB / 1.0 level). Noise kinds draw from our own
  generators. Snow and spatter hold one layer per sequence that depends on the seed alone, and
  a few layers decide their statistics (a cifar liquid layer without Canny edges blackens
  frames: the reference's seed 1 is all black); they replay the reference's own seeds 0-2, so
  the comparison tests the kernels rather than which three layers were drawn.
"""
import json

import numpy as np
import pytest

from corruptions import rng_for, variant_names
from perturbations import load_sequences, perturb, sequence_names

from ..helpers import PHOTOS, p_photo, read_png, reference_dir

GOLDEN_PHOTOS = ["astronaut", "coffee"]
DETERMINISTIC = ["motion_blur", "zoom_blur", "brightness", "translate", "rotate", "tilt", "scale", "gaussian_blur",
                 "shear"]
SEEDS = (0, 1, 2)
FLOORS = {"psnr_vs_first": 0.3, "psnr_vs_prev": 0.3, "dmean_vs_first": 1.0}


def golden(photo: str, kind: str, frame: int) -> np.ndarray:
    return read_png(reference_dir("imagenet-p") / "golden" / photo / f"{kind}-{frame}.png")


def assert_golden(frames: np.ndarray, photo: str, kind: str) -> None:
    for index in (0, 1, 15, len(frames) - 1):
        expected = golden(photo, kind, index)
        assert frames[index].shape == expected.shape
        np.testing.assert_array_equal(frames[index], expected, err_msg=f"{photo} {kind} frame {index}")


@pytest.mark.parametrize("photo", GOLDEN_PHOTOS)
@pytest.mark.parametrize("kind", DETERMINISTIC)
def test_deterministic_kinds_are_the_originals_frames(photo, kind):
    assert_golden(perturb(p_photo(photo, "imagenet"), kind, rng=0, variant="imagenet"), photo, kind)


@pytest.mark.parametrize("photo", GOLDEN_PHOTOS)
@pytest.mark.parametrize("kind", ["snow", "spatter"])
def test_random_layers_replayed_give_the_originals_frames(photo, kind):
    params = load_sequences("imagenet").params_for(kind)
    layer = np.random.RandomState(0).normal(size=(224, 224), loc=params["mean"], scale=params["std"])
    assert_golden(perturb(p_photo(photo, "imagenet"), kind, variant="imagenet", draws=layer), photo, kind)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-10))


def sequence_statistics(frames: np.ndarray) -> dict[str, float]:
    """The reference's per-sequence means: over j >= 1 for the frame-0 comparisons."""
    first = frames[0]
    return {"psnr_vs_first": np.mean([psnr(f, first) for f in frames[1:]]),
            "psnr_vs_prev": np.mean([psnr(b, a) for a, b in zip(frames[:-1], frames[1:])]),
            "dmean_vs_first": np.mean([f.astype(np.float64).mean() - first.astype(np.float64).mean()
                                       for f in frames[1:]])}


def replayed_layer(variant: str, kind: str, seed: int):
    """The reference's snow / spatter layer for ``seed`` (drawn first after np.random.seed)."""
    if kind not in ("snow", "spatter"):
        return None
    params = load_sequences(variant).params_for(kind)
    side = load_sequences(variant).size[0]
    return np.random.RandomState(seed).normal(size=(side, side), loc=params["mean"], scale=params["std"])


@pytest.fixture(scope="module")
def stats_json():
    return json.loads((reference_dir("imagenet-p") / "stats.json").read_text())


@pytest.mark.parametrize("variant", variant_names())
def test_every_kind_matches_the_originals_statistics(stats_json, variant):
    assert stats_json["images"] == list(PHOTOS)
    assert list(stats_json["stats"][variant]) == sequence_names("all")
    failures = []
    for kind in sequence_names("all"):
        expected = stats_json["stats"][variant][kind]
        values = []
        for photo in PHOTOS:
            for seed in SEEDS:
                frames = perturb(p_photo(photo, variant), kind, rng_for(2019, variant, kind, 1, f"{photo}/{seed}",
                                                                      task="imagenet-p"), variant,
                                 draws=replayed_layer(variant, kind, seed))
                size = expected["frame_size"][photo] if isinstance(expected["frame_size"], dict) \
                    else expected["frame_size"]
                if len(frames) != expected["n_frames"] or list(frames.shape[1:3]) != list(size):
                    failures.append(f"{kind} {photo}: {frames.shape[:3]}, expected {expected['n_frames']} x {size}")
                values.append(sequence_statistics(frames))
        for key, floor in FLOORS.items():
            ours = float(np.mean([v[key] for v in values]))
            reference = float(np.mean(expected[f"{key}_per_seed"]))
            tolerance = max(4.25 * expected[f"{key}_seed_sd"], floor)
            if not abs(ours - reference) <= tolerance:
                failures.append(f"{kind} {key}: {ours:.3f} vs {reference:.3f} (tolerance {tolerance:.3f})")
    assert not failures, failures
