"""A throwaway single-node SLURM cluster on loopback, for testing profiles/slurm.

    python tests/slurm_cluster.py up STATE_DIR      # install if needed, start, print the env line
    python tests/slurm_cluster.py down STATE_DIR    # cancel jobs, stop the daemons by PID

Everything lives in STATE_DIR: a private munge key and socket, slurm.conf and
gres.conf, spool and state folders, logs, and the daemons' PIDs. Nothing under
/etc is touched, so clients find the cluster only through SLURM_CONF, which the
`env` mapping of a cluster sets, with STATE_DIR/bin (wrappers of the client
commands that set it again where the slurm-jobstep plugin drops it) first on PATH. The node pretends to have two GPUs: gres.conf
points at two character devices made with `mknod c 1 3` (/dev/null's numbers),
which is enough for SLURM to schedule `--gpus` and to set CUDA_VISIBLE_DEVICES.

No accounting daemon runs, so `sacct` fails: clients must ask `squeue` for job
states (MinJobAge keeps finished jobs visible to it for an hour). A TaskProlog
appends "<job id> <step id> <CUDA_VISIBLE_DEVICES>" for every task it starts to
STATE_DIR/task_env.log, so a test can see which devices each job was given.

Starting needs root (munged and slurmd run as root, packages come from apt);
where that is not possible `ClusterUnavailable` says why, and tests skip. Where
it should work but does not, `ClusterFailed` carries the daemons' logs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ["slurm-wlm", "munge"]
DAEMONS = ["munged", "slurmctld", "slurmd"]
CLIENTS = ["sbatch", "squeue", "scontrol", "scancel", "sinfo", "srun"]
PARTITION = "audiosae-test"
N_GPUS = 2
NODE_MEMORY_MB = 256_000


class ClusterUnavailable(RuntimeError):
    """This machine cannot run the test cluster: not root, or no apt-get (the message says which)."""


class ClusterFailed(RuntimeError):
    """The cluster should have come up here but did not (install or daemon failure; the message has the logs)."""


def _which(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for d in ("/usr/sbin", "/sbin") if (p := Path(d) / name).exists()), None)


def ensure_installed(timeout_s: float = 600) -> None:
    """Install slurm-wlm and munge with apt when they are missing; raise ClusterUnavailable if it cannot."""
    missing = [n for n in DAEMONS + CLIENTS if _which(n) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable(f"SLURM test cluster: {', '.join(missing)} missing and not root, "
                                 f"so cannot apt-get install {' '.join(PACKAGES)}")
    if shutil.which("apt-get") is None:
        raise ClusterUnavailable(f"SLURM test cluster: {', '.join(missing)} missing and no apt-get "
                                 f"to install {' '.join(PACKAGES)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]
    proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:  # a fresh machine has no package lists yet
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, text=True, timeout=timeout_s)
        proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise ClusterFailed(f"SLURM test cluster: `{' '.join(install)}` failed:\n{proc.stderr[-2000:]}")
    still = [n for n in DAEMONS + CLIENTS if _which(n) is None]
    if still:
        raise ClusterFailed(f"SLURM test cluster: {', '.join(still)} still missing after installing {PACKAGES}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ClusterUnavailable("SLURM test cluster: no MemTotal in /proc/meminfo")


class SlurmCluster:
    """One slurmctld, one slurmd and a private munged, all state in `state_dir`."""

    def __init__(self, state_dir: Path | str):
        self.state = Path(state_dir).resolve()
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.state / "slurm.conf"
        self.task_env_log = self.state / "task_env.log"
        self.pid_file = self.state / "pids.json"
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def env(self) -> dict[str, str]:
        """Variables a client (sbatch, squeue, Snakemake) needs to reach this cluster."""
        return {"SLURM_CONF": str(self.conf), "PATH": f"{self.state / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}

    @property
    def partition(self) -> str:
        return PARTITION

    # ---------------------------------------------------------------- configuration

    def _write_config(self) -> None:
        s = self.state
        for d in ("munge", "ctld", "spool", "log", "dev", "bin"):
            (s / d).mkdir(parents=True, exist_ok=True)
        os.chmod(s / "munge", 0o700)
        key = s / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        for i in range(N_GPUS):
            dev = s / "dev" / f"nvidia{i}"
            if not dev.exists():
                try:
                    os.mknod(dev, 0o666 | 0o020000, os.makedev(1, 3))  # S_IFCHR, /dev/null's numbers
                except PermissionError as err:
                    raise ClusterUnavailable(f"SLURM test cluster: cannot mknod {dev}: {err}") from err
        prolog = s / "task_prolog.sh"
        prolog.write_text("#!/bin/sh\n"
                          f'echo "$SLURM_JOB_ID ${{SLURM_STEP_ID:-batch}} ${{CUDA_VISIBLE_DEVICES:-none}}" '
                          f">> {self.task_env_log}\n")
        prolog.chmod(0o755)
        cpus = os.cpu_count() or 1
        # Memory is bookkeeping only here (task/none enforces nothing, config_overrides skips slurmd's check):
        # a cluster-sized figure lets the profile's per-rule mem_mb requests fit as they would on a real node.
        memory = max(_memory_mb(), NODE_MEMORY_MB)
        ctld_port, d_port = _free_port(), _free_port()
        self.conf.write_text(f"""\
# Generated by tests/slurm_cluster.py: a one-node cluster on loopback.
ClusterName=audiosae
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={s / 'munge' / 'munge.socket'}
StateSaveLocation={s / 'ctld'}
SlurmdSpoolDir={s / 'spool'}
SlurmctldPidFile={s / 'slurmctld.pid'}
SlurmdPidFile={s / 'slurmd.pid'}
SlurmctldLogFile={s / 'log' / 'slurmctld.log'}
SlurmdLogFile={s / 'log' / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={s / 'plugstack.conf'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
TaskProlog={prolog}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/builtin
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
InactiveLimit=0
KillWait=5
GresTypes=gpu
NodeName={self.node} NodeAddr=127.0.0.1 NodeHostname={self.node} CPUs={cpus} RealMemory={memory} Gres=gpu:{N_GPUS} State=UNKNOWN
PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")
        (s / "plugstack.conf").write_text("")
        # A real cluster's clients read /etc/slurm/slurm.conf; this one's find it through SLURM_CONF only,
        # and the slurm-jobstep plugin drops every SLURM_* variable before its `srun` inside a job.
        # So bin/ (first on PATH in `env`) holds wrappers that set it again.
        (s / "bin").mkdir(exist_ok=True)
        for name in CLIENTS + ["sacct"]:
            wrapper = s / "bin" / name
            wrapper.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec {_which(name)} "$@"\n')
            wrapper.chmod(0o755)
        (s / "gres.conf").write_text(
            "AutoDetect=off\n"
            f"NodeName={self.node} Name=gpu File={s / 'dev'}/nvidia[0-{N_GPUS - 1}]\n")

    # ---------------------------------------------------------------- life cycle

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.state / "log" / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env={**os.environ, **self.env}, start_new_session=True)
        log.close()
        self.pid_file.write_text(json.dumps({n: p.pid for n, p in self.procs.items()}))

    def _run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout,
                              env={**os.environ, **self.env})

    def start(self, timeout_s: float = 60) -> "SlurmCluster":
        if os.geteuid() != 0:
            raise ClusterUnavailable("SLURM test cluster: must run as root (munged and slurmd do)")
        ensure_installed()
        self.state.mkdir(parents=True, exist_ok=True)
        self._write_config()
        m = self.state / "munge"
        self._spawn("munged", [_which("munged"), "--foreground", "--force", f"--socket={m / 'munge.socket'}",
                               f"--key-file={m / 'munge.key'}", f"--pid-file={m / 'munged.pid'}",
                               f"--seed-file={m / 'munged.seed'}", f"--log-file={self.state / 'log' / 'munged.log'}"])
        self._wait(lambda: (m / "munge.socket").exists(), "munged's socket", 20)
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-f", str(self.conf)])
        self._wait(lambda: self._run("scontrol", "ping", check=False).stdout.count("UP") > 0, "slurmctld", timeout_s)
        self._spawn("slurmd", [_which("slurmd"), "-D", "-f", str(self.conf), "-N", self.node])

        def node_ready() -> bool:
            out = self._run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.strip()
            return out.startswith("idle") or out.startswith("mixed")

        self._wait(node_ready, "the node to become idle", timeout_s)
        return self

    def _wait(self, ready, what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    self.stop()
                    raise ClusterFailed(f"SLURM test cluster: {name} exited with {proc.returncode} "
                                             f"while waiting for {what}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        self.stop()
        raise ClusterFailed(f"SLURM test cluster: timed out after {timeout_s} s waiting for {what}:\n{self.logs()}")

    def logs(self, tail: int = 3000) -> str:
        parts = []
        for f in sorted((self.state / "log").glob("*")):
            parts.append(f"--- {f.name}\n{f.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    def stop(self, timeout_s: float = 15) -> None:
        """Cancel every job, then stop the daemons by PID (TERM, then KILL)."""
        pids = {n: p.pid for n, p in self.procs.items()}
        if not pids and self.pid_file.exists():  # stopping from another process (`down`)
            pids = json.loads(self.pid_file.read_text())
        if "slurmctld" in pids and _alive(pids["slurmctld"], self.procs.get("slurmctld")):
            ids = self._run("squeue", "-h", "-t", "all", "-o", "%i", check=False).stdout.split()
            if ids:
                self._run("scancel", *ids, check=False)
        for name in reversed(DAEMONS):  # slurmd, slurmctld, then munged
            pid = pids.get(name)
            if pid is None:
                continue
            _signal(pid, signal.SIGTERM)
            proc = self.procs.get(name)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and _alive(pid, proc):
                time.sleep(0.2)
            if _alive(pid, proc):
                _signal(pid, signal.SIGKILL)
                if proc is not None:
                    proc.wait(5)
        self.procs.clear()
        self.pid_file.unlink(missing_ok=True)

    # ---------------------------------------------------------------- queries

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller still knows (all of them: MinJobAge is an hour), as scontrol's key=value."""
        out = self._run("scontrol", "show", "job", "--oneliner", check=False).stdout
        jobs = []
        for line in out.splitlines():
            if not line.strip() or line.startswith("No jobs"):
                continue
            fields, key = {}, None
            for token in line.split(" "):
                if "=" in token:
                    key, value = token.split("=", 1)
                    fields[key] = value
                elif key is not None:  # a value with spaces (Comment, Command)
                    fields[key] += " " + token
            jobs.append({k: v.strip() for k, v in fields.items()})
        return jobs

    def task_env(self) -> dict[str, list[tuple[str, str]]]:
        """job id -> [(step, CUDA_VISIBLE_DEVICES)] as the TaskProlog saw them."""
        seen: dict[str, list[tuple[str, str]]] = {}
        if self.task_env_log.exists():
            for line in self.task_env_log.read_text().splitlines():
                parts = line.split()
                if len(parts) == 3:
                    seen.setdefault(parts[0], []).append((parts[1], parts[2]))
        return seen


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int, proc: subprocess.Popen | None) -> bool:
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("up", "down"):
        print(__doc__, file=sys.stderr)
        return 2
    cluster = SlurmCluster(argv[2])
    try:
        if argv[1] == "up":
            cluster.start()
            # the daemons run in their own sessions and outlive this process; `down` stops them
            cluster.procs.clear()
            print(f"export SLURM_CONF={cluster.conf}")
        else:
            cluster.stop()
    except (ClusterUnavailable, ClusterFailed) as err:
        print(err, file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
