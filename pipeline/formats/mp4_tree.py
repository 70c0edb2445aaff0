"""The official ImageNet-P layout: ``OUT/<sequence kind>/<wnid>/<source file stem>.mp4``, as
``ImageNet-P/test.py`` reads it.

Encoded in-process with PyAV (its wheel ships FFmpeg with libx264), with the originals'
settings by default: 1 frame per second, libx264, yuv444p (what ffmpeg picks for their RGB
PNGs), ``crf 20, preset veryslow``; the noise kinds ``tune grain, preset veryslow`` at
libx264's default CRF (23). One encoder thread, no frame or slice threading, explicit
timestamps: the bytes are a function of the frames and these settings alone (x264 with
threads gives bitstreams that depend on timing).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes, inside, sha256
from ..task import SEQUENCE_DIMS as DIMS
from .common import DataError

SUFFIX = ".mp4"
PIXEL_FORMATS = ("yuv444p", "yuv420p")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


@dataclass(frozen=True)
class Encoding:
    """x264 settings of one sequence family (``crf`` None: libx264's default, 23)."""
    preset: str = "veryslow"
    crf: float | None = 20
    tune: str | None = None
    pix_fmt: str = "yuv444p"

    def options(self) -> dict[str, str]:
        options = {"preset": self.preset}
        if self.crf is not None:
            options["crf"] = str(self.crf)
        if self.tune:
            options["tune"] = self.tune
        return options


def encode(frames: np.ndarray, settings: Encoding = Encoding()) -> bytes:
    """An MP4 (H.264, 1 frame per second) of ``frames`` (T x H x W x 3 uint8 RGB)."""
    import av
    height, width = frames.shape[1:3]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1, options=settings.options())
        stream.width, stream.height, stream.pix_fmt = width, height, settings.pix_fmt
        stream.codec_context.thread_count = 1
        stream.codec_context.thread_type = "NONE"
        for index, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            video_frame.pts = index
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def decode(path_or_bytes) -> np.ndarray:
    """Every frame of an MP4 as T x H x W x 3 uint8 RGB (PyAV; the same pixels as OpenCV's
    ``cv2.VideoCapture`` plus BGR -> RGB, which the original evaluation used)."""
    import av
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray)) else str(path_or_bytes)
    try:
        with av.open(source) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise DataError(f"{path_or_bytes if not isinstance(path_or_bytes, bytes) else 'video'}: cannot be decoded: "
                        f"{exc}") from None
    if not frames:
        raise DataError(f"{path_or_bytes}: holds no frames")
    return np.stack(frames)


def relative_path(kind: str, item) -> tuple[str, ...]:
    """Where an item's sequence of ``kind`` lies: the source file's stem plus .mp4 (the
    originals' ``img_loc[:-5] + ".mp4"``)."""
    stem = item.name.rsplit(".", 1)[0] if "." in item.name else item.name
    return (kind, item.wnid, stem + SUFFIX)


@dataclass(frozen=True)
class Writer:
    root: str
    temporal: Encoding = Encoding()
    noise: Encoding = Encoding(crf=None, tune="grain")
    format = "mp4"
    dims = DIMS

    def prepare(self, plan) -> None:
        Path(self.root).mkdir(parents=True, exist_ok=True)

    def write(self, block) -> dict[str, str]:
        root = Path(self.root)
        settings = self.noise if block.family == "noise" else self.temporal
        digests = {}
        for row, (item, good) in enumerate(zip(block.items, block.ok)):
            if not good:
                continue
            parts = relative_path(block.key.name, item)
            path = inside(root, *parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            data = encode(block.frames[row], settings)
            atomic_write_bytes(path, data)
            digests["/".join(parts)] = sha256(data)
        return digests

    def finalise(self, plan, failures, complete: bool = True) -> list[str]:
        return [self.root]


def recognise(path: Path) -> bool:
    return any(path.glob(f"*/*/*{SUFFIX}"))
