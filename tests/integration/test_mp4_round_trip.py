"""The MP4 writer at the default settings (the originals' x264 settings) against the frames it
was given, and against the originals' own encoding of the same frames: their ffmpeg command
(``ffmpeg -r 1 -framerate 1 -i img%01d.png -vcodec libx264 [-tune grain | -crf 20] -preset
veryslow``) from PNG files, run with the ffmpeg binary of the ``imageio-ffmpeg`` wheel."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from perturbations import family, perturb, sequence_names
from pipeline.formats.mp4_tree import Encoding, decode, encode

from ..helpers import ROOT, p_photo

# mean |decoded - frames| on the 0-255 scale; the originals' encoding gives about 3.5-4.2 for the
# noise kinds (CRF 23 with the grain tune) and 0.8-1.2 for the others (CRF 20)
BOUND = {"noise": 4.6, "temporal": 1.5}
DEFAULTS = {"noise": Encoding(crf=None, tune="grain"), "temporal": Encoding()}


def originals_encoding(frames: np.ndarray, kind: str, folder) -> np.ndarray:
    import imageio_ffmpeg
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"img{index}.png")
    quality = ["-tune", "grain"] if family(kind) == "noise" else ["-crf", "20"]
    out = folder / "out.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-r", "1", "-framerate", "1", "-i",
                    str(folder / "img%01d.png"), "-vcodec", "libx264", *quality, "-preset", "veryslow",
                    "-threads", "1", "-y", str(out)], check=True)
    return decode(out)


@pytest.fixture(scope="module")
def round_trips(tmp_path_factory):
    photo = p_photo("coffee", "imagenet")
    rows = {}
    for kind in sequence_names("all"):
        frames = perturb(photo, kind, np.random.default_rng(5), "imagenet")
        ours = decode(encode(frames, DEFAULTS[family(kind)]))
        theirs = originals_encoding(frames, kind, tmp_path_factory.mktemp(kind))
        assert ours.shape == theirs.shape == frames.shape
        rows[kind] = (np.abs(ours.astype(float) - frames).mean(), np.abs(theirs.astype(float) - frames).mean())
    print("\nkind                mean |decoded - frames|: ours, the originals' command")
    for kind, (ours, theirs) in rows.items():
        print(f"{kind:18s} {ours:6.3f} {theirs:6.3f}")
    return rows


@pytest.mark.parametrize("kind", sequence_names("all"))
def test_codec_loss_is_the_originals(round_trips, kind):
    ours, theirs = round_trips[kind]
    assert ours <= BOUND[family(kind)]
    assert abs(ours - theirs) <= 0.1, (ours, theirs)


def test_encoding_is_byte_identical_every_time():
    frames = perturb(p_photo("astronaut", "imagenet"), "shot_noise", np.random.default_rng(1), "imagenet")[:8]
    settings = Encoding(crf=None, tune="grain")
    assert len({encode(frames, settings) for _ in range(4)}) == 1


# Encodes real 224 px frames of a temporal and a noise kind at the originals' settings four times,
# with garbage left on the heap before each (x264's AVX-512 macroblock-tree code read memory it
# had not written: without cpu-independent, 8 encodes gave up to 8 different MP4s).
HEAP_SCRIPT = """
import hashlib, os, sys
import numpy as np
from perturbations import family, perturb
from pipeline.formats.mp4_tree import Encoding, encode
from tests.helpers import p_photo
for kind in ("rotate", "gaussian_noise"):
    frames = perturb(p_photo("astronaut", "imagenet"), kind, np.random.default_rng(1), "imagenet")[:12]
    settings = Encoding(crf=None, tune="grain") if family(kind) == "noise" else Encoding()
    for _ in range(4):
        garbage = [bytearray(os.urandom(1 << 16)) for _ in range(300)]
        print(kind, hashlib.sha256(encode(frames, settings)).hexdigest())
        del garbage
"""


def test_mp4_bytes_are_one_set_with_garbage_on_the_heap_in_two_processes():
    runs = [subprocess.run([sys.executable, "-c", HEAP_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, PYTHONPATH=str(ROOT))) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    lines = runs[0].stdout.split() + runs[1].stdout.split()
    digests = {kind: {d for k, d in zip(lines[::2], lines[1::2]) if k == kind} for kind in ("rotate", "gaussian_noise")}
    assert len(lines) == 32
    assert all(len(found) == 1 for found in digests.values()), digests


@pytest.mark.parametrize("kind", ["rotate", "gaussian_noise"])
def test_mp4_bytes_do_not_depend_on_the_cpus_instruction_set(kind):
    """x264 told to use only the assembly of an older CPU (SSE4.2, AVX2), or none at all: the
    same bytes as on this CPU."""
    frames = perturb(p_photo("coffee", "imagenet"), kind, np.random.default_rng(2), "imagenet")[:6]
    settings = DEFAULTS[family(kind)]
    native = encode(frames, settings)
    for flags in ("0", "SSE,SSE2,SSE3,SSSE3,SSE4.1,SSE4.2", "SSE,SSE2,SSE3,SSSE3,SSE4.1,SSE4.2,AVX,AVX2,FMA3,BMI2"):
        assert encode(frames, settings, cpu_flags=flags) == native, flags


def test_rgb_to_yuv444p_does_not_depend_on_the_cpus_instruction_set(tmp_path):
    """The encoder's RGB -> yuv444p conversion (FFmpeg's swscale, inside PyAV) on all 2^24
    colours equals FFmpeg's with every assembly switched off (``-cpuflags 0``) and with it on."""
    import av
    import imageio_ffmpeg
    code = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([code >> 16, (code >> 8) & 255, code & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
    Image.fromarray(rgb).save(tmp_path / "colours.png")
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv444p")
    ours = b"".join(np.frombuffer(plane, np.uint8).reshape(4096, plane.line_size)[:, :4096].tobytes()
                    for plane in frame.planes)
    for flags in ([], ["-cpuflags", "0"]):
        theirs = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", *flags, "-i",
                                 str(tmp_path / "colours.png"), "-pix_fmt", "yuv444p", "-f", "rawvideo", "-"],
                                capture_output=True, check=True, timeout=120).stdout
        assert theirs == ours, flags
