"""The official ImageNet-C layout: ``OUT/<corruption>/<severity>/<wnid>/<file name>``, JPEG
quality 85, optimised, as the originals saved it; ImageFolder-readable."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from corruptions.settings import Settings, flag, integer

from ..files import make_folders, open_folder, sha256, split, write_in
from ..readers import class_folder_images
from ..task import IMAGE_DIMS
from .common import (
    LEVEL_NAMES,
    DataError,
    Files,
    Layout,
    ReleaseSample,
    image_benchmark,
    jpeg_bytes,
    manifest_files,
    sample_key,
)
from .common import Reader as BaseReader

DIMS = IMAGE_DIMS
NAME = "jpeg"  # its key in a run config's outputs.formats
STORES = (IMAGE_DIMS,)  # the blocks it stores: ImageNet-C's
# what an official release packs of it: every image file, in family tarballs (ImageNet-C's own)
RELEASE_RANK, RELEASE_ONE_TARBALL, RELEASE_ARRAYS = 1, False, False


class JpegSettings(Settings):
    """``outputs.jpeg`` of a run config (also the Zarr store's JPEG codec): as the originals saved."""
    quality: integer("an integer from 1 to 100", 1, 100) = 85
    optimize: flag() = True


SETTINGS = JpegSettings


def jpeg_name(name: str) -> str:
    """The original file name; sources that are not JPEG files get a .JPEG suffix instead."""
    stem, suffix = os.path.splitext(name)
    return name if suffix.lower() in (".jpeg", ".jpg") else f"{stem}.JPEG"


def item_file_name(item) -> str:
    """The file an item's image becomes, in every cell of the tree."""
    return jpeg_name(item.name)


def relative_path(name: str, level: int, item) -> tuple[str, ...]:
    """Where an item's image of (corruption, severity) lies in the tree: its path parts."""
    return (name, str(level), item.wnid, jpeg_name(item.name))


def parse_path(path: str) -> tuple[str, int, str] | None:
    """(corruption, severity, "wnid/file") of a tree path (a leading top folder allowed, as in
    Tiny-ImageNet-C's release); None for anything else."""
    parts = path.split("/")
    if len(parts) < 4 or parts[-3] not in LEVEL_NAMES:
        return None
    return parts[-4], int(parts[-3]), "/".join(parts[-2:])


def make_writer(config, out: Path, dims: tuple[str, ...]):
    """This format's writer for a resolved run config writing into ``out``."""
    return Writer(str(out), config.outputs.jpeg.quality, config.outputs.jpeg.optimize)


@dataclass(frozen=True)
class Writer:
    root: str
    quality: int = 85
    optimize: bool = True
    format = "jpeg"
    dims = DIMS

    def prepare(self, layout: Layout) -> None:
        make_folders(self.root)

    def write(self, block) -> dict[str, str]:
        digests = {}
        folders: dict[str, int] = {}  # class folder -> descriptor, opened once per block without following links
        try:
            for level_index, level in enumerate(block.levels):
                for row, (item, good) in enumerate(zip(block.items, block.ok)):
                    if not good:
                        continue
                    parts = relative_path(block.key.name, level, item)
                    relative = "/".join(parts)
                    split(relative, self.root)
                    parent = "/".join(parts[:-1])
                    if parent not in folders:
                        folders[parent] = open_folder(self.root, parent)
                    data = jpeg_bytes(block, level_index, row, self.quality, self.optimize)
                    write_in(folders[parent], parts[-1], data)
                    digests[relative] = sha256(data)
        finally:
            for descriptor in folders.values():
                os.close(descriptor)
        return digests

    def finalise(self, layout: Layout, failures, complete: bool = True) -> list[str]:
        return [str(Path(self.root))]


def list_folder(root: Path, classes: list[str] | None, suffixes: tuple[str, ...] | None = None) -> Files:
    """``root/<class>/<image>`` (or files with other ``suffixes``), sorted as torchvision's
    ImageFolder."""
    found = class_folder_images(root, suffixes=suffixes) if suffixes else class_folder_images(root)
    index = class_index([e.name for e in os.scandir(root) if e.is_dir()], classes)
    return Files(tuple(str(path) for _, path in found), tuple(index[folder] for folder, _ in found))


def class_index(folders: list[str], classes: list[str] | None) -> dict[str, int]:
    """Folder name -> class index: ``classes`` when given (e.g. the 1000 ImageNet wnids,
    so a tree holding only some classes keeps the standard indices), else sorted folders."""
    if classes is None:
        return {w: i for i, w in enumerate(sorted(set(folders)))}
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(folders) - set(index))
    if unknown:
        raise DataError(f"class folders not in the class list: {', '.join(unknown[:5])}"
                        f"{' ...' if len(unknown) > 5 else ''} (give --classes, or use folders named by class)")
    return index


def recognise(path: Path) -> bool:
    return path.is_dir() and bool(image_benchmark(lambda name: (path / name).is_dir())[1])


class Reader(BaseReader):
    """``root/<corruption>/<severity>/<class>/<image>``: ours or the official download."""
    kind = "jpeg_tree"
    class_folders = True

    def __init__(self, root: Path, classes: list[str] | None, allow_partial: bool = False):
        self.root, self.classes = Path(root), classes
        self.task, names = image_benchmark(lambda name: (self.root / name).is_dir())
        self._cells = [(c, int(s.name)) for c in names
                       for s in sorted((self.root / c).iterdir()) if s.is_dir() and s.name in LEVEL_NAMES]
        self._files: dict = {}

    def cells(self):
        return list(self._cells)

    def files(self, cell):
        if cell not in self._files:
            self._files[cell] = list_folder(self.root / cell[0] / str(cell[1]), self.classes)
        return self._files[cell]

    def count(self, cell):
        return len(self.files(cell).paths)


def release_files(out: Path, names, records: dict) -> list[tuple[str, str | None, str | None]]:
    """What a release packs of a run's tree: (path under OUT, its manifest digest, corruption) of
    every image of the run's corruptions ``names``, from the manifest ``records``."""
    return manifest_files(records, names, NAME)


def release_samples(out: Path, names, records: dict, variant: str) -> list[ReleaseSample]:
    """A per-sample release's samples of a run's tree: each image file as it is (``.jpg``)."""
    samples = []
    for path, digest, _ in release_files(out, names, records):
        parsed = parse_path(path)
        if parsed is None:
            raise DataError(f"{out}: {path!r} is not a tree path <corruption>/<severity>/<wnid>/<file>")
        name, level, rest = parsed
        wnid, file_name = rest.split("/")
        samples.append(ReleaseSample(name, level, sample_key(wnid, file_name), "jpg", path, digest, file_name, wnid))
    return samples
