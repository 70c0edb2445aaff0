"""The Dask client a run uses: a local cluster of worker processes (default), an existing
scheduler, or SLURM / PBS through dask-jobqueue."""
from __future__ import annotations

import contextlib
import importlib.util
import os
import signal

from distributed import WorkerPlugin

from corruptions.runtime import SINGLE_THREADED

# Dask's statistical profiler walks each task thread's stack every 10 ms: a fifth of a run's
# CPU for a profile nobody reads here (set for local clusters and exported to batch jobs)
NO_PROFILER = {"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}


class WorkerSetup(WorkerPlugin):
    """Registered by the engine on every run's client, so it runs in every worker, whatever
    started it (local, a scheduler address, batch jobs) and whenever it joins:
    single-threaded BLAS / OpenMP / OpenCV / numba, allocator kept for reuse."""
    name = "imagenet-c-worker-setup"

    def setup(self, worker):
        from corruptions.runtime import producer_process
        producer_process()
        try:  # Ctrl-C at the terminal reaches the whole process group: the client handles it
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the worker's main thread
            pass


def jobqueue_arguments(cluster: dict) -> dict:
    """The run's dask-jobqueue arguments, with the thread limits exported in every job script
    (so they hold before the worker imports its libraries)."""
    arguments = dict(cluster["jobqueue"])
    exports = [f"export {name}={value}" for name, value in {**SINGLE_THREADED, **NO_PROFILER}.items()]
    arguments["job_script_prologue"] = [*exports, *arguments.get("job_script_prologue", [])]
    return arguments


@contextlib.contextmanager
def open_client(cluster: dict):
    """Yield a connected ``distributed.Client`` for the run's ``cluster`` settings."""
    import dask
    from distributed import Client, LocalCluster

    kind = cluster["kind"]
    with dask.config.set({"distributed.nanny.pre-spawn-environ": SINGLE_THREADED,
                          "distributed.scheduler.worker-saturation": 1.0,
                          "distributed.worker.profile.enabled": False}):
        if kind == "address":
            with Client(cluster["address"], timeout="10s") as client:
                yield client
            return
        if kind == "local":
            workers = cluster["workers"] or os.cpu_count() or 1
            dashboard = ":0" if importlib.util.find_spec("bokeh") else None
            manager = LocalCluster(n_workers=workers, threads_per_worker=cluster["threads_per_worker"],
                                   processes=True, memory_limit=cluster["memory_limit"],
                                   dashboard_address=dashboard, silence_logs=50)
        else:
            try:
                import dask_jobqueue
            except ImportError as exc:
                raise RuntimeError("SLURM / PBS clusters need dask-jobqueue: pip install dask-jobqueue") from exc
            factory = dask_jobqueue.SLURMCluster if kind == "slurm" else dask_jobqueue.PBSCluster
            manager = factory(**jobqueue_arguments(cluster))
            manager.scale(jobs=cluster["jobs"])
        with manager, Client(manager) as client:
            yield client
