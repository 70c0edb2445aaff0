"""The official ImageNet-P layout: ``OUT/<sequence kind>/<wnid>/<source file stem>.mp4``, as
``ImageNet-P/test.py`` reads it.

Encoded in-process with PyAV (its wheel ships FFmpeg with libx264), with the originals'
settings by default: 1 frame per second, libx264, yuv444p (what ffmpeg picks for their RGB
PNGs), ``crf 20, preset veryslow``; the noise kinds ``tune grain, preset veryslow`` at
libx264's default CRF (23).

The bytes are a function of the frames, these settings and the library versions alone:
- one encoder thread, no frame or slice threading, explicit timestamps (x264 with threads
  gives bitstreams that depend on timing);
- x264's ``cpu-independent`` option (``X264_PARAMS``). Without it x264 runs its
  macroblock-tree propagation (float arithmetic that steers the rate control) in the assembly
  of the CPU it finds, which rounds differently from CPU to CPU, and whose AVX-512 version gives
  a different bitstream from call to call in one process (it reads memory it did not write).
  With it those two functions run x264's C code and the other assembly is bit-exact with C
  (x264's own guarantee): the same bytes as ``asm=0`` (no assembly at all), at the same speed.
"""
from __future__ import annotations

import contextlib
import functools
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

from corruptions.settings import Settings, integer, one_of

from ..files import make_folders, sha256, split, write_bytes
from ..task import SEQUENCE_DIMS as DIMS
from .common import DataError, Layout, ReleaseSample, SequenceReader, Videos, manifest_files, sample_key

SUFFIX = ".mp4"
PIXEL_FORMATS = ("yuv444p", "yuv420p")
NAME = "mp4"  # its key in a run config's outputs.formats
# what a release packs of it: every video, in one tarball (ImageNet-P's tree, kinds as folders)
RELEASE_RANK, RELEASE_ONE_TARBALL, RELEASE_ARRAYS = 2, True, False
STORES = (DIMS,)  # ImageNet-P's sequences
# x264's C macroblock-tree code instead of the CPU's assembly: see the module docstring
X264_PARAMS = "cpu-independent=1"
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


@dataclass(frozen=True)
class Encoding:
    """x264 settings of one sequence family (``crf`` None: libx264's default, 23)."""
    preset: str = "veryslow"
    crf: float | None = 20
    tune: str | None = None
    pix_fmt: str = "yuv444p"

    def options(self) -> dict[str, str]:
        options = {"preset": self.preset, "x264-params": X264_PARAMS}
        if self.crf is not None:
            options["crf"] = str(self.crf)
        if self.tune:
            options["tune"] = self.tune
        return options

    def describe(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in {"pix_fmt": self.pix_fmt, **self.options()}.items())



class Mp4Settings(Settings):
    """``outputs.mp4`` of a run config: x264 settings of ImageNet-P's videos; the defaults are the
    originals' ffmpeg command."""
    preset: one_of(PRESETS) = "veryslow"
    crf: integer("an integer from 0 to 51", 0, 51) = 20
    noise_crf: integer("an integer from 0 to 51, or null (libx264's default, 23)", 0, 51, nullable=True) = None
    noise_tune: one_of(("grain", "film", "none", None), "one of grain, film, none") = "grain"
    pix_fmt: one_of(PIXEL_FORMATS) = "yuv444p"


SETTINGS = Mp4Settings

def encodings(mp4) -> tuple[Encoding, Encoding]:
    """The (temporal, noise) settings of a run config's ``outputs.mp4`` (``runconfig.Mp4``)."""
    return (Encoding(mp4.preset, mp4.crf, None, mp4.pix_fmt),
            Encoding(mp4.preset, mp4.noise_crf, mp4.noise_tune, mp4.pix_fmt))


def encode(frames: np.ndarray, settings: Encoding = Encoding(), container_format: str = "mp4",
           cpu_flags: str | None = None) -> bytes:
    """An MP4 (H.264, 1 frame per second) of ``frames`` (T x H x W x 3 uint8 RGB); with
    ``container_format="h264"`` the bare H.264 stream. ``cpu_flags`` (x264's ``asm`` option:
    ``"0"``, or names such as ``"SSE2,SSE4.2"``) makes x264 use only that assembly, as on an
    older CPU (the tests' check that the bytes do not depend on it)."""
    import av
    height, width = frames.shape[1:3]
    options = settings.options()
    if cpu_flags is not None:
        options["x264-params"] += f":asm={cpu_flags}"
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream("libx264", rate=1, options=options)
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


@contextlib.contextmanager
def video_stream(source):
    """(container, its first video stream or None) for decoding with one thread. The stream
    probe decodes nothing (an MP4 states what it holds), so each frame is decoded once."""
    import av
    with av.open(source, options={"skip_frame": "all", "threads": "1"}) as container:
        stream = container.streams.video[0] if container.streams.video else None
        if stream is not None:
            stream.thread_type = "NONE"
            stream.codec_context.thread_count = 1
        yield container, stream


MAX_FRAMES = 128  # frames a video may hold when scored (ImageNet-P's longest kind, translate, has 41)
MAX_DECODED_BYTES = 1 << 30  # and RGB bytes in all: a small file of huge frames is refused as it decodes


def decode(path_or_bytes) -> np.ndarray:
    """Every frame of an MP4 as T x H x W x 3 uint8 RGB: PyAV with one decoder thread and
    FFmpeg's own conversion to RGB, which gives the same pixels as OpenCV's ``cv2.VideoCapture``
    plus BGR -> RGB (what the original evaluation read; checked in the tests). yuv444p frames
    (the originals' and our encoding) convert through ``yuv444_to_rgb``, FFmpeg's fixed-point
    arithmetic restated, once checked equal to FFmpeg on all 2^24 colours. A file that cannot
    be decoded, holds no frames, or whose frames change size raises ``DataError``."""
    import av
    name = "video" if isinstance(path_or_bytes, (bytes, bytearray)) else str(path_or_bytes)
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray)) else str(path_or_bytes)
    out, count, sizes = None, 0, {}
    try:
        with video_stream(source) as (container, stream):
            if stream is None:
                raise DataError(f"{name}: holds no video stream")
            for frame in container.decode(stream):
                sizes.setdefault((frame.height, frame.width))
                if len(sizes) > 1:
                    continue  # refused below, with every size named
                if count >= MAX_FRAMES or (count + 1) * frame.height * frame.width * 3 > MAX_DECODED_BYTES:
                    raise DataError(f"{name}: more than {min(MAX_FRAMES, count)} frames of {frame.width} x "
                                    f"{frame.height}: longer or larger than any sequence of the benchmark (the "
                                    f"longest has 41 frames; at most {MAX_DECODED_BYTES >> 20} MiB decoded)")
                if out is None:  # the header's frame count, within reason (a file may lie)
                    out = np.empty((min(max(stream.frames, 1), 64), frame.height, frame.width, 3), np.uint8)
                elif count == len(out):
                    out = np.concatenate([out, np.empty_like(out)])
                _rgb(frame, out[count])
                count += 1
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{name}: cannot be decoded: {type(exc).__name__}: {exc}") from None
    if not sizes:
        raise DataError(f"{name}: holds no frames")
    if len(sizes) > 1:
        raise DataError(f"{name}: frames of different sizes ({', '.join(f'{w}x{h}' for h, w in sizes)})")
    return out[:count]


# FFmpeg (libswscale) turns yuv444p into rgb24 through its full-chroma output path, in 32-bit
# fixed point with BT.601 limited-range coefficients. With 8-bit samples Y, U, V its 32-bit
# sums are 2^9 s, where
#     s_R = 9539 (Y - 16) + 13075 (V - 128) + 4096
#     s_G = 9539 (Y - 16) -  6660 (V - 128) - 3209 (U - 128) + 4096
#     s_B = 9539 (Y - 16) + 16525 (U - 128) + 4096
# and writes floor(s / 2^13) clipped to 0..255, except that where s >= 2^22 its 32-bit sum has
# wrapped negative and it writes 0 (only B reaches it, at Y and U near 255). Every s is an
# integer below 2^23, exact in float32.
SWSCALE_YUV444 = {"luma": 9539, "v_to_r": 13075, "v_to_g": -6660, "u_to_g": -3209, "u_to_b": 16525}


def _color_key(frame) -> tuple:
    return (frame.format.name, getattr(frame, "colorspace", None), getattr(frame, "color_range", None))


def yuv444_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """H x W x 3 uint8 RGB of three H x W uint8 planes by the formula above (into ``out``,
    a C-contiguous H x W x 3 uint8 array, where given)."""
    import cv2
    planes = np.empty((3,) + y.shape, np.uint8)
    c = SWSCALE_YUV444
    _yuv444_planes(y, u, v, planes, c["luma"], c["v_to_r"], c["v_to_g"], c["u_to_g"], c["u_to_b"])
    if out is None:
        return cv2.merge(tuple(planes))
    cv2.merge(tuple(planes), dst=out)
    return out


@functools.lru_cache(maxsize=1)
def yuv444_conversion() -> tuple[bool, tuple]:
    """Whether ``yuv444_to_rgb`` equals this FFmpeg's own yuv444p -> rgb24 conversion on every
    (Y, U, V), found by converting frames holding all 2^24 of them both ways (a second or two,
    once per process, before loader workers fork); and the colour properties of the frames it
    applies to. Where it does not, frames go through FFmpeg's conversion."""
    import av
    chroma = np.arange(1 << 16, dtype=np.uint32).reshape(256, 256)
    u, v = np.tile((chroma >> 8).astype(np.uint8), (16, 1)), np.tile((chroma & 255).astype(np.uint8), (16, 1))
    exact, frame = True, None
    for first in range(0, 256, 16):  # 16 luma levels a frame: 4096 x 256, every (U, V) for each
        y = np.repeat(np.arange(first, first + 16, dtype=np.uint8), 256)[:, None].repeat(256, 1)
        frame = av.VideoFrame.from_ndarray(np.stack([y, u, v]), format="yuv444p")
        exact = exact and np.array_equal(frame.to_ndarray(format="rgb24"), yuv444_to_rgb(y, u, v))
    return bool(exact), _color_key(frame)


def _rgb(frame, out: np.ndarray) -> None:
    """Write ``frame`` as H x W x 3 RGB into ``out``."""
    exact, key = yuv444_conversion()
    if not exact or _color_key(frame) != key:
        out[...] = frame.to_ndarray(format="rgb24")
        return
    height, width = frame.height, frame.width
    y, u, v = (np.frombuffer(plane, np.uint8).reshape(height, plane.line_size)[:, :width] for plane in frame.planes)
    yuv444_to_rgb(y, u, v, out)


@njit(cache=True, nogil=True)
def _yuv444_planes(y, u, v, out, luma, v_to_r, v_to_g, u_to_g, u_to_b):
    # float32 so that the loop vectorises; every value is an integer below 2^23, so exact
    top, wrap, scale = np.float32(2 ** 21 - 1), np.float32(2 ** 22), np.float32(2.0 ** -13)
    zero = np.float32(0)
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            base = np.float32(luma) * (np.float32(y[i, j]) - np.float32(16)) + np.float32(4096)
            cb, cr = np.float32(u[i, j]) - np.float32(128), np.float32(v[i, j]) - np.float32(128)
            r = base + np.float32(v_to_r) * cr
            g = base + np.float32(v_to_g) * cr + np.float32(u_to_g) * cb
            b = base + np.float32(u_to_b) * cb
            b = b if b < wrap else zero
            out[0, i, j] = np.uint8(min(max(r, zero), top) * scale)
            out[1, i, j] = np.uint8(min(max(g, zero), top) * scale)
            out[2, i, j] = np.uint8(min(max(b, zero), top) * scale)


def item_file_name(item) -> str:
    """The file an item's sequence becomes, in every kind's folder: the source file's stem plus
    .mp4 (the originals' ``img_loc[:-5] + ".mp4"``)."""
    stem = item.name.rsplit(".", 1)[0] if "." in item.name else item.name
    return stem + SUFFIX


def relative_path(kind: str, item) -> tuple[str, ...]:
    """Where an item's sequence of ``kind`` lies."""
    return (kind, item.wnid, item_file_name(item))


def make_writer(config, out: Path, dims: tuple[str, ...]):
    """This format's writer for a resolved run config writing into ``out``."""
    return Writer(str(out), *encodings(config.outputs.mp4))


@dataclass(frozen=True)
class Writer:
    root: str
    temporal: Encoding = Encoding()
    noise: Encoding = Encoding(crf=None, tune="grain")
    format = "mp4"
    dims = DIMS

    def prepare(self, layout: Layout) -> None:
        make_folders(self.root)

    def write(self, block) -> dict[str, str]:
        settings = self.noise if block.family == "noise" else self.temporal
        digests = {}
        for row, (item, good) in enumerate(zip(block.items, block.ok)):
            if not good:
                continue
            relative = "/".join(relative_path(block.key.name, item))
            split(relative, self.root)
            data = encode(block.frames[row], settings)
            write_bytes(self.root, relative, data)
            digests[relative] = sha256(data)
        return digests

    def finalise(self, layout: Layout, failures, complete: bool = True) -> list[str]:
        return [self.root]


def _kind_folders(path: Path) -> list[Path]:
    """The sequence-kind folders a tree holds: ``path/<kind>/<class>/*.mp4``, or ``path`` itself
    when it is one kind's folder (as ``ImageNet-P/test.py`` is pointed at ``ImageNet-P/rotate``)."""
    from perturbations import sequence_names
    if path.name in sequence_names("all") and any(path.glob(f"*/*{SUFFIX}")):
        return [path]
    return [path / kind for kind in sequence_names("all") if (path / kind).is_dir()]


def recognise(path: Path) -> bool:
    return path.is_dir() and any(any(folder.glob(f"*/*{SUFFIX}")) for folder in _kind_folders(path))


class Reader(SequenceReader):
    """``root/<sequence kind>/<class>/<name>.mp4``: ours or the official download. Videos are
    listed per kind in ImageFolder's order; a kind folder without videos and a folder that is
    no sequence kind are reported in ``problems`` and left out."""
    kind = "mp4_tree"
    class_folders = True
    in_workers = True

    def __init__(self, root: Path, classes, allow_partial: bool = False):
        from perturbations import sequence_names

        from .jpeg_tree import list_folder
        super().__init__()
        self.root, self.classes = Path(root), classes
        folders = _kind_folders(self.root)
        if folders == [self.root]:
            self.root = self.root.parent
        else:
            for entry in sorted(self.root.iterdir()):
                if (entry.is_dir() and not entry.name.startswith(".") and not entry.name.endswith(".zarr")
                        and entry.name not in sequence_names("all")):  # a run's store beside the tree is no problem
                    self.problems.append(f"{entry}: not a sequence kind (expected one of "
                                         f"{', '.join(sequence_names('all'))}); left out")
        self._videos = {}
        for folder in folders:
            videos = list_folder(folder, classes, suffixes=(SUFFIX,))
            if videos.paths:
                self._videos[folder.name] = Videos(videos.paths, videos.labels)
            else:
                self.problems.append(f"{folder}: no {SUFFIX} videos in <class>/ folders; left out")

    def kinds(self):
        return list(self._videos)

    def videos(self, kind):
        return self._videos[kind]

    def load(self, kind, index):
        return decode(self._videos[kind].names[index])

    def prepare(self):
        yuv444_conversion()


def release_files(out: Path, names, records: dict) -> list[tuple[str, str | None, str | None]]:
    """What a release packs of a run's videos: (path under OUT, its manifest digest, kind) of
    every sequence of the run's kinds ``names``, from the manifest ``records``."""
    return manifest_files(records, names, NAME)


def release_samples(out: Path, names, records: dict, variant: str) -> list[ReleaseSample]:
    """A per-sample release's samples of a run's videos: each MP4 as it is, with its kind,
    perturbation, difficulty and frame count."""
    from perturbations import load_sequences, split_kind
    sequences = load_sequences(variant)
    samples = []
    for path, digest, kind in release_files(out, names, records):
        parts = path.split("/")
        if len(parts) != 3 or parts[0] != kind or not parts[2].endswith(SUFFIX):
            raise DataError(f"{out}: {path!r} is not a video path <kind>/<wnid>/<file>{SUFFIX}")
        perturbation, difficulty = split_kind(kind)
        samples.append(ReleaseSample(perturbation, difficulty, sample_key(parts[1], parts[2]), "mp4", path, digest,
                                     parts[2], parts[1], kind=kind, frames=sequences.frames(kind)))
    return samples
