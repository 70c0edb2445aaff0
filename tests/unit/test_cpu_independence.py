"""Kernel outputs do not depend on the CPU's instruction set.

Every ImageNet-C corruption x severity (and its JPEG bytes), every C-bar corruption x level and
every ImageNet-P kind of every variant, on two photos (``tests/kernel_hashes.py``), is hashed in subprocesses whose numpy,
OpenCV, numba, OpenBLAS, glibc and libjpeg-turbo dispatch is lowered to an older CPU's, and
compared with the run on this CPU: every output is equal at x86-64-v3 (AVX2 and FMA, no AVX-512:
Haswell to Ice Lake, AMD Zen 1-3) and at x86-64-v2 (SSE4.2, no AVX: before 2013).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ..helpers import ROOT

AVX512 = "-AVX512F,-AVX512DQ,-AVX512BW,-AVX512VL,-AVX512CD"
LOWERED = {
    "x86-64-v3": {"NPY_DISABLE_CPU_FEATURES": "X86_V4,AVX512_ICL,AVX512_SPR",
                  "OPENCV_CPU_DISABLE": "AVX512-SKX,AVX512-CLX", "NUMBA_CPU_NAME": "haswell",
                  "OPENBLAS_CORETYPE": "Haswell", "GLIBC_TUNABLES": f"glibc.cpu.hwcaps={AVX512}"},
    "x86-64-v2": {"NPY_DISABLE_CPU_FEATURES": "X86_V3,X86_V4,AVX512_ICL,AVX512_SPR",
                  "OPENCV_CPU_DISABLE": "AVX512-CLX,AVX512-SKX,AVX_VNNI,AVX2,FP16,AVX,SSE4.2,SSE4.1",
                  "NUMBA_CPU_NAME": "nehalem", "OPENBLAS_CORETYPE": "Nehalem",
                  "GLIBC_TUNABLES": f"glibc.cpu.hwcaps={AVX512},-AVX2,-FMA,-AVX", "JSIMD_FORCESSE2": "1"},
}


def hashes(environment: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LOWERED["x86-64-v2"] and not k.startswith("JSIMD_")}
    run = subprocess.run([sys.executable, "-m", "tests.kernel_hashes"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(env, PYTHONPATH=str(ROOT), **environment), timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def native():
    return hashes({})


@pytest.mark.parametrize("cpu", list(LOWERED))
def test_every_output_is_the_same_on_an_older_cpu(native, cpu):
    lowered = hashes(LOWERED[cpu])
    assert len(native) == 2200 and lowered.keys() == native.keys()
    assert [key for key in native if lowered[key] != native[key]] == []


def test_the_run_identity_names_the_architecture_not_the_cpu_class():
    """run.json's versions carry the machine architecture (x86-64 bytes are tested, others not),
    and no longer the CPU class: a resume on a node of an older class is the same run."""
    script = "from pipeline.engine import byte_versions; print(byte_versions()['cpu'])"
    classes = []
    for environment in ({}, LOWERED["x86-64-v3"], LOWERED["x86-64-v2"]):
        run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, PYTHONPATH=str(ROOT), **environment))
        assert run.returncode == 0, run.stderr[-2000:]
        classes.append(run.stdout.strip())
    assert classes == ["x86-64"] * 3
