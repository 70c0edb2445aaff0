"""From a source photo to a variant's clean input, as the original loaders do it.

The steps are the variant YAML's ``preprocess`` list. Resampling is PIL bilinear;
``resize_shorter`` is torchvision 0.2's ``Resize(n)`` (longer side ``int(n * long / short)``,
unchanged when the shorter side is already n); crops are centred with offsets
``int(round((side - crop) / 2))``. Pure functions of PIL images: no I/O.
"""
from __future__ import annotations

from typing import Mapping

from PIL import Image

from .settings import FRACTION, POSITIVE_INT, Settings, numbers, one_of


class ResizeShorter(Settings):
    op: one_of(("resize_shorter",))
    size: POSITIVE_INT


class CenterCrop(Settings):
    op: one_of(("center_crop",))
    size: POSITIVE_INT


class CenterCropFraction(Settings):
    op: one_of(("center_crop_fraction",))
    fraction: FRACTION


class Resize(Settings):
    op: one_of(("resize",))
    size: numbers(2, "[height, width] as two positive integers", each=lambda v: isinstance(v, int) and v > 0)


# the steps a variant may list, each with the keys it takes
STEPS = {"resize_shorter": ResizeShorter, "center_crop": CenterCrop, "center_crop_fraction": CenterCropFraction,
         "resize": Resize}


def to_rgb(image: Image.Image) -> Image.Image:
    """PIL's ``convert("RGB")``, exactly as the originals' loader does it: CMYK, palette and
    grey images are converted, alpha is dropped, EXIF orientation is not applied, and
    16-bit values are clipped to 255 (PIL's rule), so ImageNet-C's inputs are reproduced."""
    return image if image.mode == "RGB" else image.convert("RGB")


def _centre_box(width: int, height: int, crop_w: int, crop_h: int) -> tuple[int, int, int, int]:
    left = int(round((width - crop_w) / 2.0))
    top = int(round((height - crop_h) / 2.0))
    return left, top, left + crop_w, top + crop_h


def resize_shorter(image: Image.Image, size: int, resample: int = Image.BILINEAR) -> Image.Image:
    width, height = image.size
    if min(width, height) == size:
        return image
    if width < height:
        return image.resize((size, int(size * height / width)), resample)
    return image.resize((int(size * width / height), size), resample)


def crop_box(width: int, height: int, step: Mapping) -> tuple[int, int, int, int] | None:
    """The (left, top, right, bottom) box a crop step takes from a width x height image (it may
    reach outside, where PIL's crop fills black); None for a step that is not a crop."""
    if step["op"] == "center_crop":
        size = int(step["size"])
        return _centre_box(width, height, size, size)
    if step["op"] == "center_crop_fraction":
        fraction = float(step["fraction"])
        return _centre_box(width, height, int(fraction * width), int(fraction * height))
    return None


def apply_step(image: Image.Image, step: Mapping) -> Image.Image:
    op = step["op"]
    width, height = image.size
    if op == "resize_shorter":
        return resize_shorter(image, int(step["size"]))
    box = crop_box(width, height, step)
    if box is not None:
        return image.crop(box)
    if op == "resize":
        out_h, out_w = step["size"]
        return image.resize((int(out_w), int(out_h)), Image.BILINEAR)
    raise ValueError(f"unknown preprocessing op {op!r}; allowed: {', '.join(STEPS)}")
