"""What goes where in a release: the run's members, grouped into the official tarballs,
with their names checked."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from corruptions import CORRUPTIONS

from ..files import (
    UnsafePath,
    read_bytes,
    split,
)
from ..formats import release_format
from ..runconfig import RunConfig, stored_run_config
from ..tasks import task_from_config, task_spec

SUMS, CARD, CROISSANT, MEMBERS, RUN = "SHA256SUMS", "README.md", "croissant.json", "MEMBERS", "run.json"
# runs published as one tarball under a top folder, as their official releases are
SINGLE_RELEASES = {"cifar-10-c": "CIFAR-10-C", "cifar-100-c": "CIFAR-100-C", "tiny-imagenet-c": "Tiny-ImageNet-C",
                   "imagenet-c-bar": "ImageNet-C-Bar", "cifar-10-c-bar": "CIFAR-10-C-Bar", "imagenet-p": "ImageNet-P",
                   "tiny-imagenet-p": "Tiny-ImageNet-P", "cifar-10-p": "CIFAR-10-P", "cifar-100-p": "CIFAR-100-P"}
TITLES = {"imagenet-c": "ImageNet-C", "imagenet-c-inception": "ImageNet-C (Inception-sized, 299 x 299)",
          "imagenet-64-c": "ImageNet 64x64-C", **SINGLE_RELEASES, "imagenet-c-bar": "ImageNet-C-bar",
          "cifar-10-c-bar": "CIFAR-10-C-bar", "imagenet-p-inception": "ImageNet-P (Inception-sized, 299 x 299)",
          "imagenet-64-p": "ImageNet 64x64-P"}

class PublishError(RuntimeError):
    pass


@dataclass(frozen=True)
class Member:
    name: str  # path inside the tarball
    source: str | None  # file under OUT, relative to it (opened without following links); None: ``data``
    sha256: str | None  # from the manifest, checked while streaming (None: computed then)
    data: bytes | None = None  # a member made in memory (a WebDataset sample's .cls and .json)
    row: int | None = None  # the sample made of this row of the array file ``source`` (``cifar_npy.ArrayRows``)
    size: int | None = None  # its size where it is made while written (an array row's sample)

# ---------------------------------------------------------------- what goes where

def release_samples(out: Path, config, records: dict, form: str) -> list:
    """The samples a per-sample release form packs (``form``: its name, for the message), as the
    run's release format lists them (``formats.common.ReleaseSample``)."""
    from ..formats import DataError, release_format
    release = release_format(config.outputs.formats)
    if release is None or not hasattr(release, "release_samples"):
        raise PublishError(f"--format {form}: the run wrote no JPEG tree, MP4 tree or CIFAR arrays to pack")
    try:
        return release.release_samples(out, kernel_names(config), records, config.variant)
    except (DataError, OSError) as exc:
        raise PublishError(f"--format {form}: {exc}") from None


def imagenet_classes(config) -> bool:
    """Whether a run's labels are ImageNet's 1000 classes (not CIFAR's, not Tiny ImageNet's 200)."""
    return not config.reader.startswith("cifar") and config.variant != "tiny"


def class_names(config, samples) -> list[str]:
    """The class names of a per-sample release, a label being an index into them: ImageNet's
    1000 wnids in standard order; Tiny ImageNet's own 200 (the sorted wnids present); for CIFAR
    (labels stored, no names in the arrays) the indices as text."""
    from ..readers import imagenet_wnids
    if any(sample.label is not None for sample in samples):
        return [str(index) for index in range(100 if config.reader == "cifar100" else 10)]
    wnids = {sample.wnid for sample in samples}
    if not imagenet_classes(config):
        return sorted(wnids)
    unknown = sorted(wnids - set(imagenet_wnids()))
    if unknown:
        raise PublishError(f"{unknown[0]!r} is not an ImageNet wnid: no class index for it")
    return list(imagenet_wnids())


def label_of(sample, index: dict[str, int]) -> int:
    """A sample's class index (``index``: class name -> index, from ``class_names``)."""
    return sample.label if sample.label is not None else index[sample.wnid]


def kernel_names(config) -> tuple[str, ...]:
    """The run's kernels (corruptions), under its task's run config key."""
    return tuple(getattr(config, task_spec(config.task).names_key))


def tarball_of(name: str) -> str:
    """The release tarball of a corruption: its family for the 15 benchmark corruptions
    (noise, blur, weather, digital), ``extra`` for the four others: from the task's registry."""
    return CORRUPTIONS.get(name).family if name in CORRUPTIONS.names("benchmark") else "extra"


def plan_release(out: Path) -> tuple[dict, RunConfig, dict[str, list[Member]]]:
    """(run.json, its run config, tarball name -> sorted members) for the run in OUT."""
    from ..engine import MANIFEST, read_manifest
    from ..engine import RUN as RUN_FILE
    try:
        run = json.loads(read_bytes(out, RUN_FILE, limit=64 << 20))
        config = stored_run_config(run["config"])
        run["identity"]["images"]
    except FileNotFoundError:
        raise PublishError(f"{out}: no {RUN_FILE}; publish takes the OUT folder of a generate run") from None
    except (ValueError, KeyError, TypeError, RecursionError):  # ConfigError is a ValueError
        raise PublishError(f"{out / RUN_FILE} is damaged (not a generate run's record); regenerate OUT") from None
    records = read_manifest(out)
    if not records:
        raise PublishError(f"{out}: {MANIFEST} lists no finished keys")
    expected = {key.id for key in task_from_config(config).keys(run["identity"]["images"], config.shard_size)}
    missing = sorted(expected - set(records))
    if missing:
        raise PublishError(f"{out}: the run is not finished ({len(missing)} keys missing, e.g. {missing[0]}); "
                           "re-run the same generate command first")
    top = SINGLE_RELEASES.get(config.name)
    release = release_format(config.outputs.formats)
    if release is None:
        raise PublishError(f"{out}: the run wrote no JPEG tree, MP4 tree or CIFAR .npy files: nothing to release "
                           "in an official layout")
    tarballs: dict[str, list[Member]] = {}
    for path, digest, name in release.release_files(out, kernel_names(config), records):
        # one tarball named for the release (its files under that folder), or one per family
        base = top or config.name if release.RELEASE_ONE_TARBALL else top or tarball_of(name)
        member = f"{base}/{path}" if release.RELEASE_ONE_TARBALL or top else path
        tarballs.setdefault(f"{base}.tar", []).append(Member(member, path, digest))
    check_member_names([m for group in tarballs.values() for m in group], out)
    return run, config, {name: sorted(members, key=lambda m: m.name) for name, members in sorted(tarballs.items())}


def member_size(out: Path, member: Member) -> int:
    """A member's size: its bytes, or its file's under OUT (not following a link)."""
    if member.data is not None:
        return len(member.data)
    if member.size is not None:
        return member.size
    try:
        return os.lstat(out / member.source).st_size
    except FileNotFoundError:
        raise PublishError(f"{out / member.source}: listed in the manifest but missing; re-run the same generate "
                           "command to make it again") from None


def check_member_names(members: list[Member], out: Path) -> None:
    """Every member is a safe relative name (no '..', not absolute, no line breaks: the member
    lists are one line a member), and no two are one file where names fold case or Unicode
    form (macOS, Windows): refused before anything is written."""
    import unicodedata
    seen: dict[str, str] = {}
    for member in members:
        try:
            split(member.name, out)
            if member.source is not None:
                split(member.source, out)
        except UnsafePath as exc:
            raise PublishError(f"{out}: the manifest names an output that cannot be published: {exc}") from None
        folded = unicodedata.normalize("NFC", member.name).casefold()
        if folded in seen:
            raise PublishError(f"{out}: {seen[folded]!r} and {member.name!r} are one file on case-insensitive or "
                               "Unicode-normalising file systems; rename one of their sources and regenerate")
        seen[folded] = member.name
