"""ImageNet-P speed, `imagenet` variant (224 x 224), one core: frames and writing per source image.

    python benchmarks/bench_perturbations.py [--photos N] [--skip-veryslow]

1. Frame generation: ms per sequence of each of the 20 kinds (median over the photos) and the
   total per source image, beside the originals' figures measured on these machines
   (shared/reference/imagenet-p/README.md: 5,100 ms in all; motion_blur 1,800, snow 1,000,
   brightness 500, shot noise 240-290 per sequence).
2. Writing, per source image for all 20 kinds, timed in this run on the same frames:
   - the originals' path: every frame written as PNG (Pillow), then their ffmpeg command
     (libx264, preset veryslow, CRF 20 / grain tune) with the `imageio-ffmpeg` wheel's ffmpeg,
     `-threads 1`;
   - ours: frames streamed to PyAV in-process at the same settings; a fast preset; lossless Zarr
     (zstd level 1, the default).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before numpy loads

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import skimage.data  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from perturbations import family, perturb, sequence_names  # noqa: E402
from pipeline.formats.mp4_tree import Encoding, encode  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
ORIGINAL_TOTAL_MS = {"frames": 5100, "png": 7700, "ffmpeg": 28700, "all": 41600}
ORIGINAL_KIND_MS = {"motion_blur": 1800, "snow": 1000, "brightness": 500, "shot_noise": 265}


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, (time.perf_counter() - start) * 1000


def originals_writing(frames: np.ndarray, kind: str) -> float:
    """PNG files, then the originals' ffmpeg command; ms."""
    import imageio_ffmpeg
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        for index, frame in enumerate(frames):
            Image.fromarray(frame).save(f"{folder}/img{index}.png")
        quality = ["-tune", "grain"] if family(kind) == "noise" else ["-crf", "20"]
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-r", "1", "-framerate", "1", "-i",
                        f"{folder}/img%01d.png", "-vcodec", "libx264", *quality, "-preset", "veryslow", "-threads", "1",
                        "-y", f"{folder}/out.mp4"], check=True)
        return (time.perf_counter() - start) * 1000


def zarr_bytes(frames: np.ndarray) -> tuple[int, float]:
    import numcodecs
    codec = numcodecs.Zstd(level=1)
    start = time.perf_counter()
    size = len(codec.encode(np.ascontiguousarray(frames)))
    return size, (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=4, help="photos for frame timing (1-4)")
    parser.add_argument("--skip-veryslow", action="store_true", help="leave out the preset-veryslow encodings")
    args = parser.parse_args()
    photos = [getattr(skimage.data, name)() for name in PHOTOS[:args.photos]]
    kinds = sequence_names("all")
    for kind in kinds:  # compile numba kernels, load tables
        perturb(photos[0], kind, np.random.default_rng(0), "imagenet")
    print("1. frame generation, imagenet variant, one core: ms per sequence (median over photos)")
    print(f"{'kind':18s} {'frames':>6s} {'ours ms':>8s} {'originals ms':>13s}")
    per_kind = {}
    for kind in kinds:
        times = [timed(perturb, photo, kind, np.random.default_rng(1), "imagenet")[1] for photo in photos]
        per_kind[kind] = float(np.median(times))
        frames = len(perturb(photos[0], kind, np.random.default_rng(1), "imagenet"))
        original = ORIGINAL_KIND_MS.get(kind.split("_2")[0].split("_3")[0], "")
        print(f"{kind:18s} {frames:6d} {per_kind[kind]:8.1f} {original!s:>13s}")
    total = sum(per_kind.values())
    print(f"{'total, 20 kinds':18s} {'':6s} {total:8.1f} {ORIGINAL_TOTAL_MS['frames']:13d}   "
          f"ratio {ORIGINAL_TOTAL_MS['frames'] / total:.1f}x; kinds above 25 ms: "
          f"{sum(v > 25 for v in per_kind.values())}")

    print("\n2. writing, per source image (coffee), all 20 kinds, one core, ms")
    photo = skimage.data.coffee()
    sequences = {kind: perturb(photo, kind, np.random.default_rng(2), "imagenet") for kind in kinds}
    rows = {"originals: PNG + ffmpeg veryslow": 0.0, "ours: PyAV veryslow (the originals' settings)": 0.0,
            "ours: PyAV veryfast": 0.0, "ours: Zarr (zstd 1, lossless)": 0.0}
    sizes = {key: 0 for key in rows}
    for kind, frames in sequences.items():
        defaults = Encoding(crf=None, tune="grain") if family(kind) == "noise" else Encoding()
        fast = Encoding(preset="veryfast", crf=defaults.crf, tune=defaults.tune)
        if not args.skip_veryslow:
            rows["originals: PNG + ffmpeg veryslow"] += originals_writing(frames, kind)
            data, ms = timed(encode, frames, defaults)
            rows["ours: PyAV veryslow (the originals' settings)"] += ms
            sizes["ours: PyAV veryslow (the originals' settings)"] += len(data)
        data, ms = timed(encode, frames, fast)
        rows["ours: PyAV veryfast"] += ms
        sizes["ours: PyAV veryfast"] += len(data)
        size, ms = zarr_bytes(frames)
        rows["ours: Zarr (zstd 1, lossless)"] += ms
        sizes["ours: Zarr (zstd 1, lossless)"] += size
    baseline = rows["originals: PNG + ffmpeg veryslow"] + ORIGINAL_TOTAL_MS["frames"]
    print(f"{'path':48s} {'write ms':>9s} {'+frames ms':>11s} {'vs originals':>13s} {'MiB':>7s}")
    for key, ms in rows.items():
        if ms == 0:
            continue
        end_to_end = ms + (ORIGINAL_TOTAL_MS["frames"] if key.startswith("originals") else total)
        ratio = f"{baseline / end_to_end:.2f}x" if baseline > ORIGINAL_TOTAL_MS["frames"] else "-"
        size = f"{sizes[key] / 2**20:.1f}" if sizes[key] else "-"
        print(f"{key:48s} {ms:9.0f} {end_to_end:11.0f} {ratio:>13s} {size:>7s}")
    print("(originals end to end = their writing measured here + their frame generation, 5,100 ms, from the "
          "reference README; ours = our writing + our frame total above)")


if __name__ == "__main__":
    main()
