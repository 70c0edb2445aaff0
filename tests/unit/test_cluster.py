"""Worker processes run the kernels single-threaded and without Dask's statistical profiler
(which walks the task thread's stack every 10 ms: a fifth of a run's CPU)."""
import dask

from pipeline.cluster import jobqueue_arguments, open_client


def _worker_state():
    import os

    from threadpoolctl import threadpool_info
    return (dask.config.get("distributed.worker.profile.enabled"), os.environ.get("OPENBLAS_NUM_THREADS"),
            {pool["num_threads"] for pool in threadpool_info()})


def test_local_workers_have_no_profiler_and_one_thread_per_library():
    with open_client({"kind": "local", "workers": 1, "threads_per_worker": 1, "memory_limit": "1GiB"}) as client:
        from pipeline.cluster import WorkerSetup
        client.register_plugin(WorkerSetup())
        [(profiling, blas, threads)] = client.run(_worker_state).values()
    assert profiling is False and blas == "1" and threads <= {1}


def test_batch_jobs_get_the_same_settings_before_the_worker_starts():
    prologue = jobqueue_arguments({"jobqueue": {"job_script_prologue": ["source venv/bin/activate"]}})[
        "job_script_prologue"]
    assert "export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False" in prologue
    assert "export OPENBLAS_NUM_THREADS=1" in prologue and prologue[-1] == "source venv/bin/activate"


# ---------------------------------------------------------------- cluster settings, checked on load

import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

from corruptions import ConfigError  # noqa: E402
from pipeline.runconfig import load_run_config  # noqa: E402

from ..helpers import ROOT  # noqa: E402

SLURM = {"kind": "slurm", "jobqueue": {"cores": 1, "memory": "2GB"}}


def slurm_config(**cluster):
    merged = {**SLURM, **cluster, "jobqueue": {**SLURM["jobqueue"], **cluster.get("jobqueue", {})}}
    return load_run_config("imagenet-c", [{"cluster": merged}])


@pytest.mark.parametrize("cluster, key, says", [
    ({"jobqueue": {"walltim": "01:00:00"}}, "cluster.jobqueue.walltim", "walltime"),
    ({"jobqueue": {"cores": None}}, "cluster.jobqueue.cores", "required"),
    ({"jobqueue": {"memory": ""}}, "cluster.jobqueue.memory", "required"),
    ({"jobqueue": {"interface": "ib0"}}, "cluster.jobqueue.interface", "no network interface 'ib0'"),
    ({"workers": 8}, "cluster.workers", "does not apply to cluster kind 'slurm'"),
    ({"memory_limit": "4GiB"}, "cluster.memory_limit", "does not apply"),
    ({"threads_per_worker": 2}, "cluster.threads_per_worker", "does not apply"),
    ({"jobqueue": {"job_name": "mine"}}, "cluster.jobqueue.job_name", "allowed:"),
])
def test_cluster_mistakes_name_the_key_before_anything_starts(cluster, key, says):
    with pytest.raises(ConfigError) as error:
        slurm_config(**cluster)
    assert f"'{key}'" in str(error.value) and says in str(error.value)


def test_keys_of_another_kind_are_refused_for_a_local_cluster_too():
    with pytest.raises(ConfigError, match="'cluster.jobqueue' does not apply to cluster kind 'local'"):
        load_run_config("imagenet-c", [{"cluster": {"jobqueue": {"cores": 4}}}])


def test_workers_on_the_command_line_is_the_number_of_jobs_under_slurm():
    assert load_run_config("imagenet-c", [{"cluster": SLURM}], workers=6).cluster.jobs == 6
    assert load_run_config("imagenet-c", [], workers=6).cluster.workers == 6


def test_a_misspelt_jobqueue_key_is_one_error_line_before_out_is_made(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pipeline", "generate", "imagenet-c", "--source", str(tmp_path / "val"),
                          "--out", str(tmp_path / "out"), "--set", "cluster.kind=slurm",
                          "--set", "cluster.jobqueue={cores: 1, memory: 2GB, walltim: '1:00:00'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith("error:") and "'cluster.jobqueue.walltim'" in run.stderr
    assert not (tmp_path / "out").exists()


def test_slurm_without_dask_jobqueue_is_a_config_error():
    script = ("import sys; sys.modules['dask_jobqueue'] = None\n"  # as if it were not installed
              "from pipeline.runconfig import load_run_config\n"
              "load_run_config('imagenet-c', [{'cluster': {'kind': 'slurm', 'jobqueue': {'cores': 1, 'memory': '1GB'}}}])")
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "needs dask-jobqueue, which is not installed" in run.stderr


def test_importing_dask_jobqueue_keeps_the_runs_ctrl_c_handler():
    """dask_jobqueue replaces SIGINT's handler with sys.exit() on import (Ctrl-C exited 0)."""
    script = ("import signal\n"
              "def mine(*_): pass\n"
              "signal.signal(signal.SIGINT, mine)\n"
              "from pipeline.cluster import import_jobqueue\n"
              "import_jobqueue()\n"
              "print(signal.getsignal(signal.SIGINT) is mine)")
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "True", run.stderr
