"""``make demo``: the main job on a small sample of real photos that ship with scikit-image.

Builds a tiny validation set in class folders (real ImageNet wnids where one fits), runs
the ``imagenet`` configuration with all 19 corruptions x 5 severities on a local cluster
of two worker processes, writes the JPEG tree, the Zarr store and a preview sheet.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

# photo -> class folder; the astronaut fits no ImageNet-1k class and keeps a plain name
SAMPLE = {
    "chelsea": "n02123045",  # tabby, tabby cat
    "coffee": "n07920052",  # espresso
    "rocket": "n04008634",  # projectile, missile
    "astronaut": "astronaut",
    "motorcycle_left": "n03785016",  # moped
    "motorcycle_right": "n03785016",
}


def sample_photo(name: str) -> Image.Image:
    import skimage.data
    if name.startswith("motorcycle_"):
        left, right, _ = skimage.data.stereo_motorcycle()
        return Image.fromarray(left if name.endswith("left") else right)
    return Image.fromarray(getattr(skimage.data, name)())


def build_sample(root: Path) -> Path:
    """Write the sample as ``root/<wnid>/<photo>.JPEG`` (quality 95); returns ``root``."""
    for index, (name, wnid) in enumerate(SAMPLE.items(), start=1):
        path = root / wnid / f"sample_{index:02d}_{name}.JPEG"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            sample_photo(name).save(path, quality=95)
    return root


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path(".demo"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    from pipeline.preview import contact_sheet

    from .__main__ import main as cli
    from corruptions.preprocess import preprocess
    source = build_sample(args.dir / "val")
    out = args.dir / "imagenet-c"
    config = "imagenet-c"
    status = cli(["generate", str(config), "--source", str(source), "--out", str(out),
                  "--workers", str(args.workers), "--shard-size", "2", "--allow-failures"])
    if status:
        return status
    sheet = args.dir / "preview-imagenet-chelsea.png"
    from corruptions import corruption_names
    contact_sheet(preprocess(sample_photo("chelsea"), "imagenet"), "imagenet", corruption_names("all")).save(sheet)
    print("\ndemo outputs:")
    print(f"  sample validation set  {source.resolve()}")
    print(f"  JPEG tree              {out.resolve()}/<corruption>/<severity>/<wnid>/")
    print(f"  Zarr store             {(out / 'imagenet-c.zarr').resolve()}")
    print(f"  preview sheet          {sheet.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
