"""Motion blur as the originals call it: ImageMagick's MotionBlurImage(radius, sigma, angle).

``native`` (the default) reproduces ImageMagick 6 Q16 without needing it: a one-sided
Gaussian of ``2 * ceil(radius) + 1`` taps along the direction ``angle``, sampled at
rounded integer offsets with edge pixels repeated beyond the border. ``imagemagick``
calls the real library through wand, as the originals do (PNG in, PNG out).
"""
from __future__ import annotations

import ctypes
import math
import threading

import cv2
import numpy as np

from . import native

BACKENDS = ("native", "imagemagick")
SPARSE_BELOW = 16  # a one-channel image with under 1/16 of its pixels nonzero is blurred by scattering them


def motion_taps(radius: float, sigma: float, angle: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dy, dx, weights) of ImageMagick's motion blur kernel."""
    if radius <= 0:
        raise ValueError(f"motion blur radius must be positive, got {radius}")
    width = int(2 * math.ceil(radius) + 1)  # GetOptimalKernelWidth1D for radius > 0
    sigma = max(float(sigma), 1e-12)
    i = np.arange(width, dtype=np.float64)
    weights = np.exp(-(i * i) / (2.0 * sigma * sigma)) / (math.sqrt(2 * math.pi) * sigma)
    weights /= weights.sum()
    px = width * math.sin(math.radians(angle))
    py = width * math.cos(math.radians(angle))
    norm = math.hypot(px, py)
    dx = np.ceil(i * py / norm - 0.5).astype(np.int64)
    dy = np.ceil(i * px / norm - 0.5).astype(np.int64)
    return dy, dx, weights


def motion_blur(image: np.ndarray, radius: float, sigma: float, angle: float, backend: str = "native") -> np.ndarray:
    """Blur an HxW or HxWxC uint8 image; returns the same shape, uint8."""
    return motion_blur_angles(image, radius, sigma, [angle], backend)[0]


def motion_blur_angles(image: np.ndarray, radius: float, sigma: float, angles, backend: str = "native") -> np.ndarray:
    """``motion_blur`` of one image at each of ``angles``: (len(angles), *image.shape) uint8.
    The native backend converts and edge-pads the image once for all of them."""
    if backend == "native":
        planar = image if image.ndim == 3 else image[..., None]
        taps = [motion_taps(radius, sigma, angle) for angle in angles]
        reach = max([int(np.abs(np.concatenate([dy, dx])).max()) for dy, dx, _ in taps] + [0])
        padded = np.pad(planar, ((reach, reach), (reach, reach), (0, 0)), mode="edge").astype(np.float64)
        padded = padded.reshape(padded.shape[0], -1)
        out = np.empty((len(taps), *planar.shape), np.uint8)
        sparse = planar.shape[2] == 1 and np.count_nonzero(padded) * SPARSE_BELOW < padded.size
        rows, cols = np.nonzero(padded) if sparse else (None, None)
        for frame, (dy, dx, weights) in zip(out, taps):
            if sparse:
                native.motion_blur_q16_sparse(padded, reach, rows, cols, dy, dx, weights, frame)
            else:
                native.motion_blur_q16(padded, reach, dy, dx, weights, frame)
        return out.reshape(len(taps), *image.shape)
    if backend == "imagemagick":
        return np.stack([_imagemagick_motion_blur(image, radius, sigma, angle) for angle in angles])
    raise ValueError(f"unknown motion blur backend {backend!r}; allowed: {', '.join(BACKENDS)}")


_wand_lock = threading.Lock()


def _imagemagick_motion_blur(image: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    try:
        from wand.api import library
        from wand.image import Image as WandImage
    except ImportError as exc:  # wand or libmagickwand missing
        raise RuntimeError("the imagemagick motion blur backend needs wand and libmagickwand "
                           "(pip install wand; apt-get install libmagickwand-dev)") from exc
    library.MagickMotionBlurImage.argtypes = (ctypes.c_void_p, ctypes.c_double, ctypes.c_double, ctypes.c_double)
    bgr = image[..., ::-1] if image.ndim == 3 else image
    ok, png = cv2.imencode(".png", np.ascontiguousarray(bgr))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    with _wand_lock, WandImage(blob=png.tobytes()) as wimg:
        library.MagickMotionBlurImage(wimg.wand, float(radius), float(sigma), float(angle))
        blob = wimg.make_blob("png")
    out = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)
    if image.ndim == 2:
        return out if out.ndim == 2 else out[..., 0]
    if out.ndim == 2:  # ImageMagick writes a grey PNG when all channels agree
        return np.repeat(out[..., None], 3, axis=2)
    return np.ascontiguousarray(out[..., 2::-1])
