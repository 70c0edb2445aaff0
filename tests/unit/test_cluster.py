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
