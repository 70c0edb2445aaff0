"""Small real datasets on disk for the pipeline tests, in each layout the readers accept."""
from __future__ import annotations

import csv
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from .helpers import photo

WNIDS = ("n01440764", "n01443537", "n02123045")


def small_photos(count: int) -> list[Image.Image]:
    """Crops of the sample photos at assorted sizes and aspect ratios."""
    names = ("astronaut", "chelsea", "coffee", "rocket")
    out = []
    for index in range(count):
        image = photo(names[index % 4])
        w, h = image.size
        box = (index * 7 % (w // 3), index * 5 % (h // 3), w - index * 3 % (w // 4), h - index * 11 % (h // 4))
        out.append(image.crop(box).resize((60 + 9 * index % 50, 48 + 13 * index % 40), Image.BILINEAR))
    return out


def class_folders(root: Path, count: int = 9) -> Path:
    for index, image in enumerate(small_photos(count)):
        path = root / WNIDS[index % 3] / f"ILSVRC2012_val_{index + 1:08d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=92)
    return root


def _solution(path: Path, names: list[str]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ImageId", "PredictionString"])
        for index, name in enumerate(names):
            writer.writerow([Path(name).stem, f"{WNIDS[index % 3]} 1 2 30 40"])


def flat_folder(root: Path, count: int = 5) -> Path:
    root.mkdir(parents=True)
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(count)]
    for name, image in zip(names, small_photos(count)):
        image.save(root / name, quality=92)
    _solution(root / "LOC_val_solution.csv", names)
    return root


def val_tar(folder: Path, count: int = 5) -> Path:
    folder.mkdir(parents=True)
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(count)]
    path = folder / "ILSVRC2012_img_val.tar"
    with tarfile.open(path, "w") as archive:
        for name, image in zip(reversed(names), reversed(small_photos(count))):  # out of order on purpose
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=92)
            info = tarfile.TarInfo(name)
            info.size = buffer.tell()
            buffer.seek(0)
            archive.addfile(info, buffer)
    _solution(folder / "LOC_val_solution.csv", names)
    return path


def tiny_imagenet(root: Path, count: int = 6) -> Path:
    images = root / "val" / "images"
    images.mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(reversed(WNIDS)) + "\n")
    lines = []
    for index, image in enumerate(small_photos(count)):
        name = f"val_{index}.JPEG"
        image.resize((64, 64), Image.BILINEAR).save(images / name, quality=92)
        lines.append(f"{name}\t{WNIDS[index % 3]}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def cifar(root: Path, reader: str, count: int = 7) -> Path:
    rng = np.random.default_rng(3)
    images = np.stack([np.asarray(p.resize((32, 32), Image.BILINEAR).convert("RGB")) for p in small_photos(count)])
    data = images.transpose(0, 3, 1, 2).reshape(count, -1)
    if reader == "cifar10":
        folder = root / "cifar-10-batches-py"
        batch, meta = {b"data": data, b"labels": list(rng.integers(0, 10, count))}, {b"label_names": [
            f"class{i}".encode() for i in range(10)]}
        names = ("test_batch", "batches.meta")
    else:
        folder = root / "cifar-100-python"
        batch, meta = {b"data": data, b"fine_labels": list(rng.integers(0, 100, count))}, {b"fine_label_names": [
            f"fine{i}".encode() for i in range(100)]}
        names = ("test", "meta")
    folder.mkdir(parents=True)
    for name, content in zip(names, (batch, meta)):
        with open(folder / name, "wb") as handle:
            pickle.dump(content, handle)
    return root


def awkward_folders(root: Path) -> dict[str, str]:
    """Class folders holding every kind of odd input; returns file -> what must happen."""
    good = small_photos(6)
    layout = {}

    def put(relative, writer, expect):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        writer(path)
        layout[relative] = expect

    put("n01440764/ok.JPEG", lambda p: good[0].save(p, quality=90), "ok")
    buffer = io.BytesIO()
    good[1].save(buffer, format="JPEG", quality=90)
    put("n01440764/truncated.JPEG", lambda p: p.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2]), "fail")
    put("n01443537/cmyk.JPEG", lambda p: good[2].convert("CMYK").save(p, quality=90), "ok")
    sixteen = (np.asarray(good[3].convert("L"), np.uint16) * 3)
    put("n01443537/sixteen.png", lambda p: Image.fromarray(sixteen).save(p), "ok")
    put("n02123045/grey.JPEG", lambda p: good[4].convert("L").save(p, quality=90), "ok")
    put("n02123045/palette.png", lambda p: good[5].convert("P").save(p), "ok")
    put("n02123045/alpha.png", lambda p: good[0].convert("RGBA").save(p), "ok")
    put("n02123045/not_an_image.JPEG", lambda p: p.write_bytes(b"this is no picture\n" * 40), "fail")
    put("n02123045/notes.txt", lambda p: p.write_text("not listed: no image extension"), "ignored")
    (root / "n09999999").mkdir()  # an empty class folder
    return layout
