"""Milliseconds per call of every corruption, `imagenet` variant (224 x 224), on one core.

    python benchmarks/bench_corruptions.py [--originals PATH/make_imagenet_c.py] [--repeats N]

Prints the median ms per call of each corruption over the four sample photos x five
severities, its slowest severity, and the total for the 15 benchmark corruptions x 5
severities per source image. With --originals (a copy of hendrycks/robustness
ImageNet-C/create_c/make_imagenet_c.py), the original functions are timed in the same
run on the same inputs and the ratio is printed; otherwise the originals' figures
measured on these machines (shared/reference/README.md) are shown for comparison.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before numpy loads

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import skimage.data  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from corruptions import corrupt, corrupt_severities, corruption_names  # noqa: E402
from corruptions.assets import FROST_DIR  # noqa: E402
from corruptions.config import preprocess  # noqa: E402
from corruptions.runtime import keep_freed_memory  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
# shared/reference/README.md: the originals on one core of these machines, ms per call
ORIGINAL_MS = {
    "gaussian_noise": 1.9, "shot_noise": 6.8, "impulse_noise": 2.3, "defocus_blur": 1.7, "glass_blur": 393.4,
    "motion_blur": 44.7, "zoom_blur": 39.8, "snow": 22.3, "frost": 4.2, "fog": 1.1, "brightness": 12.8,
    "contrast": 1.0, "elastic_transform": 8.3, "pixelate": 0.3, "jpeg_compression": 0.1, "speckle_noise": 1.9,
    "gaussian_blur": 1.8, "spatter": 3.1, "saturate": 12.8,
}
TARGET_TOTAL_MS, TARGET_PER_CALL_MS = 150.0, 10.0


def load_originals(script: Path) -> dict:
    """The original distortion functions, executed from the script's own text.

    Only the helper and distortion sections run (the file's top level would generate the
    whole dataset), with the substitutions the reference data used for today's libraries.
    """
    text = script.read_text()
    code = text[text.index("# /////////////// Distortion Helpers"):text.index("# /////////////// End Distortions")]
    for old, new in (("multichannel=True", "channel_axis=-1"), ("np.float_", "np.float64"),
                     ("np.fromstring", "np.frombuffer"), ("scipy.ndimage.interpolation", "scipy.ndimage"),
                     ("'./frost", f"'{FROST_DIR}/frost")):
        code = code.replace(old, new)
    namespace = {"np": np}
    exec(compile(code, str(script), "exec"), namespace)  # noqa: S102 - timing the reference only
    return namespace


def time_calls(call, inputs, repeats: int) -> dict[int, list[float]]:
    per_severity: dict[int, list[float]] = {s: [] for s in range(1, 6)}
    for image in inputs:
        for severity in range(1, 6):
            for _ in range(repeats):
                start = time.perf_counter()
                call(image, severity)
                per_severity[severity].append((time.perf_counter() - start) * 1000)
    return per_severity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--originals", type=Path, help="path to make_imagenet_c.py to time in the same run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's allocator as it is (pipeline workers tune it)")
    args = parser.parse_args()
    tuned = not args.default_allocator and keep_freed_memory()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)
    cleans = [preprocess(Image.fromarray(getattr(skimage.data, p)()), "imagenet") for p in PHOTOS]
    originals = load_originals(args.originals) if args.originals else None
    rng = np.random.default_rng(0)

    rows, ours_total, theirs_total = [], 0.0, 0.0
    for name in corruption_names("all"):
        corrupt(cleans[0], name, 1, rng)  # compile / warm caches
        ours = time_calls(lambda im, s: corrupt(im, name, s, rng), cleans, args.repeats)
        median = float(np.median(sum(ours.values(), [])))
        worst = max(float(np.median(v)) for v in ours.values())
        per_image = sum(float(np.median(v)) for v in ours.values())
        if originals is not None:
            function = originals[name]
            pil = [Image.fromarray(c) for c in cleans]
            theirs = time_calls(lambda im, s: np.uint8(function(im, s)), pil, 1 if name == "glass_blur" else args.repeats)
            reference = float(np.median(sum(theirs.values(), [])))
            reference_per_image = sum(float(np.median(v)) for v in theirs.values())
        else:
            reference, reference_per_image = ORIGINAL_MS[name], ORIGINAL_MS[name] * 5
        if name in corruption_names("benchmark"):
            ours_total += per_image
            theirs_total += reference_per_image
        rows.append((name, median, worst, reference, reference / median))

    source = "timed in this run" if originals is not None else "reference README"
    allocator = "tuned as in pipeline workers" if tuned else "default"
    print(f"imagenet variant, 224 x 224, one core; allocator: {allocator}; originals: {source}")
    print(f"{'corruption':<18} {'ms/call':>8} {'worst sev':>9} {'original':>9} {'speed-up':>9}")
    for name, median, worst, reference, ratio in rows:
        flag = "  > target" if worst > TARGET_PER_CALL_MS else ""
        print(f"{name:<18} {median:8.2f} {worst:9.2f} {reference:9.1f} {ratio:8.1f}x{flag}")
    print(f"total, 15 benchmark corruptions x 5 severities per source image: {ours_total:.1f} ms "
          f"(originals {theirs_total:.0f} ms, {theirs_total / ours_total:.1f}x; target <= {TARGET_TOTAL_MS:.0f} ms)")
    # the engine's path: every severity of an image in one call, sharing what severities share
    levels = list(range(1, 6))
    together = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for image in cleans:
            for name in corruption_names("benchmark"):
                corrupt_severities(image, name, levels, [rng] * 5)
        together.append((time.perf_counter() - start) * 1000 / len(cleans))
    print(f"the same 75 outputs as the engine makes them (corrupt_severities, the 5 severities of an image at "
          f"once): {min(together):.1f} ms per source image ({theirs_total / min(together):.1f}x the originals)")


if __name__ == "__main__":
    main()
