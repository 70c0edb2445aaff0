"""Where the shipped configs are: the checkout's ``configs/`` (also for an editable install),
or, for a wheel install, the copy installed under ``<prefix>/share/imagenet-c-generator/``."""
from __future__ import annotations

import os
import sys
from pathlib import Path

SHARE = Path("share") / "imagenet-c-generator" / "configs"


def config_dir() -> Path:
    override = os.environ.get("CORRUPTIONS_CONFIG_DIR")
    if override:
        return Path(override)
    checkout = Path(__file__).resolve().parents[1] / "configs"
    if (checkout / "variants").is_dir():
        return checkout
    for prefix in (sys.prefix, sys.base_prefix, os.path.expanduser("~/.local")):
        installed = Path(prefix) / SHARE
        if (installed / "variants").is_dir():
            return installed
    raise FileNotFoundError(f"the shipped configs were not found (looked in {checkout} and <prefix>/{SHARE}); "
                            "set CORRUPTIONS_CONFIG_DIR")


CONFIG_DIR = config_dir()
