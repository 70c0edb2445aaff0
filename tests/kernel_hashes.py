"""Prints, as JSON, the sha256 of every kernel output for a few photos: every ImageNet-C
corruption and severity (and its JPEG bytes as the JPEG tree writes them), every C-bar corruption
and level and every ImageNet-P kind, of every variant. The CPU-independence test runs it in
subprocesses whose numpy, OpenCV, numba, OpenBLAS, glibc and libjpeg-turbo dispatch is lowered,
and compares with the native run."""
from __future__ import annotations

import hashlib
import json
import sys

import numpy as np


def kernel_hashes(photos=("astronaut", "coffee")) -> dict[str, str]:
    from corruptions import SEVERITIES, corrupt_severities, corruption_names, variant_names
    from corruptions.bar import bar_benchmark, corrupt_bar
    from corruptions.runtime import producer_process
    from perturbations import perturb, sequence_names
    from pipeline.formats.zarr_codecs import encode_jpeg

    from .helpers import clean, p_photo
    producer_process()
    out = {}
    for variant in variant_names():
        for photo in photos:
            image = clean(photo, variant)
            for index, name in enumerate(corruption_names()):
                rngs = [np.random.default_rng([index, severity]) for severity in SEVERITIES]
                for severity, result in zip(SEVERITIES, corrupt_severities(image, name, SEVERITIES, rngs, variant)):
                    out[f"c/{variant}/{photo}/{name}/{severity}"] = hashlib.sha256(result).hexdigest()
                    out[f"jpeg/{variant}/{photo}/{name}/{severity}"] = hashlib.sha256(
                        encode_jpeg(result, 85, True)).hexdigest()
            for index, name in enumerate(bar_benchmark(variant)):
                for level in SEVERITIES:
                    result = corrupt_bar(image, name, level, np.random.default_rng([index, level]), variant)
                    out[f"bar/{variant}/{photo}/{name}/{level}"] = hashlib.sha256(result).hexdigest()
            for index, kind in enumerate(sequence_names("all")):
                frames = perturb(p_photo(photo, variant), kind, np.random.default_rng([index]), variant)
                out[f"p/{variant}/{photo}/{kind}"] = hashlib.sha256(frames).hexdigest()
    return out


if __name__ == "__main__":
    json.dump(kernel_hashes(tuple(sys.argv[1:]) or ("astronaut", "coffee")), sys.stdout, indent=0, sort_keys=True)
