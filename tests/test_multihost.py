"""Ranks on two hosts: two network namespaces joined by a veth pair, one MPICH hydra job across both.

Host A and host B are network namespaces with host names of their own (`unshare --uts`) and
their own IPC namespaces (without one, UCX believes the ranks share a node and uses shared
memory between them). The only link is a veth pair with addresses in 10.231.0.0/16, inside the
namespaces; nothing is routed outside. hydra runs in A with `-launcher ssh -launcher-exec` a
small script that starts its proxy in B, as ssh would on a real cluster. Needs root (to create
namespaces), `ip`, `unshare` and MPICH's hydra; skipped with the reason elsewhere.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import time

import h5py
import numpy as np
import pytest

from conftest import MPI_IMPLEMENTATION, MPIEXEC, asyncopt_command, attrs, read, sets, wait_for_snapshots

SCALE = 0.01  # workers.compute_scale: worker i computes a gradient in SCALE*sqrt(i+1) s


def missing_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        return "needs iproute2's `ip` and util-linux's `unshare`"
    if MPI_IMPLEMENTATION != "mpich":
        return f"launches MPICH's hydra with an ssh-style launcher; this venv's MPI is {MPI_IMPLEMENTATION}"
    probe = subprocess.run(["ip", "netns", "add", f"aoprobe{os.getpid()}"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", f"aoprobe{os.getpid()}"], capture_output=True)
    return None


pytestmark = [pytest.mark.mpi, pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))]

# The ssh stand-in hydra calls as `SCRIPT [-x] HOST COMMAND`: run COMMAND in host B's namespaces.
LAUNCHER = """#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in -*) shift;; *) break;; esac; done
shift
exec ip netns exec {netns} unshare --uts --ipc sh -c 'hostname {hostname}; exec sh -c "$0"' "$*"
"""


class TwoHosts:
    """Two namespaces joined by a veth pair; `command` starts one hydra job with ranks on both."""

    def __init__(self, folder):
        tag = f"ao{os.getpid() % 100000}"
        self.netns = (f"{tag}a", f"{tag}b")
        self.hostnames = (f"{tag}-host-a", f"{tag}-host-b")
        subnet = 1 + os.getpid() % 250
        self.addresses = (f"10.231.{subnet}.1", f"10.231.{subnet}.2")
        self.launcher = folder / "enter-host-b.sh"
        self.launcher.write_text(LAUNCHER.format(netns=self.netns[1], hostname=self.hostnames[1]))
        self.launcher.chmod(self.launcher.stat().st_mode | stat.S_IXUSR)

    def create(self) -> None:
        a, b = self.netns
        steps = [
            ["ip", "netns", "add", a], ["ip", "netns", "add", b],
            ["ip", "link", "add", "veth0", "netns", a, "type", "veth", "peer", "name", "veth1", "netns", b],
            ["ip", "-n", a, "addr", "add", f"{self.addresses[0]}/24", "dev", "veth0"],
            ["ip", "-n", b, "addr", "add", f"{self.addresses[1]}/24", "dev", "veth1"],
        ]
        for netns, device in ((a, "veth0"), (b, "veth1")):
            steps += [["ip", "-n", netns, "link", "set", "lo", "up"], ["ip", "-n", netns, "link", "set", device, "up"]]
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, timeout=30)
        self.wait_for_carrier()

    def wait_for_carrier(self, timeout: float = 30.0) -> None:
        """Wait until both ends' operational state is UP. The kernel sets it a moment after the link
        comes up (later still when links changed in the last second), and until then UCX skips the
        device as not running: host B would offer only its loopback, which host A cannot reach,
        and MPI_Init fails with "Destination is unreachable"."""
        deadline = time.monotonic() + timeout
        for netns, device in zip(self.netns, ("veth0", "veth1")):
            while " state UP " not in subprocess.run(["ip", "-n", netns, "link", "show", device],
                                                     capture_output=True, text=True, timeout=30).stdout:
                assert time.monotonic() < deadline, f"{device} in {netns} is not up after {timeout} s"
                time.sleep(0.05)

    def remove(self) -> None:
        for netns in self.netns:  # deleting a namespace deletes its end of the veth pair, and so both
            subprocess.run(["ip", "netns", "delete", netns], capture_output=True, timeout=30)

    def command(self, ranks_a: int, ranks_b: int, args: list[str]) -> list[str]:
        """hydra in host A: ranks 0..ranks_a-1 on A, the next ranks_b on B."""
        hosts = f"{self.addresses[0]}:{ranks_a}" + (f",{self.addresses[1]}:{ranks_b}" if ranks_b else "")
        mpiexec = [MPIEXEC, "-launcher", "ssh", "-launcher-exec", str(self.launcher), "-localhost", self.addresses[0],
                   "-hosts", hosts, "-n", str(ranks_a + ranks_b)] + asyncopt_command() + args
        # exec keeps one process: the pid the test signals is mpiexec's.
        return ["ip", "netns", "exec", self.netns[0], "unshare", "--uts", "--ipc", "sh", "-c",
                f'hostname {self.hostnames[0]}; exec "$@"', "sh", *mpiexec]


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory):
    hosts = TwoHosts(tmp_path_factory.mktemp("hosts"))
    try:
        hosts.create()
        yield hosts
    finally:
        hosts.remove()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(netns in listed for netns in hosts.netns), "a namespace was left behind"


def run_args(path, stop: dict, snapshot_every: float = 0.5) -> list[str]:
    return ["run", "--method", "async_sgd", "--output", str(path)] + sets(
        problem={"name": "quadratic", "dim": 20, "noise": 0.05}, method={"lr": 0.2},
        workers={"compute": "sqrt", "compute_scale": SCALE}, stop=stop,
        output={"snapshot_every": snapshot_every},
    )


# A set number of gradients (under 2 s of the timing model on 3 workers), not a wall time: on a loaded machine a
# few seconds may deliver too few for the shares to mean anything. The time is a backstop only.
COUNTED = {"gradients": 400, "time": 60.0}
UNTIL_STOPPED = {"time": 120.0}  # ended by the test (a signal, a killed rank)


HYDRA_PROXY_ASSERT = "assert (!closed) failed"


def start(two_hosts: TwoHosts, ranks_a: int, ranks_b: int, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(two_hosts.command(ranks_a, ranks_b, args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(process: subprocess.Popen, timeout: float) -> tuple[int, str]:
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"the job did not end within {timeout} s")
    return process.returncode, stderr


def efficiency(path) -> tuple[float, np.ndarray]:
    """Gradients received over what the timing model allows in the run's time; and gradients per worker."""
    data = read(path, "workers/grads", "snapshots/time")
    grads = data["workers/grads"]
    duration = float(data["snapshots/time"][-1])
    per_gradient = SCALE * np.sqrt(np.arange(1, len(grads) + 1))
    return float(grads.sum() / (duration / per_gradient).sum()), grads


def test_remote_workers_contribute_and_the_file_records_both_hosts(two_hosts, tmp_path):
    path = tmp_path / "two.h5"
    code, stderr = finish(start(two_hosts, 2, 2, run_args(path, COUNTED)), timeout=120)
    assert code == 0, stderr
    found = attrs(path)
    assert found["status"] == "completed"
    assert sorted(found["hosts"]) == sorted(two_hosts.hostnames)
    two_host_efficiency, grads = efficiency(path)
    # Workers 1 and 2 (ranks 2 and 3) ran in host B; each sent a share near its speed's.
    events = read(path, "events/worker")["events/worker"]
    assert all((events == worker).any() for worker in (1, 2))
    expected = grads.sum() * (1 / np.sqrt([2, 3])) / (1 / np.sqrt(np.arange(1, 4))).sum()
    assert (grads[1:] > 0.3 * expected).all(), grads

    one = tmp_path / "one.h5"
    code, stderr = finish(start(two_hosts, 4, 0, run_args(one, COUNTED)), timeout=120)
    assert code == 0, stderr
    one_host_efficiency, _ = efficiency(one)
    print(f"\ntwo hosts: gradients per worker {grads.tolist()} (remote: workers 1, 2), "
          f"efficiency {two_host_efficiency:.3f}; all ranks on one host: {one_host_efficiency:.3f}")
    assert two_host_efficiency > 0.5 * one_host_efficiency


def test_sigkill_of_a_remote_rank_is_named_in_the_file(two_hosts, tmp_path):
    path = tmp_path / "killed.h5"
    process = start(two_hosts, 2, 1, run_args(path, UNTIL_STOPPED, snapshot_every=0.1))
    wait_for_snapshots(path, seconds=90)
    victim = int(attrs(path)["pids"][2])  # rank 2 runs in host B (same pid namespace, so the pid is ours)
    os.kill(victim, signal.SIGKILL)
    code, stderr = finish(process, timeout=60)
    assert code != 0
    deadline = time.monotonic() + 30  # the watchdog repairs the file after the job ended
    while time.monotonic() < deadline:
        try:
            with h5py.File(path, "r") as handle:
                reason = handle.attrs["stop_reason"]
                status = handle.attrs["status"]
            break
        except OSError:
            time.sleep(0.2)
    else:
        pytest.fail("the watchdog did not repair the file")
    print(f"\nstop_reason: {reason}")
    assert status == "failed"
    # rank 2 by name, or honestly: host B may have ended first. Never only ranks of host A.
    assert f"rank 2 (pid {victim}) on {two_hosts.hostnames[1]}" in reason or two_hosts.hostnames[1] in reason, reason
    assert not list(tmp_path.glob("killed.h5.ended-*")), "the other host's report was left behind"


@pytest.mark.parametrize("signal_number", [signal.SIGUSR1, signal.SIGTERM], ids=["SIGUSR1", "SIGTERM"])
def test_a_stop_signal_to_mpiexec_ends_the_job_with_the_documented_status(two_hosts, tmp_path, signal_number):
    for attempt in range(2):
        path = tmp_path / f"stopped-{attempt}.h5"
        process = start(two_hosts, 2, 1, run_args(path, UNTIL_STOPPED, snapshot_every=0.1))
        wait_for_snapshots(path, seconds=90)
        process.send_signal(signal_number)
        code, stderr = finish(process, timeout=60)
        # hydra's proxy on the second host sometimes fails its own assertion while it forwards the
        # signal (a fault inside MPICH's launcher, about 1 run in 20 here, not in asyncopt): once more.
        if HYDRA_PROXY_ASSERT not in stderr:
            break
    assert code == (0 if signal_number == signal.SIGUSR1 else 128 + signal_number), stderr
    with h5py.File(path, "r") as handle:
        assert handle.attrs["status"] == "stopped"
        assert signal.Signals(signal_number).name in handle.attrs["stop_reason"]
