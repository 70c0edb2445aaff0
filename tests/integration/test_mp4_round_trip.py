"""The MP4 writer at the default settings (the originals' x264 settings) against the frames it
was given, and against the originals' own encoding of the same frames: their ffmpeg command
(``ffmpeg -r 1 -framerate 1 -i img%01d.png -vcodec libx264 [-tune grain | -crf 20] -preset
veryslow``) from PNG files, run with the ffmpeg binary of the ``imageio-ffmpeg`` wheel."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
from PIL import Image

from perturbations import family, perturb, sequence_names
from pipeline.formats.mp4_tree import Encoding, decode, encode

from ..helpers import p_photo

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
