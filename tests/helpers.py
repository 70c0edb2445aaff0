import functools
import os
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("IMAGENET_C_REFERENCE", ROOT.parent / "shared" / "reference"))
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def reference_dir() -> Path:
    path = REFERENCE / "imagenet-c"
    if not path.is_dir():
        # fidelity checks are never skipped: without the reference data the suite fails
        pytest.fail(f"reference data not found at {path} (set IMAGENET_C_REFERENCE)")
    return path


@functools.lru_cache(maxsize=None)
def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)())


@functools.lru_cache(maxsize=None)
def clean(name: str, variant: str) -> np.ndarray:
    from corruptions.preprocess import preprocess
    out = preprocess(photo(name), variant)
    out.setflags(write=False)
    return out


def read_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))
