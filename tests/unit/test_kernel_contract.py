"""One contract, run over every kernel and every variant."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from corruptions import SEVERITIES, corrupt, corrupt_severities, corruption_names, variant_names
from corruptions.registry import get

from ..helpers import clean

ALL = corruption_names("all")
STOCHASTIC = [n for n in ALL if get(n).stochastic]
DETERMINISTIC = [n for n in ALL if not get(n).stochastic]


@pytest.mark.parametrize("variant", variant_names())
@pytest.mark.parametrize("name", ALL)
def test_contract_shape_dtype_no_mutation(name, variant):
    image = np.array(clean("chelsea", variant))  # writeable copy: mutation would be seen
    before = image.copy()
    for severity in (1, 5):
        out = corrupt(image, name, severity, rng=3, variant=variant)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert not np.shares_memory(out, image)
        assert np.array_equal(image, before), "input modified"
        assert out.flags.writeable


@pytest.mark.parametrize("variant", ["imagenet", "tiny"])
@pytest.mark.parametrize("name", ALL)
def test_severities_at_once_equal_one_at_a_time(name, variant):
    """The engine's path (work shared between severities) gives corrupt()'s bytes."""
    image = np.array(clean("astronaut", variant))
    before = image.copy()
    seeds = [np.random.default_rng([7, s]) for s in SEVERITIES]
    together = corrupt_severities(image, name, list(SEVERITIES), seeds, variant)
    assert np.array_equal(image, before), "input modified"
    for index, severity in enumerate(SEVERITIES):
        assert np.array_equal(together[index], corrupt(image, name, severity, np.random.default_rng([7, severity]),
                                                       variant)), severity
    subset = corrupt_severities(image, name, [5, 2], [np.random.default_rng([7, 5]), np.random.default_rng([7, 2])],
                                variant)
    assert np.array_equal(subset, together[[4, 1]])


def test_severities_at_once_refuses_mistakes():
    image = clean("coffee", "cifar")
    with pytest.raises(ValueError, match="one rng"):
        corrupt_severities(image, "fog", [1, 2, 3], [0, 1], "cifar")
    with pytest.raises(ValueError, match="severity must be one of"):
        corrupt_severities(image, "fog", [1, 6], [0, 1], "cifar")
    with pytest.raises(ValueError, match="unknown"):
        corrupt_severities(image, "fgo", [1], [0], "cifar")
    with pytest.raises(ValueError, match="shape"):
        corrupt_severities(image[..., :2], "fog", [1], [0], "cifar")


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(37, 53), (61, 40), (8, 8), (300, 180)])
def test_other_sizes_including_non_square(name, shape):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    for severity in (1, 3, 5):
        out = corrupt(image, name, severity, rng=rng, variant="imagenet")
        assert out.shape == image.shape and out.dtype == np.uint8


@pytest.mark.parametrize("name", ALL)
def test_grey_and_rgba_inputs_become_rgb(name):
    rgb = np.array(clean("coffee", "cifar"))
    grey = rgb[..., 0].copy()
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    assert np.array_equal(corrupt(rgba, name, 2, 5, "cifar"), corrupt(rgb, name, 2, 5, "cifar"))
    assert np.array_equal(corrupt(grey, name, 2, 5, "cifar"), corrupt(np.dstack([grey] * 3), name, 2, 5, "cifar"))


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_bytes(name):
    image = clean("rocket", "imagenet")
    first = corrupt(image, name, 3, np.random.default_rng(11))
    assert np.array_equal(first, corrupt(image, name, 3, 11))
    assert np.array_equal(first, corrupt(image, name, 3, np.random.default_rng(11)))


@pytest.mark.parametrize("name", STOCHASTIC)
def test_different_seeds_differ(name):
    image = clean("astronaut", "imagenet")
    assert not np.array_equal(corrupt(image, name, 3, 1), corrupt(image, name, 3, 2))


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_corruptions_ignore_the_seed(name):
    image = clean("astronaut", "tiny")
    assert np.array_equal(corrupt(image, name, 4, 1, "tiny"), corrupt(image, name, 4, 2, "tiny"))


def test_corruptions_change_the_image():
    image = clean("chelsea", "imagenet")
    for name in ALL:
        assert not np.array_equal(corrupt(image, name, 5, 0), image), name


def test_thread_safe():
    image = clean("coffee", "imagenet64")
    jobs = [(name, severity, seed) for name in ALL for severity in (1, 5) for seed in (0, 1)]
    serial = [corrupt(image, n, s, seed, "imagenet64") for n, s, seed in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(lambda job: corrupt(image, job[0], job[1], job[2], "imagenet64"), jobs * 2))
    for index, out in enumerate(threaded):
        assert np.array_equal(out, serial[index % len(jobs)]), jobs[index % len(jobs)]


def test_rng_for_depends_on_every_part_of_the_key():
    from corruptions import rng_for
    base = ("0", "imagenet", "fog", 3, "ILSVRC2012_val_00000001.JPEG")
    draw = lambda *key: rng_for(*key).integers(0, 2**62)  # noqa: E731
    assert draw(*base) == draw(*base)
    for index, other in enumerate((1, "tiny", "snow", 4, "ILSVRC2012_val_00000002.JPEG")):
        changed = list(base)
        changed[index] = other
        assert draw(*changed) != draw(*base)


def test_c_bar_refuses_a_non_square_image_and_leaves_it_untouched():
    """C-bar's kernels are the original's on square ``im_size`` images (the engine gives them
    square crops): anything else is refused with a ValueError naming the size."""
    from corruptions.bar import bar_benchmark, corrupt_bar
    image = np.ascontiguousarray(clean("astronaut", "imagenet")[:, :200])
    before = image.copy()
    for name in bar_benchmark("imagenet"):
        with pytest.raises(ValueError, match=r"square images .*\(224, 200\)"):
            corrupt_bar(image, name, 3, np.random.default_rng(0))
    assert np.array_equal(image, before)
