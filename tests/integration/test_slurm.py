"""`kind: slurm` through a real SLURM (``tests/slurm.py``): the same bytes as a local cluster;
OUT that the workers do not share, refused; every job cancelled mid-run, and jobs that outlive
their walltime, replaced with no action from the user; jobs that cannot start a worker, and a job
script the batch system refuses, stopped with one error line; Ctrl-C exits 130 and resumes."""
from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.engine import RunError, generate
from pipeline.runconfig import Cluster, load_run_config

from .. import sources as fx
from ..helpers import ROOT
from ..slurm import PARTITION, Slurm

JOBQUEUE = {"cores": 1, "memory": "1GB", "processes": 1, "queue": PARTITION, "walltime": "00:10:00"}
# ImageNet-P at the originals' x264 settings: about a second of a core per sequence, so a run
# lasts long enough to be cancelled, interrupted or outlived (80 sequences, one per key: more than
# a minute of one core)
P_RUN = {"task": "imagenet-p", "name": "imagenet-p", "sequences": ["rotate", "gaussian_noise", "tilt", "shear", "scale",
                                                                    "speckle_noise", "gaussian_noise_2", "shot_noise",
                                                                    "speckle_noise_2", "brightness"],
         "shard_size": 1, "outputs": {"formats": ["mp4"]}}
# half of it (40 sequences): still long enough to cancel or interrupt mid-run with two jobs
P_HALF = {**P_RUN, "sequences": P_RUN["sequences"][:5]}


def kinds_of(reference: dict[str, bytes], run: dict) -> dict[str, bytes]:
    """The reference MP4s of a run's kinds (each kind's MP4s are the same whichever others run)."""
    return {path: data for path, data in reference.items() if path.split("/")[0] in run["sequences"]}


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = Slurm(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return fx.class_folders(tmp_path_factory.mktemp("val"), count=8)


def config(source, out, run=None, **cluster):
    overrides = [{"source": str(source), "out": str(out)}, run or {"corruptions": ["contrast", "fog", "frost"],
                                                                   "severities": [1, 3]},
                 {"cluster": {"kind": "slurm", "jobs": 2, "no_worker_timeout": 120, "jobqueue": JOBQUEUE, **cluster}}]
    return load_run_config("imagenet-p" if run else "imagenet-c", overrides)


def local(config_):
    return config_.model_copy(update={"cluster": Cluster(kind="local", workers=2, threads_per_worker=1,
                                                         memory_limit="2GiB", jobs=4, no_worker_timeout=120)})


def files(out: Path, suffix: str) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob(f"*{suffix}")) if "logs" not in p.parts}


@pytest.fixture(scope="module")
def p_reference(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("p-reference")
    generate(local(config(source, out, P_RUN)), stream=io.StringIO())
    return files(out, ".mp4")


def cli(slurm_config: Path, out: Path, source: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", "generate", str(slurm_config), "--source", str(source),
                             "--out", str(out)], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def write_config(path: Path, run: dict, **cluster) -> Path:
    import yaml
    path.write_text(yaml.safe_dump({**run, "cluster": {"kind": "slurm", "jobs": 2, "no_worker_timeout": 120,
                                                       "jobqueue": JOBQUEUE, **cluster}}))
    return path


def wait_for_units(manifest: Path, units: int, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if manifest.exists() and manifest.read_text().count("\n") >= units:
            return
        time.sleep(0.1)
    raise AssertionError(f"the run did not reach {units} units: {process.poll()}")


def test_bytes_equal_a_local_runs_with_named_jobs_and_logs_under_out(slurm, source, tmp_path):
    stream = io.StringIO()
    summary = generate(config(source, tmp_path / "slurm"), stream=stream)
    generate(local(config(source, tmp_path / "local")), stream=io.StringIO())
    reference = files(tmp_path / "local", ".JPEG")
    assert len(reference) == 8 * 3 * 2 == summary.outputs_written
    assert files(tmp_path / "slurm", ".JPEG") == reference
    logs = list((tmp_path / "slurm" / "logs").iterdir())
    assert logs and all(p.name.startswith("imagenet-c-") for p in logs)  # the run's job name, not dask-worker
    assert "ssh -N -L" in stream.getvalue()  # how to reach the dashboard from a laptop
    slurm.wait_until_no_jobs()


def test_out_that_the_workers_do_not_share_is_refused(slurm, source, tmp_path):
    """Each worker runs in its own mount namespace with an empty tmpfs over OUT (as a node's local
    /tmp would be): the run stops before any work with one error, and nothing is marked done."""
    out = tmp_path / "out"
    out.mkdir()
    wrapper = tmp_path / "python-private-out"
    wrapper.write_text(f"#!/bin/bash\nexec unshare -m --propagation private bash -c "
                       f"'mount -t tmpfs none \"$0\" && exec \"$@\"' {out} {sys.executable} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    jobqueue = {**JOBQUEUE, "python": str(wrapper)}
    with pytest.raises(RunError, match="the workers do not see --out"):
        generate(config(source, out, jobqueue=jobqueue), stream=io.StringIO())
    assert not (out / "manifest.jsonl").exists() or not (out / "manifest.jsonl").read_text()
    slurm.wait_until_no_jobs()


def half_run_under_way(tmp_path: Path, source: Path, units: int) -> tuple[Path, Path, subprocess.Popen]:
    """The CLI started on half the ImageNet-P run through SLURM, returned once ``units`` units are
    recorded: its run config, OUT and process."""
    path = write_config(tmp_path / "run.yaml", P_HALF)
    out = tmp_path / "out"
    process = cli(path, out, source)
    wait_for_units(out / "manifest.jsonl", units, process)
    return path, out, process


def test_jobs_cancelled_mid_run_are_replaced_and_the_bytes_hold(slurm, source, tmp_path, p_reference):
    _, out, process = half_run_under_way(tmp_path, source, units=4)
    slurm.cancel_all()  # every job of the run, as `scancel -u` would
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    assert files(out, ".mp4") == kinds_of(p_reference, P_HALF)
    slurm.wait_until_no_jobs()


def test_a_run_longer_than_the_walltime_finishes_by_itself(slurm, source, tmp_path, p_reference):
    """One job at a time, a one-minute walltime, a run of more than a minute of work: workers
    leave before their walltime and new jobs take over."""
    out = tmp_path / "out"
    summary = generate(config(source, out, P_RUN, jobs=1, jobqueue={**JOBQUEUE, "walltime": "00:01:00"}),
                       stream=io.StringIO())
    assert summary.outputs_written == len(p_reference) == 80
    assert files(out, ".mp4") == p_reference
    assert len({p.stem for p in (out / "logs").iterdir()}) >= 2  # more than one job did the work
    slurm.wait_until_no_jobs()


def test_ctrl_c_exits_130_and_the_run_resumes(slurm, source, tmp_path, p_reference):
    path, out, process = half_run_under_way(tmp_path, source, units=2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, (stdout, stderr[-3000:])
    assert "interrupted; re-run the same command to resume" in stderr
    slurm.wait_until_no_jobs()
    resumed = cli(path, out, source)
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-3000:]
    assert "already done" in stdout
    assert files(out, ".mp4") == kinds_of(p_reference, P_HALF)
    slurm.wait_until_no_jobs()


def test_jobs_that_cannot_start_a_worker_stop_the_run_with_their_log(slurm, source, tmp_path):
    """The job script's python does not exist on the node: no worker ever connects; the run stops
    after cluster.no_worker_timeout with one error line quoting the job's log, exit 2."""
    path = write_config(tmp_path / "run.yaml", {"corruptions": ["contrast"], "severities": [1]},
                        no_worker_timeout=20, jobqueue={**JOBQUEUE, "python": "/nonexistent/bin/python3"})
    started = time.monotonic()
    process = cli(path, tmp_path / "out", source)
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 2, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "no Dask worker has been connected for 20 s" in lines[0]
    assert "/nonexistent/bin/python3" in lines[0]  # the job log's own words
    assert "Traceback" not in stderr and time.monotonic() - started < 150
    slurm.wait_until_no_jobs()


def test_pending_jobs_are_said_and_end_in_an_error_with_the_reason(slurm, source, tmp_path):
    """Jobs held back by the scheduler (here: to start in ten minutes): a line says they are pending
    and why; after cluster.no_worker_timeout the run stops with the scheduler's reason."""
    stream = io.StringIO()
    held = {**JOBQUEUE, "job_extra_directives": ["--begin=now+600"]}
    started = time.monotonic()
    with pytest.raises(RunError, match=r"no Dask worker has been connected for 12 s.*2 jobs pending \(BeginTime\)"):
        generate(config(source, tmp_path / "out", jobqueue=held, no_worker_timeout=12), stream=stream)
    assert "waiting for workers" in stream.getvalue() and "pending (BeginTime)" in stream.getvalue()
    assert time.monotonic() - started < 90
    slurm.wait_until_no_jobs()


def test_a_job_script_the_batch_system_refuses_is_one_error_line(slurm, source, tmp_path):
    path = write_config(tmp_path / "run.yaml", {"corruptions": ["contrast"], "severities": [1]},
                        jobqueue={**JOBQUEUE, "queue": "no-such-partition"})
    process = cli(path, tmp_path / "out", source)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 2
    assert stderr.strip().splitlines()[-1].startswith("error: the batch system refuses the job script:")
    assert "partition" in stderr and "Traceback" not in stderr
    assert not slurm.jobs()
