"""A Zarr v3 codec that stores each image as JPEG bytes: the benchmark's own encoding.

ImageNet-C *is* its quality-85 JPEG files, so the store keeps exactly those bytes (one image
per inner chunk of a shard) and decodes them with PIL, the decoder the originals' loaders
use: the store holds the benchmark's pixels, at the JPEG tree's size, and writing it costs no
second encoding. Registered with zarr on import and through the ``zarr.codecs`` entry point,
so ``zarr.open`` and ``xarray.open_zarr`` read it wherever this package is installed.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration
from zarr.registry import register_codec

NAME = "imagenet_c.jpeg"


def encode_jpeg(image: np.ndarray, quality: int, optimize: bool) -> bytes:
    """An HxWx3 uint8 image as PIL writes it (the originals' ``save(..., quality=85)``)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, optimize=optimize)
    return buffer.getvalue()


def decode_jpeg(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


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
        image = decode_jpeg(chunk_bytes.to_bytes()).reshape(chunk_spec.shape)
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
