"""A Zarr v3 codec that stores each image as JPEG bytes: the benchmark's own encoding.

ImageNet-C *is* its quality-85 JPEG files, so the store keeps exactly those bytes (one image
per inner chunk of a shard) and decodes them with PIL, the decoder the originals' loaders
use: the store holds the benchmark's pixels, at the JPEG tree's size, and writing it costs no
second encoding. Registered with zarr on import and through the ``zarr.codecs`` entry point,
so ``zarr.open`` and ``xarray.open_zarr`` read it wherever this package is installed.
"""
from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration
from zarr.registry import register_codec

NAME = "imagenet_c.jpeg"


def pil_jpeg(image: np.ndarray, quality: int, optimize: bool) -> bytes:
    """An HxWx3 uint8 image as PIL writes it (the originals' ``save(..., quality=85)``)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, optimize=optimize)
    return buffer.getvalue()


def _opencv_jpeg(image: np.ndarray, quality: int, optimize: bool) -> bytes | None:
    import cv2
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_OPTIMIZE, int(bool(optimize))])
    return data.tobytes() if ok else None


@functools.lru_cache(maxsize=1)
def opencv_writes_pils_bytes() -> bool:
    """Whether OpenCV's libjpeg-turbo writes exactly PIL's bytes here (JFIF header, tables,
    4:2:0, Huffman optimisation): checked once per process on probe images, so an OpenCV build
    that encodes differently falls back to PIL instead of changing the benchmark's bytes."""
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 255, 61 * 47 * 3).reshape(61, 47, 3).astype(np.uint8)
    probes = [rng.integers(0, 256, (37, 53, 3), dtype=np.uint8), gradient, np.zeros((1, 1, 3), np.uint8)]
    try:
        return all(_opencv_jpeg(p, q, o) == pil_jpeg(p, q, o) for p in probes for q, o in ((85, True), (40, False)))
    except Exception:  # noqa: BLE001 - no usable OpenCV encoder: PIL writes
        return False


def encode_jpeg(image: np.ndarray, quality: int, optimize: bool) -> bytes:
    """``pil_jpeg``'s bytes, written by OpenCV where it writes the same (a third faster)."""
    if opencv_writes_pils_bytes():
        data = _opencv_jpeg(image, quality, optimize)
        if data is not None:
            return data
    return pil_jpeg(image, quality, optimize)


def decode_jpeg(data: bytes, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A chunk's pixels; with ``shape`` (the chunk's declared shape), a JPEG of another size is
    refused from its header, before it is decoded (a 12000 x 12000 chunk is not decoded)."""
    with Image.open(io.BytesIO(data)) as opened:
        if shape is not None and (opened.size[1], opened.size[0]) != tuple(shape[-3:-1]):
            raise ValueError(f"a JPEG chunk of {opened.size[0]} x {opened.size[1]} pixels where the array declares "
                             f"{shape[-2]} x {shape[-3]}")
        return np.asarray(opened.convert("RGB"))


@dataclass(frozen=True)
class JpegCodec(ArrayBytesCodec):
    """Array -> bytes for uint8 chunks of shape (1, H, W, 3) (or (H, W, 3))."""
    is_fixed_size = False
    quality: int = 85
    optimize: bool = True

    def __init__(self, *, quality: int = 85, optimize: bool = True) -> None:
        object.__setattr__(self, "quality", int(quality))
        object.__setattr__(self, "optimize", bool(optimize))

    @classmethod
    def from_dict(cls, data):
        _, configuration = parse_named_configuration(data, NAME, require_configuration=False)
        return cls(**(configuration or {}))

    def to_dict(self):
        return {"name": NAME, "configuration": {"quality": self.quality, "optimize": self.optimize}}

    async def _decode_single(self, chunk_bytes, chunk_spec):
        image = decode_jpeg(chunk_bytes.to_bytes(), tuple(chunk_spec.shape)).reshape(chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(np.ascontiguousarray(image))

    async def _encode_single(self, chunk_array, chunk_spec):
        image = np.asarray(chunk_array.as_numpy_array(), np.uint8)
        if image.shape[-1] != 3 or int(np.prod(image.shape[:-3] or (1,))) != 1:
            raise ValueError(f"{NAME} encodes one H x W x 3 image per chunk, got a chunk of shape {image.shape}")
        data = encode_jpeg(image.reshape(image.shape[-3:]), self.quality, self.optimize)
        return chunk_spec.prototype.buffer.from_bytes(data)

    def compute_encoded_size(self, input_byte_length, chunk_spec):
        raise NotImplementedError


register_codec(NAME, JpegCodec)
