"""A real one-node SLURM for the cluster tests: Debian's munged, slurmctld and slurmd (installed by
``make test``), started by pid in a temporary folder with their own key, socket, ports, state and
logs, and stopped by pid. This machine is the one node; no cgroups (process tracking by
``/proc``), no accounting. ``SLURM_CONF`` is set in this process while it runs, so ``sbatch`` and
``squeue`` (dask-jobqueue's, the CLI's) reach it."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

PARTITION = "cpu"
DAEMONS = ("munged", "slurmctld", "slurmd")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} within {timeout:.0f} s")


class Slurm:
    def __init__(self, folder: Path):
        self.folder = folder
        self.node = socket.gethostname().split(".")[0]
        self.conf = folder / "slurm.conf"
        self.pids: dict[str, Path] = {name: folder / f"{name}.pid" for name in DAEMONS}
        self.previous_conf = os.environ.get("SLURM_CONF")
        self.previous_path = os.environ.get("PATH", "")

    def write_config(self) -> None:
        for sub in ("state", "spool", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        f = self.folder
        self.conf.write_text(f"""\
ClusterName=imagenetc
SlurmctldHost={self.node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={f / 'munge.socket'}
CredType=cred/munge
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
StateSaveLocation={f / 'state'}
SlurmdSpoolDir={f / 'spool'}
SlurmctldPidFile={self.pids['slurmctld']}
SlurmdPidFile={self.pids['slurmd']}
SlurmctldLogFile={f / 'log' / 'slurmctld.log'}
SlurmdLogFile={f / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
KillWait=5
OverTimeLimit=0
InactiveLimit=0
MinJobAge=2
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} RealMemory=4000 State=UNKNOWN
PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")

    def start(self) -> None:
        os.environ["PATH"] = os.pathsep.join([self.previous_path, "/usr/sbin", "/sbin"])  # Debian puts the daemons there
        missing = [name for name in (*DAEMONS, "mungekey", "sbatch", "squeue", "scancel") if not shutil.which(name)]
        if missing:
            pytest.fail(f"SLURM is not installed ({', '.join(missing)} missing): `make test` installs it with apt-get")
        self.write_config()
        key = self.folder / "munge.key"
        subprocess.run(["mungekey", "--create", "--keyfile", str(key), "--force"], check=True, timeout=30,
                       capture_output=True)
        key.chmod(0o600)
        f = self.folder
        subprocess.run(["munged", "--force", f"--socket={f / 'munge.socket'}", f"--key-file={key}",
                        f"--pid-file={self.pids['munged']}", f"--log-file={f / 'log' / 'munged.log'}",
                        f"--seed-file={f / 'munge.seed'}"], check=True, timeout=30, capture_output=True)
        os.environ["SLURM_CONF"] = str(self.conf)
        subprocess.run(["slurmctld", "-f", str(self.conf)], check=True, timeout=30, capture_output=True)
        subprocess.run(["slurmd", "-f", str(self.conf), "-N", self.node], check=True, timeout=30, capture_output=True)
        _wait(lambda: self.node_state() == "idle", 60, f"the SLURM node did not become idle ({self.logs()})")

    def node_state(self) -> str:
        run = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=30)
        return run.stdout.strip()

    def jobs(self) -> list[tuple[str, str, str]]:
        """(id, name, state) of every job in the queue."""
        run = subprocess.run(["squeue", "-h", "-o", "%i|%j|%T"], capture_output=True, text=True, timeout=30)
        return [tuple(line.split("|")) for line in run.stdout.splitlines() if line.count("|") == 2]

    def cancel_all(self) -> None:
        subprocess.run(["scancel", "--full", "-u", "root"], capture_output=True, timeout=30)

    def wait_until_no_jobs(self, timeout: float = 60) -> None:
        _wait(lambda: not self.jobs(), timeout, "jobs still queued or running")

    def logs(self) -> str:
        return " | ".join((self.folder / "log" / f"{name}.log").read_text(errors="replace")[-400:]
                          for name in DAEMONS if (self.folder / "log" / f"{name}.log").exists())

    def stop(self) -> None:
        self.cancel_all()
        for name in reversed(DAEMONS):
            path = self.pids[name]
            try:
                pid = int(path.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError, IndexError):
                continue
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        os.environ["PATH"] = self.previous_path
        if self.previous_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = self.previous_conf
