"""The frost textures: six photographs, identical to those of the original generator.

They are not committed. ``python -m corruptions.assets`` (run by ``make``) takes them from
the ``imagecorruptions`` wheel on PyPI without installing that package or its dependencies,
and every load checks their sha256.
"""
from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

FROST_DIR = Path(os.environ.get("CORRUPTIONS_FROST_DIR", Path(__file__).resolve().parent / "data" / "frost"))
WHEEL = "imagecorruptions==1.1.2"
FROST_SHA256 = {
    "frost1.png": "ff9f907860bd7a835d459e32f9d588062b7f61ee267343cc7222b56753a14755",
    "frost2.png": "fe211a89b336999c207a852ce05818d4545d0b57c5beadd824b4cc9d9a9b6137",
    "frost3.png": "2d0d50b4a9bb213f38b024ef7768731bb83cc08d2f26b5766bbc167cdfa0e504",
    "frost4.jpg": "3f8b91ca1a9fa7167b09e773da53f5ae60d0a1fd88f02a783f6e328a72887f6e",
    "frost5.jpg": "5fc6a19df4a429ba68abdcc8f8a4278d4c9f81c9ccafd2c92ab0c8cf8992ebd2",
    "frost6.jpg": "1f92b2f48408748085b68dd81d816ef239f42cef3029c25d041fcb6760fb4f25",
}


class AssetError(RuntimeError):
    pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def missing_textures(directory: Path = FROST_DIR) -> list[str]:
    """Names of textures that are absent or whose sha256 does not match."""
    bad = []
    for name, digest in FROST_SHA256.items():
        path = directory / name
        if not path.is_file() or _sha256(path.read_bytes()) != digest:
            bad.append(name)
    return bad


def fetch_textures(directory: Path = FROST_DIR) -> Path:
    """Download the wheel (no dependencies), extract the verified textures into ``directory``."""
    if not missing_textures(directory):
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "--dest", tmp, WHEEL], check=True)
        wheel = next(Path(tmp).glob("imagecorruptions-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for name, digest in FROST_SHA256.items():
                data = archive.read(f"imagecorruptions/frost/{name}")
                if _sha256(data) != digest:
                    raise AssetError(f"{wheel.name}: frost/{name} has an unexpected sha256")
                part = directory / f".{name}.part"
                part.write_bytes(data)
                part.replace(directory / name)  # atomic
    return directory


@functools.lru_cache(maxsize=None)
@functools.lru_cache(maxsize=32)
def frost_texture(name: str, scale: float) -> np.ndarray:
    """Texture ``name`` as RGB uint8, resized by ``scale`` as the originals do (cv2, bilinear);
    read, checked and decoded once per process (read-only: every frost output shares it)."""
    if name not in FROST_SHA256:
        raise ValueError(f"unknown frost texture {name!r}; allowed: {', '.join(FROST_SHA256)}")
    path = FROST_DIR / name
    if not path.is_file():
        raise AssetError(f"frost texture {path} is missing: run `python -m corruptions.assets` (or `make setup`)")
    data = path.read_bytes()
    if _sha256(data) != FROST_SHA256[name]:
        raise AssetError(f"frost texture {path} has an unexpected sha256: run `python -m corruptions.assets`")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if scale != 1.0:
        bgr = cv2.resize(bgr, (0, 0), fx=scale, fy=scale)
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    rgb.setflags(write=False)
    return rgb


if __name__ == "__main__":
    print(f"frost textures verified in {fetch_textures()}")
