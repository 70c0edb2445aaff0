"""The Dask client a run uses: a local cluster of worker processes (default), an existing
scheduler, or SLURM / PBS through dask-jobqueue; and the watch that stops a run that has no
worker left, saying what the batch system says."""
from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

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


BATCH_KINDS = ("slurm", "pbs")
# what a run sets itself: the job names and the job logs' folder (``jobqueue_arguments``)
RUN_SET = ("job_name", "log_directory")
REQUIRED = ("cores", "memory")


def import_jobqueue():
    """dask_jobqueue, imported without its side effect: importing it replaces the SIGINT handler
    with ``sys.exit()`` (Ctrl-C would exit 0 and lose the "interrupted" line)."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        import dask_jobqueue
    finally:
        if handler is not None:
            signal.signal(signal.SIGINT, handler)
    return dask_jobqueue


def jobqueue_keys(kind: str) -> list[str]:
    """The arguments ``dask_jobqueue.SLURMCluster`` / ``PBSCluster`` take: its cluster's, its job
    class's and the common job's, less the ones a run sets or that are not settings."""
    jobqueue = import_jobqueue()
    cluster = jobqueue.SLURMCluster if kind == "slurm" else jobqueue.PBSCluster
    names = set()
    for function in (cluster.__init__, cluster.job_cls.__init__, jobqueue.core.Job.__init__,
                     jobqueue.core.JobQueueCluster.__init__):
        names |= {n for n, p in inspect.signature(function).parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD}
    return sorted(names - {"self", "scheduler", "config_name", "job_cls", "loop", "asynchronous", "n_workers",
                           "security", "name", *RUN_SET})


def check_cluster(cluster: dict, given: set[str], where: str) -> str | None:
    """The first mistake in a run config's ``cluster`` section, as an error message, or None:
    keys that do not apply to its kind (``given``: the keys the config sets), and for SLURM / PBS
    dask-jobqueue itself, unknown ``jobqueue`` keys and the required ones."""
    kind = cluster["kind"]
    applies = {"local": {"kind", "workers", "threads_per_worker", "memory_limit", "no_worker_timeout", "worker_ttl"},
               "address": {"kind", "address", "no_worker_timeout"}}.get(
        kind, {"kind", "jobs", "jobqueue", "no_worker_timeout", "worker_ttl"})
    stray = sorted(given - applies)
    if stray:
        return (f"{where}: key 'cluster.{stray[0]}' does not apply to cluster kind {kind!r}; its keys: "
                f"{', '.join(sorted(applies))}")
    if kind not in BATCH_KINDS:
        return None
    try:
        keys = jobqueue_keys(kind)
    except ImportError:
        return (f"{where}: key 'cluster.kind': {kind!r} needs dask-jobqueue, which is not installed: "
                "pip install -e '.[cluster]'")
    jobqueue = cluster["jobqueue"]
    unknown = sorted(k for k in jobqueue if k not in keys)
    if unknown:
        return (f"{where}: key 'cluster.jobqueue.{unknown[0]}' is not a dask-jobqueue "
                f"{'SLURMCluster' if kind == 'slurm' else 'PBSCluster'} argument; allowed: {', '.join(keys)}")
    missing = [k for k in REQUIRED if jobqueue.get(k) in (None, "")]
    if missing:
        return (f"{where}: key 'cluster.jobqueue.{missing[0]}' is required for kind {kind!r} (each job's "
                f"{'cores' if missing[0] == 'cores' else 'memory, such as 16GB'})")
    interface = jobqueue.get("interface")
    if interface is not None:
        import psutil
        if interface not in psutil.net_if_addrs():
            return (f"{where}: key 'cluster.jobqueue.interface': no network interface {interface!r} on this "
                    f"machine (the scheduler listens on it); here: {', '.join(sorted(psutil.net_if_addrs()))}")
    return None


def seconds(walltime) -> int | None:
    """SLURM / PBS walltime ([[D-]HH:]MM:SS, or minutes) in seconds; None if not one."""
    match = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+)(?::(\d+))?", str(walltime).strip())
    if not match:
        return None
    days, first, second, third = match.groups()
    if third is None and first is None:  # "MM"
        return int(second) * 60
    if third is None:  # "MM:SS" (SLURM's two-field form)
        return int(first) * 60 + int(second)
    return int(days or 0) * 86400 + int(first) * 3600 + int(second) * 60 + int(third)


def jobqueue_arguments(cluster: dict, job_name: str = "imagenet-c", logs: str | None = None) -> dict:
    """The run's dask-jobqueue arguments: the thread limits exported in every job script (so they
    hold before the worker imports its libraries), the run's job name, its job logs' folder, a
    free dashboard port, and workers that leave on their own a little before the walltime ends
    (``--lifetime``, staggered), so that a job's end cuts as little work as possible."""
    arguments = dict(cluster["jobqueue"])
    exports = [f"export {name}={value}" for name, value in {**SINGLE_THREADED, **NO_PROFILER}.items()]
    arguments["job_script_prologue"] = [*exports, *arguments.get("job_script_prologue", [])]
    arguments["job_name"] = job_name
    if logs is not None:
        arguments["log_directory"] = logs
    arguments["scheduler_options"] = {"dashboard_address": ":0", **(arguments.get("scheduler_options") or {})}
    limit = seconds(arguments["walltime"]) if arguments.get("walltime") else None
    extra = list(arguments.get("worker_extra_args") or [])
    if limit and "--lifetime" not in extra:
        margin = min(300, max(limit // 10, 5))
        extra += ["--lifetime", f"{limit - margin}s", "--lifetime-stagger", f"{max(margin // 4, 1)}s"]
    arguments["worker_extra_args"] = extra
    return arguments


def test_submission(manager, kind: str) -> str | None:
    """SLURM's own verdict on the job script before any job is queued (``sbatch --test-only``): an
    unknown partition or account, a walltime or memory beyond the limits. None when it would be
    accepted (or for PBS, which has no such check)."""
    if kind != "slurm":
        return None
    script = manager.job_script()
    try:
        run = subprocess.run(["sbatch", "--test-only"], input=script, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sbatch cannot be run here: {exc}"
    if run.returncode != 0:
        return (run.stderr.strip() or run.stdout.strip()).splitlines()[-1]
    return None


class ClusterError(RuntimeError):
    """The cluster cannot run the work: no worker, jobs that do not start, a refused job script."""


@contextlib.contextmanager
def open_client(cluster: dict, job_name: str = "imagenet-c", logs: str | None = None):
    """Yield a connected ``distributed.Client`` for the run's ``cluster`` settings. SLURM / PBS:
    ``cluster["jobs"]`` jobs, kept at that number (a job that ends, by its walltime or by
    ``scancel``, is replaced), named ``job_name``, logging to ``logs``."""
    import dask
    from distributed import Client, LocalCluster

    kind = cluster["kind"]
    with dask.config.set({"distributed.nanny.pre-spawn-environ": SINGLE_THREADED,
                          "distributed.scheduler.worker-saturation": 1.0,
                          "distributed.worker.profile.enabled": False,
                          # a worker that stops answering (SIGSTOP, a hung node) is dropped and its
                          # work given to others after this long, not Dask's five minutes
                          "distributed.scheduler.worker-ttl": f"{cluster.get('worker_ttl', 60)}s"}):
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
            jobqueue = import_jobqueue()
            factory = jobqueue.SLURMCluster if kind == "slurm" else jobqueue.PBSCluster
            if logs is not None:
                from .files import make_folders
                make_folders(Path(logs).parent, Path(logs).name)  # never through a link planted as OUT/logs
            manager = factory(**jobqueue_arguments(cluster, job_name, logs))
            refused = test_submission(manager, kind)
            if refused:
                manager.close()
                raise ClusterError(f"the batch system refuses the job script: {refused}")
            manager.adapt(minimum_jobs=cluster["jobs"], maximum_jobs=cluster["jobs"])
        with manager, Client(manager) as client:
            yield client


def job_states(manager) -> dict[str, tuple[str, str]]:
    """SLURM: {job id: (state, reason)} of the run's queued and running jobs (``squeue``)."""
    ids = [str(job.job_id) for job in getattr(manager, "workers", {}).values() if getattr(job, "job_id", None)]
    if not ids or type(manager).__name__ != "SLURMCluster":
        return {}
    try:
        run = subprocess.run(["squeue", "-h", "-j", ",".join(ids), "-o", "%i|%T|%r"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    states = {}
    for line in run.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1], parts[2])
    return states


def last_log_lines(logs: str | None, count: int = 5) -> str:
    """The last lines of the newest job log in ``logs`` (where a job that never started a worker
    says why: a missing python, a module that does not import)."""
    if not logs or not Path(logs).is_dir():
        return ""
    files = sorted((p for p in Path(logs).iterdir() if p.is_file() and p.stat().st_size),
                   key=lambda p: p.stat().st_mtime)
    if not files:
        return ""
    lines = files[-1].read_text(errors="replace").splitlines()[-count:]
    return f"{files[-1].name} ends: " + " | ".join(line.strip() for line in lines)


class WorkerWatch:
    """Follows whether the run has workers. While it has none: one line a minute saying what the
    batch system says (jobs pending and why); after ``timeout`` seconds without any,
    ``ClusterError`` with that and the newest job log's last lines. ``check`` is cheap to call
    often (it asks the scheduler at most once a second)."""

    def __init__(self, client, timeout: float, logs: str | None = None, say=None):
        self.client, self.timeout, self.logs, self.say = client, timeout, logs, say
        self.since: float | None = None
        self.asked = self.said = 0.0
        self.waiting = 0.0  # seconds spent without any worker, in all
        self.on_workers = None  # called when workers come (back) after a wait

    def workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def status(self) -> str:
        manager = getattr(self.client, "cluster", None)
        states = job_states(manager) if manager is not None else {}
        if not states:
            return ""
        pending = [reason for state, reason in states.values() if state == "PENDING"]
        running = sum(state == "RUNNING" for state, _ in states.values())
        reasons = ", ".join(sorted(set(pending)))
        return f"{len(pending)} jobs pending ({reasons}), {running} running" if pending else f"{running} jobs running"

    def check(self) -> None:
        now = time.monotonic()
        if now - self.asked < 1.0:
            return
        if self.since is not None:
            self.waiting += now - self.asked
        self.asked = now
        if self.workers():
            if self.since is not None and self.on_workers is not None:
                self.on_workers()
            self.since = None
            return
        if self.since is None:
            self.since, self.said = now, 0.0
        status = self.status()
        if self.say is not None and now - self.said >= 60 and now - self.since >= 5:
            self.said = now
            self.say(f"waiting for workers ({now - self.since:.0f} s){': ' + status if status else ''}")
        if now - self.since > self.timeout:
            detail = "; ".join(part for part in (status, last_log_lines(self.logs)) if part)
            raise ClusterError(f"no Dask worker has been connected for {self.timeout:.0f} s (cluster.no_worker_timeout)"
                               f"{': ' + detail if detail else ''}. Everything finished is on disk: fix the cause, "
                               "then re-run the same command to resume")


def wait_for(futures, watch: WorkerWatch | None, step: float = 0.5) -> None:
    """``distributed.wait(futures)`` that lets ``watch`` stop it while no worker is left."""
    from distributed import wait
    while True:
        try:
            wait(futures, timeout=step)
            return
        except TimeoutError:
            if watch is not None:
                watch.check()


def probe_write(folder: str, name: str, token: str) -> str:
    """(worker) Write ``token`` to ``folder/name``, a new file; the worker's host name."""
    path = Path(folder) / name
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token)
    return socket.gethostname()
