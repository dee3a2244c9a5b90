"""A real Slurm for the tests: munge, slurmctld and two slurmd nodes started here as root.

Both nodes run on this machine: one slurmd per node (`slurmd -N NAME`), each with its own
port, spool folder, pid file and log (Debian's slurm-wlm 22.05 accepts this for nodes that
share a NodeHostname). Their CPU counts are overridden in slurm.conf so that several MPI
ranks fit on a small machine. A requeued job may start again after cred_expire (10 s here,
Slurm's default is 120 s) and the scheduler looks at pending jobs every second (default 60 s),
so a test can requeue a job and see it start again within seconds. Each test session gets its
own ports, state folder and logs, and shuts it down.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scontrol", "sinfo")


def missing_reason() -> str | None:
    """Why a Slurm cannot be started here, or None."""
    if os.geteuid() != 0:
        return "a test Slurm needs root to start munged, slurmctld and slurmd"
    absent = [name for name in BINARIES if shutil.which(name, path="/usr/sbin:/usr/bin:" + os.environ["PATH"]) is None]
    if absent:
        return f"slurm-wlm and munge are not installed ({', '.join(absent)} missing): apt-get install slurm-wlm munge"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, **kwargs)


def ensure_munge() -> None:
    if _run("munge", "-n").returncode == 0:
        return
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        _run("/usr/sbin/mungekey", "-c", "-f")
        shutil.chown(key, "munge", "munge")
    for folder in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
        os.makedirs(folder, exist_ok=True)
        shutil.chown(folder, "munge", "munge")
    started = _run("runuser", "-u", "munge", "--", "/usr/sbin/munged")
    if started.returncode != 0:
        raise RuntimeError(f"munged did not start: {started.stderr.strip()}")


class SlurmCluster:
    def __init__(self, folder: Path, cpus: int = 32):
        self.folder = folder
        self.host = socket.gethostname().split(".")[0]
        self.nodes = (self.host, f"{self.host}-node2")  # the second slurmd listens on a port of its own
        self.conf = folder / "slurm.conf"
        for name in ("state", "spool"):
            (folder / name).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(f"""ClusterName=asyncopt-test
SlurmctldHost={self.host}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool-%n
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd-%n.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdParameters=config_overrides
MpiDefault=none
AuthInfo=cred_expire=10
SchedulerParameters=sched_interval=1
NodeName={self.nodes[0]} NodeHostname={self.host} CPUs={cpus} State=UNKNOWN
NodeName={self.nodes[1]} NodeHostname={self.host} Port={_free_port()} CPUs={cpus} State=UNKNOWN
PartitionName=test Nodes={",".join(self.nodes)} Default=YES MaxTime=INFINITE State=UP
""")
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> None:
        ensure_munge()
        daemons = [["/usr/sbin/slurmctld"]] + [["/usr/sbin/slurmd", "-N", node] for node in self.nodes]
        for daemon in daemons:
            started = _run(*daemon, "-f", str(self.conf), env=self.env)
            if started.returncode != 0:
                raise RuntimeError(f"{' '.join(daemon)} did not start: {started.stderr.strip()} (log: {self.folder})")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = _run("sinfo", "-h", "-N", "-o", "%t", env=self.env).stdout.split()
            if len(states) == len(self.nodes) and all(state in ("idle", "mix", "alloc") for state in states):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the Slurm nodes did not become idle; logs in {self.folder}")

    def steps_on(self, node: str) -> str:
        """What the node's slurmd log says it launched ("launch task StepId=JOB.STEP ...")."""
        log = self.folder / f"slurmd-{node}.log"
        return log.read_text() if log.exists() else ""

    def stop(self) -> None:
        _run("scontrol", "shutdown", env=self.env)
        for name in ("slurmctld.pid", *(f"slurmd-{node}.pid" for node in self.nodes)):
            pid_file = self.folder / name
            deadline = time.monotonic() + 10
            while pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.2)

    def submit(self, *arguments: str, env: dict | None = None) -> str:
        done = _run("sbatch", "--parsable", *arguments, env={**self.env, **(env or {})})
        if done.returncode != 0:
            raise RuntimeError(f"sbatch failed: {done.stderr.strip()}")
        return done.stdout.strip().split(";")[0]

    def field(self, job: str, name: str) -> str:
        """A field of `scontrol show job` (the first task's, for an array), or "UNKNOWN"."""
        shown = _run("scontrol", "show", "job", job, env=self.env).stdout
        values = [field.split("=", 1)[1] for field in shown.split() if field.startswith(f"{name}=")]
        return values[0] if values else "UNKNOWN"

    def state(self, job: str) -> str:
        return self.field(job, "JobState")

    def restarts(self, job: str) -> int:
        """How many times Slurm has requeued the job (preemption, `scontrol requeue`)."""
        return int(self.field(job, "Restarts"))

    def wait(self, job: str, timeout: float = 180) -> str:
        """Wait for a job (every task of an array) to end; returns its final state."""
        deadline = time.monotonic() + timeout
        shown = ""
        while time.monotonic() < deadline:
            shown = _run("scontrol", "show", "job", job, env=self.env).stdout
            states = [field.split("=", 1)[1] for field in shown.split() if field.startswith("JobState=")]
            if states and all(state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL") for state in states):
                return "COMPLETED" if all(state == "COMPLETED" for state in states) else ",".join(states)
            time.sleep(0.5)
        # Where it stuck (pending for nodes, or running), and no job left to hold the nodes of the next test.
        where = " ".join(field for field in shown.split() if field.startswith(("JobState=", "Reason=", "NodeList=")))
        _run("scancel", job, env=self.env)
        raise TimeoutError(f"Slurm job {job} did not end within {timeout} s ({where}); cancelled")

    def signal_batch(self, job: str, name: str) -> None:
        _run("scancel", f"--signal={name}", "--batch", job, env=self.env)
