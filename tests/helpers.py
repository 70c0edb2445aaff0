import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("IMAGENET_C_REFERENCE", ROOT.parent / "shared" / "reference"))
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def reference_dir(task: str = "imagenet-c") -> Path:
    path = REFERENCE / task
    if not path.is_dir():
        # fidelity checks are never skipped: without the reference data the suite fails
        pytest.fail(f"reference data not found at {path} (set IMAGENET_C_REFERENCE)")
    return path


@functools.lru_cache(maxsize=None)
def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)())


@functools.lru_cache(maxsize=None)
def clean(name: str, variant: str) -> np.ndarray:
    from corruptions.config import preprocess
    out = preprocess(photo(name), variant)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=None)
def p_photo(name: str, variant: str) -> np.ndarray:
    """The reference's ImageNet-P stand-in photo: the photo itself, or for cifar its shorter side
    resized to 32 (PIL bilinear) and centre-cropped to 32."""
    image = photo(name)
    if variant == "cifar":
        from corruptions.preprocess import apply_step
        for step in ({"op": "resize_shorter", "size": 32}, {"op": "center_crop", "size": 32}):
            image = apply_step(image, step)
    out = np.asarray(image, np.uint8).copy()
    out.setflags(write=False)
    return out


def read_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def generate_process(args, **kwargs) -> subprocess.Popen:
    """``python -m pipeline generate ARGS`` in a child process, stdout and stderr piped."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "pipeline", "generate", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def sigkill_after(process: subprocess.Popen, manifest: Path, units: int, timeout: float = 120) -> None:
    """Once ``manifest`` lists ``units`` finished units, SIGKILL the run's process group (the
    client and its worker processes, like a killed batch job)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if manifest.exists() and manifest.read_text().count("\n") >= units:
            break
        time.sleep(0.01)
    assert process.poll() is None, f"the run ended before the kill: {process.communicate()}"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

