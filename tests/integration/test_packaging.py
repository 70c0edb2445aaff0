"""A non-editable install works: the wheel, in a fresh virtual environment, run from another
directory, finds its configs (by name), kernels' YAML, wnid list and Zarr codec."""
from __future__ import annotations

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

from .. import sources as fx

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_installs_and_runs_from_elsewhere(tmp_path):
    wheels = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(ROOT)], check=True, cwd=tmp_path)
    wheel = next(wheels.glob("imagenet_c_generator-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "pipeline/data/imagenet_wnids.txt" in names
    assert {f"corruptions/data/frost/frost{i}.{'png' if i < 4 else 'jpg'}" for i in range(1, 7)} <= set(names)
    assert any(n.endswith("data/share/imagenet-c-generator/configs/variants/imagenet.yaml") for n in names)
    assert any(n.endswith("data/share/imagenet-c-generator/configs/imagenet-c.yaml") for n in names)
    assert any(n.endswith("data/share/imagenet-c-generator/configs/imagenet-c-bar.yaml") for n in names)
    assert {"corruptions/bar/kernels.py", "corruptions/bar/registry.py", "corruptions/bar/config.py"} <= set(names)
    # a fresh environment whose dependencies come from this one's site-packages (not its
    # editable install of the project: nested .pth files are not processed)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    target = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip())
    (target / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CORRUPTIONS_CONFIG_DIR")}
    env.pop("CORRUPTIONS_FROST_DIR", None)  # a plain install carries the frost textures in the wheel
    where = subprocess.run([python, "-c", "import pipeline, corruptions.locations as l; print(pipeline.__file__); "
                            "print(l.CONFIG_DIR)"], check=True, capture_output=True, text=True, cwd=elsewhere,
                           env=env).stdout.split()
    assert where[0].startswith(str(venv)) and where[1].startswith(str(venv)), where
    source = fx.class_folders(tmp_path / "val", count=3)
    out = tmp_path / "out"
    run = subprocess.run([venv / "bin" / "imagenet-c", "generate", "imagenet-c", "--source", str(source),
                          "--out", str(out), "--only", "frost", "fog", "--severities", "2", "--workers", "1",
                          "--variant", "imagenet64"], capture_output=True, text=True, cwd=elsewhere, env=env)
    assert run.returncode == 0, run.stderr
    assert len(list(out.glob("frost/2/*/*.JPEG"))) == 3
    check = subprocess.run([python, "-c", "import zarr, sys; g = zarr.open_group(sys.argv[1], mode='r'); "
                            "print(g['fog/2'][0].mean())", str(out / "imagenet-c.zarr")],
                           capture_output=True, text=True, cwd=elsewhere, env=env)
    assert check.returncode == 0 and float(check.stdout) > 0, check.stderr

