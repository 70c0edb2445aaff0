"""Milliseconds per call of every ImageNet-C-bar corruption (224 x 224) and CIFAR-10-C-bar
corruption (32 x 32), on one core, against the original generator in the same run.

    python benchmarks/bench_c_bar.py [--originals PATH/imagenet_c_bar] [--levels 1 3 5]

``--originals``: the ``imagenet_c_bar/`` folder of facebookresearch/augmentation-corruption
(its ``corrupt.py``; on numpy >= 1.24 ``np.int`` is set to ``int`` for it); each original transform is
called on the same photo with the same parameters (its own ``sample_parameters`` after
``np.random.seed(level)``), and our output is checked equal to the original's before it is
timed. Without it, the original's figures measured on these machines
(shared/reference/imagenet-c-bar/README.md) are shown.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before numpy loads

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import skimage.data  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from corruptions.bar import BAR, bar_benchmark, corrupt_bar, load_bar  # noqa: E402
from corruptions.config import preprocess  # noqa: E402

# shared/reference/imagenet-c-bar/README.md: the original on one core of these machines, ms per 224 px call
ORIGINAL_MS = {"caustic_refraction": 3946, "inverse_sparkles": 533, "sparkles": 3046, "perlin_noise": 1128,
               "blue_noise_sample": 122, "plasma_noise": 1196, "checkerboard_cutout": 91,
               "cocentric_sine_waves": 95, "single_frequency_greyscale": 24, "brownish_noise": 403}


def timed(call, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        call()
        best = min(best, time.process_time() - started)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--originals", type=Path, help="the imagenet_c_bar/ folder of the original repository")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    originals = None
    if args.originals:
        if not hasattr(np, "int"):
            np.int = int  # the original's Lines uses np.int (removed in numpy 1.24): its one needed change
        sys.path.insert(0, str(args.originals))
        import corrupt as originals  # noqa: PLC0415 - the original's module, from the folder given
        import transform_finder  # noqa: F401,PLC0415
    photo = Image.fromarray(skimage.data.astronaut())
    print(f"{'variant':9s} {'corruption':32s} {'ours ms':>9s} {'original ms':>12s} {'ratio':>7s}")
    for variant in ("imagenet", "cifar"):
        clean = preprocess(photo, variant)
        bar = load_bar(variant)
        total_ours, total_theirs = 0.0, 0.0
        for name in bar_benchmark(variant):
            ours_ms, theirs_ms = [], []
            for level in args.levels:
                params = bar.params_for(name, level)
                draws = BAR.get(name).sample(np.random.RandomState(level), clean.shape, params)
                ours_ms.append(timed(lambda: corrupt_bar(clean, name, level, variant=variant, draws=draws), args.repeats))
                if originals is not None:
                    cls = next(c for c in vars(originals).values() if getattr(c, "name", None) == name)
                    original = cls(params["severity"], clean.shape[0])
                    np.random.seed(level)
                    theirs_draws = original.sample_parameters()
                    theirs = original.transform(clean, **theirs_draws)
                    assert np.array_equal(corrupt_bar(clean, name, level, variant=variant, draws=theirs_draws), theirs), name
                    theirs_ms.append(timed(lambda: original.transform(clean, **theirs_draws), 1))
            ours = float(np.median(ours_ms))
            theirs = float(np.median(theirs_ms)) if theirs_ms else ORIGINAL_MS.get(name) if variant == "imagenet" else None
            total_ours += ours
            total_theirs += theirs or 0.0
            ratio = f"{theirs / ours:7.0f}x" if theirs else "      -"
            print(f"{variant:9s} {name:32s} {ours:9.1f} {theirs if theirs else float('nan'):12.1f} {ratio}")
        ratio = f"{total_theirs / total_ours:.0f}x" if total_theirs else "-"
        print(f"{variant}: the ten at one level per image: ours {total_ours:.1f} ms, original {total_theirs:.0f} ms "
              f"({ratio})\n")


if __name__ == "__main__":
    main()
