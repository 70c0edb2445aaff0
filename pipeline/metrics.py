"""The paper's metrics, in plain numpy: ImageNet-C (CE, mCE, relative CE / mCE) and
ImageNet-P (flip rate, mFR, mT5D from the flip probabilities and top-5 distances that
``scoring/sequences.py`` measures on the device; their numpy restatement, the tests' oracle,
is ``tests/metrics_reference.py``).

Errors are fractions in [0, 1]; results are returned as percentages where the paper prints
them (CE 100 = AlexNet).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from corruptions import CORRUPTIONS, SEVERITIES
from perturbations import TEST


def image_names(task: str = "imagenet-c") -> tuple[list[str], list[str]]:
    """(every corruption in its benchmark's order, those the means run over) of an image
    benchmark: ImageNet-C's 19 and 15; C-bar's 15 (ImageNet-C-bar's ten, then CIFAR-10-C-bar's
    other five) and whichever of them were scored (the variant's ten)."""
    from corruptions.bar import BAR
    if task == BAR.task:
        return BAR.names("all"), BAR.names("all")
    return CORRUPTIONS.names("all"), CORRUPTIONS.names("benchmark")

# AlexNet's top-1 error on clean ImageNet validation (the paper).
ALEXNET_CLEAN_ERROR = 0.435
# AlexNet per-severity top-1 errors on ImageNet-C, as given by the benchmark's author
# (hendrycks/robustness issue 10); their means are the paper's Appendix D figures.
ALEXNET_ERRORS = {
    "gaussian_noise": (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    "shot_noise": (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    "impulse_noise": (0.78374, 0.89808, 0.94870, 0.98720, 0.99548),
    "defocus_blur": (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    "glass_blur": (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    "motion_blur": (0.58430, 0.70048, 0.82108, 0.89750, 0.92638),
    "zoom_blur": (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    "snow": (0.71726, 0.88392, 0.86468, 0.91870, 0.94952),
    "frost": (0.61390, 0.79734, 0.88790, 0.89942, 0.93430),
    "fog": (0.67474, 0.76050, 0.84378, 0.87260, 0.94500),
    "brightness": (0.45140, 0.48502, 0.54048, 0.62166, 0.72440),
    "contrast": (0.64548, 0.76150, 0.88874, 0.97760, 0.99270),
    "elastic_transform": (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    "pixelate": (0.52218, 0.54620, 0.73728, 0.87092, 0.91262),
    "jpeg_compression": (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
}
# Appendix D: AlexNet's mean error over the five severities, the extra corruptions included.
ALEXNET_MEAN_ERRORS = {
    "gaussian_noise": 0.886, "shot_noise": 0.894, "impulse_noise": 0.923, "defocus_blur": 0.820,
    "glass_blur": 0.826, "motion_blur": 0.786, "zoom_blur": 0.798, "snow": 0.867, "frost": 0.827,
    "fog": 0.819, "brightness": 0.565, "contrast": 0.853, "elastic_transform": 0.646, "pixelate": 0.718,
    "jpeg_compression": 0.607, "speckle_noise": 0.845, "gaussian_blur": 0.787, "spatter": 0.718,
    "saturate": 0.658,
}

# ImageNet-P, Appendix E: AlexNet's flip probability and unnormalised top-5 distance, at
# difficulty 1 (the paper gives no others).
ALEXNET_FP = {
    "gaussian_noise": 0.2365, "shot_noise": 0.3006, "motion_blur": 0.0930, "zoom_blur": 0.0594, "snow": 0.1193,
    "brightness": 0.0489, "translate": 0.1101, "rotate": 0.1310, "tilt": 0.0705, "scale": 0.2353,
    "speckle_noise": 0.1865, "gaussian_blur": 0.0278, "spatter": 0.0505, "shear": 0.1066,
}
ALEXNET_UT5D = {
    "gaussian_noise": 4.77, "shot_noise": 5.76, "motion_blur": 1.93, "zoom_blur": 1.34, "snow": 2.42,
    "brightness": 1.19, "translate": 2.63, "rotate": 2.95, "tilt": 1.75, "scale": 4.48, "speckle_noise": 3.89,
    "gaussian_blur": 0.70, "spatter": 1.26, "shear": 2.48,
}


# ------------------------------------------------------------------ ImageNet-C

class Baseline:
    """The errors a model is normalised by: AlexNet by default, or another model's results."""

    def __init__(self, name: str, clean_error: float, mean_errors: Mapping[str, float]):
        self.name, self.clean_error, self.mean_errors = name, float(clean_error), dict(mean_errors)

    @classmethod
    def alexnet(cls) -> "Baseline":
        means = dict(ALEXNET_MEAN_ERRORS)
        means.update({c: float(np.mean(e)) for c, e in ALEXNET_ERRORS.items()})  # unrounded where known
        return cls("AlexNet", ALEXNET_CLEAN_ERROR, means)

    @classmethod
    def from_results(cls, results: Mapping) -> "Baseline":
        """From a ``results.json`` written by ``python -m pipeline score``."""
        errors = results["errors"]
        means = {c: float(np.mean([errors[c][str(s)] for s in SEVERITIES])) for c in errors
                 if all(str(s) in errors[c] for s in SEVERITIES)}
        return cls(results.get("model", {}).get("name", "baseline"), results["clean_error"], means)


def corruption_error(errors: Mapping[int, float], baseline_mean: float) -> float:
    """CE = sum_s E_s / sum_s E_s^baseline, in percent (the baseline's five severities
    enter only through their sum, i.e. 5 x their mean)."""
    return 100.0 * float(np.sum([errors[s] for s in SEVERITIES])) / (len(SEVERITIES) * baseline_mean)


def relative_corruption_error(errors: Mapping[int, float], clean_error: float, baseline_mean: float,
                              baseline_clean: float) -> float:
    """Relative CE = sum_s (E_s - E_clean) / sum_s (E_s^base - E_clean^base), in percent."""
    gap = float(np.sum([errors[s] - clean_error for s in SEVERITIES]))
    return 100.0 * gap / (len(SEVERITIES) * (baseline_mean - baseline_clean))


def summarize_c(errors: Mapping[str, Mapping[int, float]], clean_error: float | None,
                baseline: Baseline | None | str = "alexnet", allow_partial: bool = False,
                task: str = "imagenet-c") -> dict:
    """CE and relative CE per corruption, mCE and relative mCE over the 15 benchmark
    corruptions (``image_names(task)``: C-bar's present ones). Cells that are missing are listed;
    the means are left out (None) unless every benchmark corruption is complete, or
    ``allow_partial``. Without a baseline (CIFAR, Tiny ImageNet: the paper gives no AlexNet errors;
    C-bar) there are no CEs, only the errors and their mean."""
    if baseline == "alexnet":
        baseline = Baseline.alexnet()
    names, benchmark_names = image_names(task)
    if task != CORRUPTIONS.task:
        benchmark_names = [name for name in benchmark_names if name in errors]
    if baseline is not None and not any(name in baseline.mean_errors for name in benchmark_names):
        baseline = None  # it knows none of these corruptions (AlexNet and C-bar): errors only
    ce, relative, missing = {}, {}, []
    for name in names:
        cells = errors.get(name, {})
        absent = [s for s in SEVERITIES if s not in cells]
        if absent:
            if cells or name in benchmark_names:
                missing += [f"{name}/{s}" for s in absent]
            continue
        if baseline is None or name not in baseline.mean_errors:
            continue
        ce[name] = corruption_error(cells, baseline.mean_errors[name])
        if clean_error is not None:
            relative[name] = relative_corruption_error(cells, clean_error, baseline.mean_errors[name],
                                                       baseline.clean_error)
    benchmark = [n for n in benchmark_names if n in ce]
    complete = len(benchmark) == len(benchmark_names)
    use = complete or (allow_partial and benchmark)
    whole = [n for n in benchmark_names if all(s in errors.get(n, {}) for s in SEVERITIES)]
    whole_complete = len(whole) == len(benchmark_names)
    return {
        "mean_error": (float(np.mean([np.mean([errors[n][s] for s in SEVERITIES]) for n in whole]))
                       if whole and (whole_complete or allow_partial) else None),
        "baseline": baseline.name if baseline else None,
        "baseline_clean_error": baseline.clean_error if baseline else None,
        "ce": ce,
        "relative_ce": relative,
        "mce": float(np.mean([ce[n] for n in benchmark])) if use else None,
        "relative_mce": (float(np.mean([relative[n] for n in benchmark])) if use and relative else None),
        "missing": missing,
        "partial": bool(use and not complete),
    }


# ------------------------------------------------------------------ ImageNet-P

def frame_pairs(n_frames: int, noise: bool, difficulty: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame pairs compared: noise sequences, every frame with the first; temporal ones,
    each frame with the one ``difficulty`` frames before (ImageNet-P/test.py)."""
    if noise:
        later = np.arange(1, n_frames)
        return np.zeros_like(later), later
    later = np.arange(difficulty, n_frames)
    return later - difficulty, later


class FlipBaseline:
    """The flip probabilities and top-5 distances a model's are normalised by, per
    (perturbation, difficulty): AlexNet's (Appendix E, difficulty 1) or another model's."""

    def __init__(self, name: str, values: Mapping[tuple[str, int], tuple[float, float]]):
        self.name, self.values = name, dict(values)

    @classmethod
    def alexnet(cls) -> "FlipBaseline":
        return cls("AlexNet", {(p, 1): (ALEXNET_FP[p], ALEXNET_UT5D[p]) for p in ALEXNET_FP})

    @classmethod
    def from_results(cls, results: Mapping) -> "FlipBaseline":
        """From an ImageNet-P ``results.json`` written by ``python -m pipeline score``."""
        values = {(p, int(d)): (float(cell["fp"]), float(cell["ut5d"]))
                  for p, cells in results["perturbations"].items() for d, cell in cells.items()}
        return cls(results.get("model", {}).get("name", "baseline"), values)


def summarize_p(measured: Mapping[str, Mapping[int, Mapping[str, float]]],
                baseline: FlipBaseline | None = None) -> dict:
    """FR = FP / FP(baseline) and T5D = uT5D / uT5D(baseline), in percent, per perturbation
    and difficulty the baseline has (keyed ``fr[p]["1"]``, as in results.json); mFR and mT5D over
    the 10 test perturbations at difficulty 1 (the paper's Tables 3 and 4), None unless all ten
    are measured. ``measured[p][d]`` holds ``fp`` and ``ut5d``. Validation perturbations and
    difficulties 2-3 never enter the means."""
    fr, t5d = {}, {}
    if baseline is not None:
        for p, cells in measured.items():
            for d, cell in cells.items():
                if (p, int(d)) in baseline.values:
                    base_fp, base_ut5d = baseline.values[(p, int(d))]
                    fr.setdefault(p, {})[str(d)] = 100.0 * cell["fp"] / base_fp if base_fp else None
                    t5d.setdefault(p, {})[str(d)] = 100.0 * cell["ut5d"] / base_ut5d if base_ut5d else None
    complete = all(fr.get(p, {}).get("1") is not None for p in TEST)
    return {
        "baseline": baseline.name if baseline else None,
        "fr": fr, "t5d": t5d,
        "mfr": float(np.mean([fr[p]["1"] for p in TEST])) if complete else None,
        "mt5d": float(np.mean([t5d[p]["1"] for p in TEST])) if complete else None,
        "missing": [p for p in TEST if not {1, "1"} & set(measured.get(p, {}))],
    }
