"""The C-bar registry: the 15 corruptions of ImageNet-C-bar and CIFAR-10-C-bar (Mintun,
Kirillov & Xie 2021), each a ``sample`` / ``apply`` pair on the contract of
``corruptions.registry``.

``sample(rng, shape, params)`` makes every draw the original's ``sample_parameters`` makes, in
its order, and returns the original's parameter mapping (constants included): ``rng`` is this
project's ``numpy.random.Generator``, or the original's own ``RandomState`` when a test replays
its draws (``integers`` / ``randint`` and ``standard_normal`` / ``randn`` are the only methods
whose names differ, see ``_integers``). ``apply(image, params, draws)`` is the vectorised
``transform`` of ``kernels`` on those parameters. A level's ``severity`` is the original's float
severity (``imagenet_c_bar.csv``), and ``float_parameter(s, m) = s * m / 10`` as the original.
"""
from __future__ import annotations

import numpy as np

from ..registry import Registry
from ..settings import FRACTION, NONNEGATIVE, NUMBER, POSITIVE, POSITIVE_INT, RGB, numbers
from . import kernels

# ImageNet-C-bar's ten (the rows of imagenet_c_bar.csv), then the five more CIFAR-10-C-bar has
IMAGENET_BAR = ("caustic_refraction", "inverse_sparkles", "sparkles", "perlin_noise", "blue_noise_sample",
                "plasma_noise", "checkerboard_cutout", "cocentric_sine_waves", "single_frequency_greyscale",
                "brownish_noise")
CIFAR_ONLY = ("pinch_and_twirl", "ripple", "circular_motion_blur", "lines", "transverse_chromatic_abberation")
BAR = Registry("imagenet-c-bar", {"imagenet": IMAGENET_BAR, "cifar": CIFAR_ONLY}, ("corruptions.bar.registry",))

RANGE = numbers(2, "two numbers [low, high] with low <= high", ordered=True)
SEVERITY = {"severity": NONNEGATIVE}  # the original's float severity of a level


def float_parameter(severity: float, maxval: float) -> float:
    """The original's ``float_parameter``: ``float(s) * maxval / 10``."""
    return float(severity) * maxval / 10.


def _integers(rng, low, high, size=None):
    """``randint`` of a replayed ``RandomState``, ``integers`` of a ``Generator`` (same bounds)."""
    if hasattr(rng, "integers"):
        return rng.integers(low, high, size=size)
    return rng.randint(low=low, high=high, size=size)


def _seed(rng) -> int:
    """The original's ``np.random.randint(low=0, high=2**32)`` (the seed of a RandomState that
    ``transform`` draws its own numbers from)."""
    return int(_integers(rng, 0, 2 ** 32))


def _size(shape) -> int:
    """The original's ``im_size``: its images are square."""
    return int(shape[0])


def register(name: str, *, shared=None, sample=None):
    """Registers ``kernels.<name>`` as ``apply(image, params, draws) = kernel(image, **draws)``,
    or ``kernel(image, **params_of(image.shape, params))`` for a deterministic ``sample``."""
    kernel = getattr(kernels, name)

    def apply(image, params, draws):
        return kernel(image, **draws)
    BAR.register(name, family="bar", levels=SEVERITY, shared=shared or {}, sample=sample)(apply)


def _caustic_refraction(rng, shape, p):
    im = _size(shape)
    time = rng.uniform(low=p["time"][0], high=p["time"][1])
    size = rng.uniform(low=p["size"][0], high=p["size"][1]) * im
    return {"time": time, "size": size, "eta": p["eta"], "lens_scale": float_parameter(p["severity"], p["lens_scale"] * im),
            "lighting_amount": float_parameter(p["severity"], p["lighting_amount"]), "softening": p["softening"]}


register("caustic_refraction", sample=_caustic_refraction,
         shared={"time": RANGE, "size": RANGE, "eta": POSITIVE, "lens_scale": POSITIVE, "lighting_amount": POSITIVE,
                 "softening": POSITIVE})


def _inverse_sparkles(rng, shape, p):
    im = _size(shape)
    center = rng.uniform(low=p["center"][0], high=p["center"][1], size=2) * im
    seed = _seed(rng)
    rays = int(_integers(rng, p["rays"][0], p["rays"][1]))
    return {"center": center, "radius": p["radius"] * im, "color": np.array(p["color"]), "randomness": p["randomness"],
            "seed": seed, "rays": rays, "amount": 100 - float_parameter(p["severity"], p["amount"])}


register("inverse_sparkles", sample=_inverse_sparkles,
         shared={"center": RANGE, "radius": POSITIVE, "amount": NUMBER, "color": RGB, "randomness": NONNEGATIVE,
                 "rays": RANGE})


def _sparkles(rng, shape, p):
    im, stars = _size(shape), int(p["stars"])
    centers = rng.uniform(low=0, high=im, size=(stars, 2))
    radii = np.array([float_parameter(p["severity"], p["radius"]) for _ in range(stars)]) * im
    seed = _seed(rng)
    nrays = _integers(rng, p["rays"][0], p["rays"][1], size=stars)
    return {"centers": centers, "radii": radii, "color": np.array(p["color"]), "randomness": p["randomness"],
            "seed": seed, "nrays": nrays, "amounts": np.array([p["amount"]] * stars)}


register("sparkles", sample=_sparkles,
         shared={"stars": POSITIVE_INT, "radius": POSITIVE, "amount": NUMBER, "color": RGB,
                 "randomness": NONNEGATIVE, "rays": RANGE})


def _perlin_noise(rng, shape, p):
    im = _size(shape)
    m = np.array([[1, 0], [0, 1]]) / (p["cell"] * im / p["reference_size"])
    return {"m": m, "turbulence": p["turbulence"], "seed": _seed(rng), "gain": p["gain"], "bias": p["bias"],
            "alpha": float_parameter(p["severity"], p["alpha"])}


register("perlin_noise", sample=_perlin_noise,
         shared={"cell": POSITIVE, "reference_size": POSITIVE, "turbulence": POSITIVE, "gain": NUMBER, "bias": NUMBER,
                 "alpha": FRACTION})


def _blue_noise_sample(rng, shape, p):
    return {"seed": _seed(rng), "threshold": float_parameter(p["severity"], p["threshold"]) + p["threshold_offset"]}


register("blue_noise_sample", sample=_blue_noise_sample, shared={"threshold": NUMBER, "threshold_offset": NUMBER})


def _plasma_noise(rng, shape, p):
    im = _size(shape)
    time = rng.uniform(low=p["time"][0], high=p["time"][1])
    iterations = int(_integers(rng, p["iterations"][0], p["iterations"][1]))
    sharpness = rng.uniform(low=p["sharpness"][0], high=p["sharpness"][1])
    scale = rng.uniform(low=p["scale"][0], high=p["scale"][1]) * im
    return {"time": time, "iterations": iterations, "sharpness": sharpness, "scale": scale,
            "intensity": float_parameter(p["severity"], p["intensity"])}


register("plasma_noise", sample=_plasma_noise,
         shared={"time": RANGE, "iterations": RANGE, "sharpness": RANGE, "scale": RANGE, "intensity": NUMBER})


def _checkerboard_cutout(rng, shape, p):
    im = _size(shape)
    angle = rng.uniform(low=p["angle"][0], high=p["angle"][1])
    scale = np.maximum(rng.uniform(low=p["scale"][0], high=p["scale"][1]) * im, 1)
    return {"angle": angle, "scales": (scale, scale), "fraction": float_parameter(p["severity"], p["fraction"]),
            "seed": _seed(rng)}


register("checkerboard_cutout", sample=_checkerboard_cutout,
         shared={"angle": RANGE, "scale": RANGE, "fraction": NUMBER})


def _cocentric_sine_waves(rng, shape, p):
    im = _size(shape)
    offset = rng.uniform(low=0, high=im, size=2)
    freq = rng.uniform(low=p["freq"][0], high=p["freq"][1])
    amplitude = rng.uniform(low=0, high=im / p["amplitude_divisor"])
    ring_width = rng.uniform(low=0, high=im / p["ring_width_divisor"])
    return {"offset": offset, "freq": freq, "amplitude": amplitude, "ring_width": ring_width,
            "intensity": [float_parameter(p["severity"], p["intensity"]) for _ in range(3)]}


register("cocentric_sine_waves", sample=_cocentric_sine_waves,
         shared={"freq": RANGE, "amplitude_divisor": POSITIVE, "ring_width_divisor": POSITIVE, "intensity": NUMBER})


def _single_frequency_greyscale(rng, shape, p):
    freq_mag = rng.uniform(low=-np.pi, high=np.pi)
    freq_2 = rng.uniform(low=-abs(freq_mag), high=abs(freq_mag))
    freq = np.array([freq_mag, freq_2])[rng.permutation(2)]
    phase = rng.uniform(low=0, high=2 * np.pi)
    return {"freq": freq, "phase": phase, "intensity": float_parameter(p["severity"], p["intensity"])}


register("single_frequency_greyscale", sample=_single_frequency_greyscale, shared={"intensity": NUMBER})


def _brownish_noise(rng, shape, p):
    return {"seed": _seed(rng), "intensity": float_parameter(p["severity"], p["intensity"])}


register("brownish_noise", sample=_brownish_noise, shared={"intensity": NUMBER})


def _pinch_and_twirl(rng, shape, p):
    cells = int(p["cells_per_axis"])
    twirl = float_parameter(p["severity"], p["twirl"])
    angles = np.array([rng.choice([1, -1]) * twirl for _ in range(cells ** 2)]).reshape(cells, cells)
    return {"num_per_axis": cells, "angles": angles, "amount": float_parameter(p["severity"], p["pinch"]) + p["pinch_offset"]}


register("pinch_and_twirl", sample=_pinch_and_twirl,
         shared={"cells_per_axis": POSITIVE_INT, "twirl": NUMBER, "pinch": NUMBER, "pinch_offset": NUMBER})


def _ripple(rng, shape, p):
    im = _size(shape)
    amplitudes = np.array([float_parameter(p["severity"], p["amplitude"]) for _ in range(2)]) * im
    wavelengths = rng.uniform(low=p["wavelength"][0], high=p["wavelength"][1], size=2) * im
    phases = rng.uniform(low=0, high=2 * np.pi, size=2)
    return {"amplitudes": amplitudes, "wavelengths": wavelengths, "phases": phases}


register("ripple", sample=_ripple, shared={"amplitude": NUMBER, "wavelength": RANGE})


def _circular_motion_blur(rng, shape, p):
    return {"amount": float_parameter(p["severity"], p["amount"])}


register("circular_motion_blur", sample=_circular_motion_blur, shared={"amount": NUMBER})


def _lines(rng, shape, p):
    angle = rng.uniform(low=p["angle"][0], high=p["angle"][1])
    angle_variation = rng.uniform(low=p["angle_variation"][0], high=p["angle_variation"][1])
    return {"length": p["length"], "density": float_parameter(p["severity"], p["density"]), "angle": angle,
            "angle_variation": angle_variation, "seed": _seed(rng)}


register("lines", sample=_lines, shared={"length": POSITIVE, "density": NUMBER, "angle": RANGE,
                                         "angle_variation": RANGE})


def _transverse_chromatic_abberation(rng, shape, p):
    scale = float_parameter(p["severity"], p["scale"])
    scales = np.array([1.0, 1.0 + scale / 2, 1.0 + scale])
    return {"scales": scales[rng.permutation(3)]}


register("transverse_chromatic_abberation", sample=_transverse_chromatic_abberation, shared={"scale": NUMBER})


def bar_names(group: str = "all") -> list[str]:
    """C-bar corruption names: ``"imagenet"`` (ImageNet-C-bar's ten), ``"cifar"`` (the five only
    CIFAR-10-C-bar has) or ``"all"``; a variant's benchmark is its ``c_bar`` table
    (``corruptions.bar.load_bar``)."""
    return BAR.names(group)
