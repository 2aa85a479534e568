"""A throwaway single-node SLURM cluster (Debian ``slurm-wlm`` + ``munge``) for tests, everything under one folder.

    with SingleNodeSlurm(tmp_dir) as cluster:        # munged, slurmctld, slurmd started; SLURM_CONF set by env()
        subprocess.run(["sbatch", ...], env=cluster.env())

    python tests/single_node_slurm.py DIR             # the same from a shell, until Ctrl-C

Nothing outside ``tmp_dir`` is touched (no ``/etc/slurm``, no ``/etc/munge``, no system services): a fresh munge key,
``munged`` on its own socket, a generated ``slurm.conf`` (this host's name, free ports, no cgroups:
``proctrack/linuxproc`` and ``task/none``, ``SlurmdParameters=config_overrides`` so the node may declare what the
test needs rather than what the hardware has, state and spool folders under ``tmp_dir``). The daemons run in the
foreground as children of the test and are stopped (SIGTERM, then SIGKILL) when the block ends. Any step that does not
work raises :class:`SlurmStartError` with the daemon's log tail, so a test using it fails with the reason.
The README's "SLURM on one machine" section lists the same steps for doing it by hand.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from typing import Dict, List, Optional

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "sinfo", "sacct")


class SlurmStartError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _which(name: str) -> str:
    for folder in (os.environ.get("PATH", "") + ":/usr/sbin:/sbin").split(":"):
        path = os.path.join(folder, name)
        if folder and os.access(path, os.X_OK):
            return path
    raise SlurmStartError(f"{name} not found: install the Debian packages slurm-wlm and munge "
                          "(scripts/setup_env.sh does)")


def slurm_conf(*, host: str, user: str, state_dir: str, munge_socket: str, ctld_port: int, slurmd_port: int,
               cpus: int, memory_mb: int) -> str:
    """The text of a ``slurm.conf`` for one node ``host`` that is controller and compute node at once."""
    return f"""\
ClusterName=sistest
SlurmctldHost={host}
SlurmUser={user}
SlurmdUser={user}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={state_dir}/ctld
SlurmdSpoolDir={state_dir}/spool
SlurmctldPidFile={state_dir}/slurmctld.pid
SlurmdPidFile={state_dir}/slurmd.pid
SlurmctldLogFile={state_dir}/slurmctld.log
SlurmdLogFile={state_dir}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups: plain process tracking, no task binding, no accounting daemon
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""


class SingleNodeSlurm:
    """munged + slurmctld + slurmd for this host, configured and kept under ``base_dir``."""

    def __init__(self, base_dir: str, cpus: Optional[int] = None, memory_mb: int = 8192, start_timeout: float = 60.0):
        self.base_dir = os.path.abspath(base_dir)
        self.cpus, self.memory_mb, self.start_timeout = cpus or os.cpu_count(), memory_mb, start_timeout
        self.host = socket.gethostname().split(".")[0]
        self.conf = os.path.join(self.base_dir, "slurm.conf")
        self.munge_socket = os.path.join(self.base_dir, "munge", "munge.socket")
        self._procs: Dict[str, subprocess.Popen] = {}

    def env(self, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        """``base`` (default: os.environ) with ``SLURM_CONF`` pointing to this cluster."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = self.conf
        return env

    def log_tail(self, name: str, chars: int = 3000) -> str:
        """The ends of a daemon's log file and of its captured stdout/stderr (whichever exist and are not empty)."""
        tails = []
        for path in (os.path.join(self.base_dir, f"{name}.log"), os.path.join(self.base_dir, f"{name}.out")):
            if os.path.exists(path) and os.path.getsize(path):
                with open(path, errors="replace") as f:
                    tails.append(f"--- {path} (tail) ---\n" + f.read()[-chars:])
        return "\n".join(tails) or f"({name} wrote no log)"

    def _fail(self, what: str, logs=DAEMONS) -> None:
        tails = "\n".join(self.log_tail(n) for n in logs)
        self.stop()
        raise SlurmStartError(f"single-node SLURM did not start: {what}\n{tails}")

    def _start(self, name: str, args: List[str]) -> None:
        out = open(os.path.join(self.base_dir, f"{name}.out"), "w")
        self._procs[name] = subprocess.Popen([_which(name), *args], stdout=out, stderr=subprocess.STDOUT,
                                             env=self.env(), start_new_session=True)

    def _check_alive(self, name: str) -> None:
        proc = self._procs[name]
        if proc.poll() is not None:
            with open(os.path.join(self.base_dir, f"{name}.out"), errors="replace") as f:
                out = f.read()[-2000:]
            self._fail(f"{name} exited with status {proc.returncode}: {out.strip()}")

    def start(self) -> "SingleNodeSlurm":
        for tool in DAEMONS + CLIENTS:
            _which(tool)
        munge_dir = os.path.dirname(self.munge_socket)
        os.makedirs(munge_dir, mode=0o700, exist_ok=True)
        for sub in ("ctld", "spool"):
            os.makedirs(os.path.join(self.base_dir, sub), exist_ok=True)
        key = os.path.join(munge_dir, "munge.key")
        with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(secrets.token_bytes(128))
        user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
        with open(self.conf, "w") as f:
            f.write(slurm_conf(host=self.host, user=user, state_dir=self.base_dir, munge_socket=self.munge_socket,
                               ctld_port=_free_port(), slurmd_port=_free_port(), cpus=self.cpus,
                               memory_mb=self.memory_mb))
        self._start("munged", ["--foreground", "--force", f"--socket={self.munge_socket}", f"--key-file={key}",
                               f"--pid-file={munge_dir}/munged.pid", f"--seed-file={munge_dir}/munged.seed",
                               f"--log-file={self.base_dir}/munged.log"])
        self._wait(lambda: os.path.exists(self.munge_socket), "munged's socket", "munged")
        self._start("slurmctld", ["-D", "-i", "-f", self.conf])
        self._wait(lambda: self._quiet(["scontrol", "ping"]) and "UP" in self._out(["scontrol", "ping"]),
                   "slurmctld to answer `scontrol ping`", "slurmctld")
        self._start("slurmd", ["-D", "-f", self.conf])
        self._wait(lambda: self._out(["sinfo", "-h", "-N", "-o", "%T"]).strip() in ("idle", "mixed", "allocated"),
                   "the node to become idle in `sinfo`", "slurmd")
        return self

    def _out(self, cmd: List[str]) -> str:
        result = subprocess.run(cmd, capture_output=True, text=True, env=self.env(), timeout=30)
        return result.stdout

    def _quiet(self, cmd: List[str]) -> bool:
        return subprocess.run(cmd, capture_output=True, env=self.env(), timeout=30).returncode == 0

    def _wait(self, ready, what: str, daemon: str) -> None:
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            self._check_alive(daemon)
            if ready():
                return
            time.sleep(0.3)
        self._fail(f"timed out after {self.start_timeout:.0f} s waiting for {what}")

    def stop(self) -> None:
        """Cancel what is still queued, then stop the daemons in reverse start order."""
        if "slurmctld" in self._procs and self._procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--full", "-u", subprocess.run(["id", "-un"], capture_output=True,
                            text=True).stdout.strip()], env=self.env(), capture_output=True, timeout=30)
        for name in reversed(list(self._procs)):
            proc = self._procs.pop(name)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    def __enter__(self) -> "SingleNodeSlurm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: List[str]) -> int:
    """``python tests/single_node_slurm.py DIR [CPUS] [MEMORY_MB]``: start the cluster under DIR, keep it running
    until Ctrl-C (or SIGTERM), then stop it. Prints the ``SLURM_CONF`` to export in the shells that use it."""
    if not argv or argv[0] in ("-h", "--help"):
        print(main.__doc__)
        return 2
    os.makedirs(argv[0], exist_ok=True)
    cluster = SingleNodeSlurm(argv[0], cpus=int(argv[1]) if len(argv) > 1 else None,
                              memory_mb=int(argv[2]) if len(argv) > 2 else 8192)
    try:
        cluster.start()
    except SlurmStartError as exc:
        print(exc)
        return 1
    print(f"single-node SLURM is up ({cluster.host}, {cluster.cpus} CPUs, {cluster.memory_mb} MB).\n"
          f"In another shell:  export SLURM_CONF={cluster.conf}\nCtrl-C (or kill {os.getpid()}) stops it.", flush=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background (SIGINT ignored)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while all(p.poll() is None for p in cluster._procs.values()):
            time.sleep(1)
        print("a daemon exited:\n" + "\n".join(cluster.log_tail(n) for n in DAEMONS))
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
