"""ImageNet-C-bar and CIFAR-10-C-bar against the original generator's own outputs
(``../shared/reference/imagenet-c-bar``: facebookresearch/augmentation-corruption at ba4d5a5).

The golden files were drawn with ``np.random.seed(0)`` immediately before the original's
``sample_parameters()``: our ``sample`` fed ``np.random.RandomState(0)`` must make the same
draws (``golden-params.json``, every corruption and level), and ``apply`` on them the same bytes.
Then, drawing from this project's own generators, the outputs must match the original's
statistics (``stats.json``) within their seed-to-seed spread.
"""
import io
import json

import numpy as np
import pytest
from PIL import Image

from corruptions import SEVERITIES
from corruptions.bar import BAR, bar_benchmark, corrupt_bar, load_bar

from ..helpers import reference_dir

SETS = {"imagenet-c-bar": ("imagenet", "golden"), "cifar-10-c-bar": ("cifar", "golden-cifar")}
CASES = [(bench, name) for bench, (variant, _) in SETS.items() for name in bar_benchmark(variant)]


def reference():
    return reference_dir("imagenet-c-bar")


def clean(bench: str, photo: str) -> np.ndarray:
    return np.asarray(Image.open(reference() / SETS[bench][1] / photo / "clean.png").convert("RGB"))


@pytest.fixture(scope="module")
def golden_params():
    return json.loads((reference() / "golden-params.json").read_text())


def test_the_benchmarks_are_the_originals_lists():
    assert bar_benchmark("imagenet") == ["caustic_refraction", "inverse_sparkles", "sparkles", "perlin_noise",
                                         "blue_noise_sample", "plasma_noise", "checkerboard_cutout",
                                         "cocentric_sine_waves", "single_frequency_greyscale", "brownish_noise"]
    assert sorted(bar_benchmark("cifar")) == sorted(["blue_noise_sample", "checkerboard_cutout", "inverse_sparkles",
                                                     "pinch_and_twirl", "ripple", "brownish_noise",
                                                     "circular_motion_blur", "lines", "sparkles",
                                                     "transverse_chromatic_abberation"])
    stats = json.loads((reference() / "stats.json").read_text())["severities"]
    for bench, (variant, _) in SETS.items():
        for name in bar_benchmark(variant):
            assert [load_bar(variant).params_for(name, level)["severity"] for level in SEVERITIES] == stats[bench][name]


@pytest.mark.parametrize("bench, name", CASES)
def test_sample_makes_the_originals_draws_and_apply_its_bytes(golden_params, bench, name):
    variant = SETS[bench][0]
    for level in SEVERITIES:
        params = load_bar(variant).params_for(name, level)
        draws = BAR.get(name).sample(np.random.RandomState(0), clean(bench, "astronaut").shape, params)
        expected = golden_params[f"{bench}/{name}/{level}"]
        assert set(draws) == set(expected)
        for key, value in expected.items():
            assert np.array_equal(np.asarray(draws[key]), np.asarray(value)), (level, key, draws[key], value)
        for photo in ("astronaut", "coffee"):
            golden = np.asarray(Image.open(reference() / SETS[bench][1] / photo / f"{name}-{level}.png").convert("RGB"))
            image = clean(bench, photo)
            before = image.copy()
            assert np.array_equal(corrupt_bar(image, name, level, variant=variant, draws=draws), golden), (photo, level)
            assert np.array_equal(image, before)


def _stats(out: np.ndarray, image: np.ndarray) -> tuple[float, float, float]:
    """PSNR, mean shift and gradient ratio of ``out`` against ``image``, as stats.json defines them."""
    a, b = out.astype(np.float64), image.astype(np.float64)
    mse = np.mean((a - b) ** 2)
    psnr = 10 * np.log10(255.0 ** 2 / mse) if mse > 0 else np.inf

    def gradient(x):
        return np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean()
    return psnr, a.mean() - b.mean(), gradient(a) / gradient(b)


def _jpeg(image: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=85, optimize=True)
    return np.asarray(Image.open(buffer).convert("RGB"))


@pytest.mark.parametrize("bench, name", CASES)
def test_statistics_of_the_originals_draws_are_stats_json(bench, name):
    """The original's six seeds replayed (``RandomState(s)`` before ``sample``, one draw for the
    four photos, as stats.json was made): every level's mean PSNR, mean shift and gradient
    ratio, ImageNet after the JPEG round trip at quality 85, equal to stats.json's rounding."""
    document = json.loads((reference() / "stats.json").read_text())
    variant = SETS[bench][0]
    photos = [clean(bench, photo) for photo in document["images"]]
    for level in SEVERITIES:
        params = load_bar(variant).params_for(name, level)
        per_seed = []
        for seed in range(document["seeds"]):
            draws = BAR.get(name).sample(np.random.RandomState(seed), photos[0].shape, params)
            outs = [corrupt_bar(image, name, level, variant=variant, draws=draws) for image in photos]
            per_seed.append(np.mean([_stats(_jpeg(out) if bench == "imagenet-c-bar" else out, image)
                                     for out, image in zip(outs, photos)], axis=0))
        theirs = document["stats"][bench][f"{name}/{level}"]
        for value, key in zip(np.mean(per_seed, axis=0), ("psnr", "dmean", "grad_ratio")):
            assert value == pytest.approx(theirs[key], abs=6e-4 if key == "grad_ratio" else 6e-3), (level, key)


def _scalars(draws) -> dict[str, float]:
    """The scalar numbers of a parameter mapping, arrays flattened in order (``name[i]``)."""
    out = {}
    for key, value in draws.items():
        flat = np.ravel(np.asarray(value, dtype=float))
        for index, number in enumerate(flat):
            out[f"{key}[{index}]" if flat.size > 1 else key] = float(number)
    return out


@pytest.mark.parametrize("bench, name", CASES)
def test_our_generator_draws_the_originals_distributions(bench, name):
    """``sample`` on this project's ``Generator`` against the original's ``RandomState``: 400
    draws each, every drawn number's two distributions alike (two-sample Kolmogorov-Smirnov,
    p > 0.001; fixed seeds, so the test is deterministic)."""
    from scipy.stats import ks_2samp
    variant = SETS[bench][0]
    shape = clean(bench, "astronaut").shape
    params = load_bar(variant).params_for(name, 3)
    kernel = BAR.get(name)
    ours = [_scalars(kernel.sample(np.random.default_rng([7, n]), shape, params)) for n in range(400)]
    theirs = [_scalars(kernel.sample(np.random.RandomState(10_000 + n), shape, params)) for n in range(400)]
    assert ours[0].keys() == theirs[0].keys()
    for key in ours[0]:
        a, b = [d[key] for d in ours], [d[key] for d in theirs]
        if min(a) == max(a) and min(b) == max(b):
            assert a[0] == b[0], key  # a constant of the level
        else:
            assert ks_2samp(a, b, method="asymp").pvalue > 1e-3, key
