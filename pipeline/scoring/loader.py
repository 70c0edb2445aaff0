"""Batches for the model: image files decoded in worker processes straight into one uint8 array
per batch, or stored arrays (Zarr chunks, .npy rows) read a batch at a time."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np

from ..formats import DataError
from ..formats.common import Reader
from ..formats.jpeg_tree import list_folder

CLEAN = ("clean", 0)
MAX_FILE_BYTES = 1 << 30  # an image file larger than this is refused unread


# OpenCV >= 4.10 decodes straight to RGB; reversing BGR afterwards costs as much again.
_READ_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _start_of_frame(data) -> int:
    """Where a JPEG's frame header (SOF) starts, or -1 (not a JPEG, or none before the scan)."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return -1
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return -1
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            i += 2
            continue
        if marker in _SOF:
            return i if i + 10 <= len(data) else -1
        if marker == 0xDA:
            return -1
        i += 2 + ((data[i + 2] << 8) | data[i + 3])
    return -1


def check_pixels(width: int, height: int, path: str) -> None:
    """The generator's bound on pixels per image (``max_pixels``' default), before decoding: a
    small file that would decode to gigabytes (a decompression bomb) is refused."""
    from ..readers import DEFAULT_MAX_PIXELS
    if width * height > DEFAULT_MAX_PIXELS:
        raise DataError(f"cannot decode {path}: {width} x {height} = {width * height} pixels, more than "
                        f"{DEFAULT_MAX_PIXELS} (a decompression bomb?)")


def plain_jpeg(data) -> bool:
    """An 8-bit JPEG of 1 or 3 components: those OpenCV decodes to exactly PIL's pixels (both
    are libjpeg-turbo). Anything else (CMYK JPEGs, PNGs, 16-bit files) is decoded by PIL."""
    i = _start_of_frame(data)
    return i >= 0 and data[i + 4] == 8 and data[i + 9] in (1, 3)


def decode_rgb(path: str) -> np.ndarray:
    """The pixels the generator's loader (PIL ``convert("RGB")``) gets from a file: EXIF
    orientation not applied, CMYK, palette and grey converted by PIL's rules, 16-bit clipped.
    Plain JPEGs take OpenCV's faster decoder, which gives the same pixels."""
    import stat
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise DataError(f"cannot read {path}: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise DataError(f"cannot read {path}: {info.st_size} bytes, more than an image file of the benchmarks "
                            f"holds ({MAX_FILE_BYTES})")
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    return decode_bytes(data, path)


def decode_bytes(data: np.ndarray, path: str) -> np.ndarray:
    """``decode_rgb`` of a file's bytes already read (``path`` names it in errors)."""
    view = memoryview(data)
    frame = _start_of_frame(view)
    if frame >= 0:
        check_pixels((view[frame + 7] << 8) | view[frame + 8], (view[frame + 5] << 8) | view[frame + 6], path)
    if frame >= 0 and view[frame + 4] == 8 and view[frame + 9] in (1, 3):
        flags = (_READ_RGB if _READ_RGB is not None else cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION
        try:
            image = cv2.imdecode(data, flags)
        except cv2.error as exc:
            raise DataError(f"cannot decode {path}: {exc}") from None
        if image is None:
            raise DataError(f"cannot decode {path}: not an image, or its data are damaged")
        return image if _READ_RGB is not None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    import io

    from PIL import Image

    from corruptions.preprocess import to_rgb
    try:
        with Image.open(io.BytesIO(data.tobytes())) as opened:
            check_pixels(*opened.size, path)
            opened.load()
            return np.asarray(to_rgb(opened))
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder error is this file's failure
        raise DataError(f"cannot decode {path}: not an image, or its data are damaged "
                        f"({type(exc).__name__})") from None


def decode(path: str, input_size: int, resize: int, clean: bool = False,
           interpolation: str = "bilinear") -> np.ndarray:
    """RGB uint8 as the generator decodes it, at the model's input size (see ``fit``). Any file
    that cannot be read or decoded raises ``DataError`` naming it."""
    return fit(decode_rgb(path), input_size, resize, clean, interpolation)


def fit(image: np.ndarray, input_size: int, resize: int, clean: bool = False,
        interpolation: str = "bilinear") -> np.ndarray:
    """An RGB image at the model's input size. A ``clean`` image always takes the clean stage
    (shorter side to ``resize``, then the centre ``input_size`` crop), whatever its size, as
    ImageNet-C/test.py's clean loader and the generator do: a 224 x 224 source file is resized
    to 256 and cropped like every other. A corrupted image already at the input size is taken
    as it is (test.py: ``CenterCrop(224)`` of a 224 image); any other is fitted likewise.
    ``interpolation`` is the resize's filter (PIL's bilinear, the generator's, or bicubic)."""
    height, width = image.shape[:2]
    if clean or (height, width) != (input_size, input_size):
        from PIL import Image

        from corruptions.preprocess import apply_step, resize_shorter
        pil = resize_shorter(Image.fromarray(image), resize, RESAMPLE[interpolation])
        pil = apply_step(pil, {"op": "center_crop", "size": input_size})
        return np.array(pil)
    return image


RESAMPLE = {"bilinear": 2, "bicubic": 3}  # PIL's Image.BILINEAR, Image.BICUBIC


class CleanFolder(Reader):
    """A clean validation set in class folders: the single cell ``("clean", 0)``; every image
    goes through the clean stage (``fit(clean=True)``)."""
    kind = "clean_folder"
    clean = True

    def __init__(self, root: Path, classes):
        self.root, self.classes, self._files = root, classes, {}
        self._cells = [CLEAN]

    def cells(self):
        return list(self._cells)

    def files(self, cell):
        if cell not in self._files:
            self._files[cell] = list_folder(self.root, self.classes)
        return self._files[cell]

    def count(self, cell):
        return len(self.files(cell).paths)


class _FileBatches:
    """Items are whole batches of image files (of several cells), decoded in worker processes
    straight into one array: no per-image tensors, no collation. Files that cannot be decoded
    are left out of the batch and named in its fourth element."""

    def __init__(self, files: list[tuple[str, int, int]], batch_size: int, input_size: int, resize: int,
                 clean: bool = False, interpolation: str = "bilinear"):
        self.files, self.batch_size = files, batch_size  # (path, label, cell position)
        self.input_size, self.resize, self.clean = input_size, resize, clean
        self.interpolation = interpolation

    def __len__(self):
        return -(-len(self.files) // self.batch_size)

    def __getitem__(self, index):
        import torch
        files = self.files[index * self.batch_size:(index + 1) * self.batch_size]
        images = np.empty((len(files), self.input_size, self.input_size, 3), np.uint8)
        read, unreadable = [], []
        for path, label, position in files:
            try:
                images[len(read)] = decode(path, self.input_size, self.resize, self.clean, self.interpolation)
                read.append((label, position))
            except DataError as exc:
                unreadable.append(str(exc))
        return (torch.from_numpy(images[:len(read)]), torch.tensor([r[0] for r in read], dtype=torch.int64),
                torch.tensor([r[1] for r in read], dtype=torch.int64), unreadable)


class _SliceBatches:
    """Items are whole batches read from a store (Zarr chunks, .npy rows)."""

    def __init__(self, data: Reader, pieces: list[tuple[int, tuple, int, int]]):
        self.data, self.pieces = data, pieces  # (cell position, cell, start, stop)

    def __len__(self):
        return len(self.pieces)

    def __getitem__(self, index):
        import torch
        position, cell, start, stop = self.pieces[index]
        images, labels = self.data.read(cell, start, stop)
        images = np.ascontiguousarray(images)
        return (torch.from_numpy(images if images.flags.writeable else images.copy()), torch.from_numpy(labels),
                torch.full((len(labels),), position, dtype=torch.int64), [])


def worker_settings(_worker_id: int) -> None:
    """Each loader worker is one of a process per core: single-threaded libraries (on the fly,
    BLAS threads would spin beside every kernel) and the allocator kept for reuse. OpenCV's
    thread count comes from the parent (``before_fork``): set in a forked child it can deadlock."""
    from corruptions.runtime import producer_process
    producer_process(opencv=False)


def before_fork(workers: int) -> None:
    """In the scoring process, before its loader workers fork: OpenCV single-threaded, which
    they inherit (the scoring process itself runs the model, not OpenCV's parallel loops)."""
    if workers:
        import cv2
        cv2.setNumThreads(1)


def batches(data: Reader, cells: list, config, pin: bool, unreadable: list | None = None):
    """Yield (uint8 NHWC tensor, int64 labels, int64 cell indices) over ``cells``. All cells go
    through one loader, so its worker processes start once per run. Files are decoded in
    worker processes; stored arrays are read there only for a GPU, since on a CPU the model
    needs every core and reading a chunk costs next to nothing. Files that cannot be decoded
    are appended to ``unreadable`` ("path: reason") and skipped; without that list, the
    first one raises ``DataError``."""
    import torch
    workers = config.workers if config.workers is not None else (os.cpu_count() or 1)
    if hasattr(data, "produced_batches"):  # corrupted in the loader (on the fly)
        dataset = data.produced_batches(cells, config)
    elif data.files(cells[0]) is None:
        dataset = _SliceBatches(data, [(position, cell, start, stop) for position, cell in enumerate(cells)
                                       for start, stop in data.slices(cell, config.batch_size)])
        workers = workers if pin else 0
    else:
        dataset = _FileBatches([(path, label, position) for position, cell in enumerate(cells)
                                for path, label in zip(data.files(cell).paths, data.files(cell).labels)],
                               config.batch_size, config.input_size, config.resize,
                               getattr(data, "clean", False), config.interpolation)
    workers = min(workers, len(dataset))
    before_fork(workers)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, num_workers=workers, pin_memory=pin, shuffle=False,
        prefetch_factor=4 if workers else None, worker_init_fn=worker_settings if workers else None,
        multiprocessing_context="fork" if workers and sys.platform == "linux" else None)
    for images, labels, positions, failed in loader:
        if failed and unreadable is None:
            raise DataError(failed[0])
        if failed:
            unreadable.extend(failed)
        if len(labels):
            yield images, labels, positions
