"""Starts a real Ceph 16.2.15 stretch-mode cluster on 127.0.0.1 from Debian's packages, no systemd or cephadm.

Five mons (dc1a, dc1b in dc1; dc2a, dc2b in dc2; arb, the tiebreaker, in "arbiter"), one mgr and four memstore
OSDs (one host bucket each, two per datacenter), put into stretch mode by Ceph's documented procedure. The recipe
and its measured timings: tests/cephlab/README.md. Every daemon runs in its own session (setsid) and is stopped
by its recorded PID; the kernel also kills it if the Python process dies first.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.lifecycle import StartStop

HERE = Path(__file__).resolve().parent
SETUP = HERE / "setup.sh"
BINARIES = ("ceph-mon", "ceph-osd", "ceph-mgr", "ceph", "ceph-authtool", "monmaptool", "crushtool", "rados")
MONS = {"dc1a": "dc1", "dc1b": "dc1", "dc2a": "dc2", "dc2b": "dc2", "arb": "arbiter"}
TIEBREAKER = "arb"
OSDS = {0: ("dc1", "dc1-host1"), 1: ("dc1", "dc1-host2"), 2: ("dc2", "dc2-host1"), 3: ("dc2", "dc2-host2")}
MGR = "x"
POOL = "rbdpool"
CLI_TIMEOUT = 10.0  # a ceph call can hang while mons re-elect after a kill
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # resolved here: the forked child should only call it

STRETCH_RULE = """rule stretch_rule {
\tid 1
\ttype replicated
\tmin_size 1
\tmax_size 10
\tstep take dc1
\tstep chooseleaf firstn 2 type host
\tstep emit
\tstep take dc2
\tstep chooseleaf firstn 2 type host
\tstep emit
}
"""


class CephLabUnavailable(RuntimeError):
    """This machine cannot run the lab (packages missing and not installable); tests skip on this only."""


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None]


def ensure_installed() -> None:
    """Runs setup.sh (apt-get install) when a Ceph binary is missing; raises CephLabUnavailable if that fails."""
    if not missing_binaries():
        return
    done = subprocess.run([str(SETUP)], capture_output=True, text=True, check=False)
    still = missing_binaries()
    if still:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise CephLabUnavailable(f"Ceph packages not installed and {SETUP.name} could not install them: {why}")


def _free_port_base(start: int = 46100, span: int = 50, attempts: int = 40) -> int:
    """A base port with the 10 mon ports (base + 10*i, +1) free on 127.0.0.1."""
    for base in range(start, start + span * attempts, span):
        ports = [base + 10 * i + j for i in range(len(MONS)) for j in (0, 1)]
        if all(_port_free(port) for port in ports):
            return base
    raise CephLabUnavailable(f"no free port range for the mons above {start}")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _in_own_session() -> None:
    """Runs in the forked child: own session and process group, and SIGKILL when the parent dies."""
    os.setsid()
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class CephCommandFailed(RuntimeError):
    pass


class CephLab(StartStop):
    """A context manager around one throw-away stretch cluster; ``timings`` records how long each step took."""

    def __init__(self, election_timeout: float | None = 1.0, base_dir: str | None = None) -> None:
        self.election_timeout = election_timeout
        self.base_dir = base_dir
        self.run_dir = Path()
        self.fsid = ""
        self.mon_addrs: dict[str, str] = {}
        self.pids: dict[str, int] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.timings: dict[str, float] = {}
        self.peak_rss_kib = 0
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        missing = missing_binaries()
        if missing:
            raise CephLabUnavailable(f"Ceph binaries missing: {', '.join(missing)} (run {SETUP})")
        began = time.monotonic()
        self.run_dir = Path(tempfile.mkdtemp(prefix="drauditor-ceph-", dir=self.base_dir))
        for sub in ("run", "log", "crash", "mon", "mgr", "osd"):
            (self.run_dir / sub).mkdir()
        self._sampler = threading.Thread(target=self._sample_rss, daemon=True)
        self._sampler.start()
        self._write_config(_free_port_base())
        self._make_mons()
        self.wait_for("5 mons in quorum", self._quorum_of(len(MONS)), 60)
        self._mark("quorum", began)
        self._start_mgr()
        self._start_osds()
        self.wait_for("4 OSDs up", self._osds_up(len(OSDS)), 60)
        self._mark("osds_up", began)
        self._enable_stretch_mode()
        self._mark("stretch_mode", began)
        self._write_objects()
        self.wait_healthy(90)
        self._mark("healthy", began)

    def stop(self) -> None:
        """SIGTERM then SIGKILL to exactly the recorded daemons, then removes the run directory."""
        self._sampling.set()
        self._signal(list(self.pids), signal.SIGTERM, grace=3.0)
        self.pids.clear()
        self._procs.clear()
        if self.run_dir != Path() and self.run_dir.exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def kill(self, *daemons: str) -> None:
        """SIGKILL, like a site losing power: memstore OSDs come back empty and are refilled by recovery."""
        unknown = [name for name in daemons if name not in self.pids]
        if unknown:
            raise KeyError(f"not running: {', '.join(unknown)}")
        self._signal(list(daemons), signal.SIGKILL, grace=0.0)

    def restart(self, *daemons: str) -> None:
        for name in daemons:
            if name in self.pids:
                self._signal([name], signal.SIGKILL, grace=0.0)
            self._spawn(name)

    def _signal(self, daemons: list[str], sig: signal.Signals, grace: float) -> None:
        for name in daemons:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pids[name], sig)
        deadline = time.monotonic() + grace
        for name in daemons:
            proc = self._procs[name]
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            del self.pids[name], self._procs[name]

    # --- the ceph CLI ------------------------------------------------------------------------------

    @property
    def conf(self) -> Path:
        return self.run_dir / "ceph.conf"

    @property
    def keyring(self) -> Path:
        return self.run_dir / "admin.keyring"

    def ceph_args(self) -> list[str]:
        return ["--conf", str(self.conf), "--keyring", str(self.keyring), "--name", "client.admin"]

    def ceph(self, *args: str, timeout: float = CLI_TIMEOUT, stdin: bytes | None = None) -> str:
        return self._tool("ceph", *self.ceph_args(), *args, timeout=timeout, stdin=stdin)

    def json(self, *args: str, timeout: float = CLI_TIMEOUT) -> Any:
        return json.loads(self.ceph(*args, "-f", "json", timeout=timeout))

    def _tool(self, *argv: str, timeout: float = CLI_TIMEOUT, stdin: bytes | None = None) -> str:
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise CephCommandFailed(f"{' '.join(argv[:1] + argv[7:])} timed out after {timeout:g} s") from exc
        if done.returncode != 0:
            raise CephCommandFailed(
                f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace').strip()}"
            )
        return done.stdout.decode()

    # --- waiting -----------------------------------------------------------------------------------

    def wait_for(
        self, what: str, probe: Callable[[], bool], timeout: float, interval: float = 1.0, polls: int = 1
    ) -> float:
        """Polls ``probe`` until it holds on ``polls`` consecutive polls; returns the seconds waited.

        A ceph call that fails or hangs (mons re-electing) counts as "not yet".
        """
        began = time.monotonic()
        held, last_error = 0, ""
        while True:
            try:
                held = held + 1 if probe() else 0
            except (CephCommandFailed, json.JSONDecodeError, KeyError) as exc:
                held, last_error = 0, str(exc)
            if held >= polls:
                return time.monotonic() - began
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"Ceph lab: not {what} after {timeout:g} s{'; ' + last_error if last_error else ''}")
            time.sleep(interval)

    def stretch_flags(self) -> dict[str, Any]:
        return self.json("osd", "dump")["stretch_mode"]

    def is_healthy(self) -> bool:
        """HEALTH_OK, normal stretch mode and every PG active+clean (stats can lag: wait_healthy polls twice)."""
        status = self.json("status")
        pgs = status["pgmap"]
        clean = [s["count"] for s in pgs.get("pgs_by_state", []) if s["state_name"] == "active+clean"]
        flags = self.stretch_flags()
        return (
            status["health"]["status"] == "HEALTH_OK"
            and pgs["num_pgs"] > 0
            and clean == [pgs["num_pgs"]]
            and flags["stretch_mode_enabled"]
            and not flags["degraded_stretch_mode"]
            and not flags["recovering_stretch_mode"]
        )

    def wait_healthy(self, timeout: float = 90) -> float:
        return self.wait_for("HEALTH_OK with all PGs active+clean", self.is_healthy, timeout, interval=2.0, polls=2)

    def _quorum_of(self, size: int) -> Callable[[], bool]:
        return lambda: len(self.json("quorum_status", timeout=5)["quorum_names"]) == size

    def _osds_up(self, count: int) -> Callable[[], bool]:
        return lambda: sum(1 for osd in self.json("osd", "dump")["osds"] if osd["up"]) == count

    # --- bring-up ----------------------------------------------------------------------------------

    def _mark(self, name: str, began: float) -> None:
        self.timings[name] = round(time.monotonic() - began, 1)

    def _write_config(self, base: int) -> None:
        run = self.run_dir
        self.mon_addrs = {
            name: f"[v2:127.0.0.1:{base + 10 * i},v1:127.0.0.1:{base + 10 * i + 1}]" for i, name in enumerate(MONS)
        }
        election = f"mon election timeout = {self.election_timeout:g}\n" if self.election_timeout else ""
        osds = "".join(
            f"[osd.{i}]\ncrush location = root=default datacenter={dc} host={host}\n" for i, (dc, host) in OSDS.items()
        )
        mons = "".join(f"[mon.{name}]\npublic addrv = {addr}\n" for name, addr in self.mon_addrs.items())
        self.fsid = str(uuid.uuid4())
        self.conf.write_text(
            f"""[global]
fsid = {self.fsid}
mon host = {",".join(self.mon_addrs.values())}
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
ms bind ipv6 = false
ms bind ipv4 = true
run dir = {run}/run
admin socket = {run}/run/$cluster-$name.asok
log file = {run}/log/$name.log
pid file = {run}/run/$name.pid
crash dir = {run}/crash
mon data avail warn = 1
mon data avail crit = 0
mon allow pool delete = true
mon allow pool size one = true
osd pool default size = 2
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
osd crush chooseleaf type = 1
{election}
[client]
keyring = {run}/admin.keyring

[mon]
mon data = {run}/mon/$id
mon cluster log file = {run}/log/cluster.log

[mgr]
mgr data = {run}/mgr/$id
public addr = 127.0.0.1

[osd]
osd data = {run}/osd/$id
osd objectstore = memstore
memstore device bytes = 536870912
osd crush update on start = true
osd crush initial weight = 1.0
public addr = 127.0.0.1
cluster addr = 127.0.0.1
osd heartbeat interval = 1
debug heartbeat testing span = 5

{osds}
{mons}"""
        )

    def _make_mons(self) -> None:
        run = self.run_dir
        mon_keyring = str(run / "mon.keyring")
        self._tool(
            "ceph-authtool", "--create-keyring", mon_keyring, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"
        )
        caps = [arg for svc in ("mon", "osd", "mds", "mgr") for arg in ("--cap", svc, "allow *")]
        self._tool("ceph-authtool", "--create-keyring", str(self.keyring), "--gen-key", "-n", "client.admin", *caps)
        self._tool("ceph-authtool", mon_keyring, "--import-keyring", str(self.keyring))
        addv = [arg for name, addr in self.mon_addrs.items() for arg in ("--addv", name, addr)]
        monmap = str(run / "monmap")
        self._tool(
            "monmaptool", "--create", "--fsid", self.fsid, "--enable-all-features",
            "--set-min-mon-release", "pacific", *addv, monmap,
        )  # fmt: skip
        for name in MONS:
            self._tool(
                "ceph-mon", "-c", str(self.conf), "--mkfs", "-i", name, "--monmap", monmap, "--keyring", mon_keyring
            )
            self._spawn(f"mon.{name}")

    def _start_mgr(self) -> None:
        (self.run_dir / "mgr" / MGR).mkdir()
        key = self.ceph(
            "auth", "get-or-create", f"mgr.{MGR}", "mon", "allow profile mgr", "osd", "allow *", "mds", "allow *"
        )
        (self.run_dir / "mgr" / MGR / "keyring").write_text(key)
        self._spawn(f"mgr.{MGR}")

    def _start_osds(self) -> None:
        for want in OSDS:
            osd_uuid = str(uuid.uuid4())
            got = int(self.ceph("osd", "new", osd_uuid).strip())
            assert got == want, f"ceph osd new gave id {got}, expected {want}"
            data = self.run_dir / "osd" / str(got)
            data.mkdir()
            self._tool(
                "ceph-osd", "-c", str(self.conf), "-i", str(got), "--mkfs", "--mkkey",
                "--osd-uuid", osd_uuid, "--no-mon-config",
            )  # fmt: skip
            self.ceph(
                "auth", "add", f"osd.{got}", "osd", "allow *", "mon", "allow profile osd", "mgr", "allow profile osd",
                "-i", str(data / "keyring"),
            )  # fmt: skip
            self._spawn(f"osd.{got}")

    def _enable_stretch_mode(self) -> None:
        """Ceph's documented procedure: a pool, the two-site rule, connectivity elections, mon locations, enable."""
        run = self.run_dir
        self.ceph("osd", "pool", "create", POOL, "16", "16", "replicated")
        self.ceph("osd", "pool", "application", "enable", POOL, "rbd")
        self.ceph("osd", "getcrushmap", "-o", str(run / "crush.bin"))
        self._tool("crushtool", "-d", str(run / "crush.bin"), "-o", str(run / "crush.txt"))
        text = (run / "crush.txt").read_text().replace("# end crush map", STRETCH_RULE + "# end crush map")
        (run / "crush-new.txt").write_text(text)
        self._tool("crushtool", "-c", str(run / "crush-new.txt"), "-o", str(run / "crush-new.bin"))
        self.ceph("osd", "setcrushmap", "-i", str(run / "crush-new.bin"))
        self.ceph("mon", "set", "election_strategy", "connectivity")
        for name, dc in MONS.items():
            self.ceph("mon", "set_location", name, f"datacenter={dc}", timeout=30)
        self.ceph("mon", "enable_stretch_mode", TIEBREAKER, "stretch_rule", "datacenter", timeout=30)

    def _write_objects(self, count: int = 10) -> None:
        """Some data, so that a site loss leaves degraded objects and a return has something to recover."""
        blob = self.run_dir / "object"
        blob.write_bytes(os.urandom(64 * 1024))
        for i in range(count):
            self._tool("rados", *self.ceph_args(), "-p", POOL, "put", f"obj{i}", str(blob))

    # --- daemons -----------------------------------------------------------------------------------

    def _spawn(self, name: str) -> None:
        kind, ident = name.split(".", 1)
        log = open(self.run_dir / "log" / f"{name}.stdout", "ab")  # noqa: SIM115 - the child keeps it open
        with log:
            proc = subprocess.Popen(
                [f"ceph-{kind}", "-c", str(self.conf), "-i", ident, "-f"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_in_own_session,  # setsid + PDEATHSIG only: nothing that could deadlock
            )
        self._procs[name] = proc
        self.pids[name] = proc.pid

    def _sample_rss(self) -> None:
        """Peak total RSS of the recorded daemons, sampled every second."""
        while not self._sampling.wait(1.0):
            total = 0
            for pid in list(self.pids.values()):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
            self.peak_rss_kib = max(self.peak_rss_kib, total)
