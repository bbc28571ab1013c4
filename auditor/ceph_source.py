"""The live Ceph source: the `ceph` CLI with ``-f json``, one call per snapshot file, each with a timeout.

It produces exactly the ``ceph/`` files of the snapshot contract, so `drauditor capture` writes them and the Ceph
checks read live data and snapshots the same way. Heartbeat round trips come from ``ceph tell osd.N
dump_osd_network 0`` for one up OSD per site. A command that fails or times out is recorded with its reason; the
checks that need its output then become error findings naming the command.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.ceph import CephDataError, crush_tree
from auditor.inventory import CephData

COMMANDS: dict[str, tuple[str, ...]] = {
    "status": ("status",),
    "health_detail": ("health", "detail"),
    "mon_dump": ("mon", "dump"),
    "osd_dump": ("osd", "dump"),
    "osd_tree": ("osd", "tree"),
    "quorum_status": ("quorum_status",),
    "crush_rule_dump": ("osd", "crush", "rule", "dump"),
}
SITE_TYPE = "datacenter"


class CephCommandError(Exception):
    """A ceph command that failed, timed out or printed something other than JSON."""


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


# How a `ceph` command line is run: here, or inside a pod. Raises CephCommandError when it cannot run at all.
Transport = Callable[[list[str], float], Completed]


def local_process(argv: list[str], timeout: float) -> Completed:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise CephCommandError(f"did not answer within {timeout:g} s") from exc
    except OSError as exc:
        raise CephCommandError(f"cannot run `{argv[0]}`: {exc.strerror}") from exc
    return Completed(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class CephCli:
    """How to reach the cluster: extra arguments for every ``ceph`` call (conf, keyring, client name, cluster)."""

    args: tuple[str, ...] = ()
    timeout: float = 20.0
    binary: str = "ceph"
    transport: Transport = local_process

    @classmethod
    def from_options(
        cls,
        conf: Path | None = None,
        keyring: Path | None = None,
        name: str | None = None,
        cluster: str | None = None,
        timeout: float = 20.0,
    ) -> CephCli:
        pairs = (("--conf", conf), ("--keyring", keyring), ("--name", name), ("--cluster", cluster))
        return cls(args=tuple(arg for flag, value in pairs if value for arg in (flag, str(value))), timeout=timeout)

    def describe(self, command: tuple[str, ...]) -> str:
        return " ".join(("ceph", *command, "-f", "json"))

    def run(self, command: tuple[str, ...]) -> Any:
        argv = [self.binary, *self.args, "--connect-timeout", str(max(1, int(self.timeout))), *command, "-f", "json"]
        what = f"`{self.describe(command)}`"
        try:
            done = self.transport(argv, self.timeout)
        except CephCommandError as exc:
            raise CephCommandError(f"{what}: {exc}") from exc
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise CephCommandError(f"{what} exited with {done.returncode}: {reason}")
        try:
            return json.loads(done.stdout)
        except json.JSONDecodeError as exc:
            raise CephCommandError(f"{what} printed no JSON ({exc.msg})") from exc


def collect(cli: CephCli) -> CephData:
    data = CephData(origin=f"ceph CLI ({' '.join(cli.args) or 'default configuration'})")
    for stem, command in COMMANDS.items():
        try:
            data.outputs[stem] = cli.run(command)
        except CephCommandError as exc:
            data.unavailable[f"ceph:{stem}"] = str(exc)
    _collect_heartbeats(cli, data)
    return data


def _collect_heartbeats(cli: CephCli, data: CephData) -> None:
    """``dump_osd_network`` of one up OSD per site: each lists its pings to every peer, across sites included."""
    if "osd_tree" not in data.outputs:
        data.unavailable["ceph:osd_network"] = "no OSD to ask: `ceph osd tree -f json` could not be read"
        return
    try:
        tree = crush_tree(data)
    except CephDataError as exc:
        data.unavailable["ceph:osd_network"] = f"no OSD to ask: {exc}"
        return
    failures = []
    for site in tree.sites(SITE_TYPE):
        up = [osd.id for osd in tree.osds_under(site.id) if tree.is_up(osd.id)]
        if not up:
            failures.append(f"no OSD of {SITE_TYPE} {site.name} is up")
            continue
        try:
            data.outputs[f"osd_network.osd.{up[0]}"] = cli.run(("tell", f"osd.{up[0]}", "dump_osd_network", "0"))
        except CephCommandError as exc:
            failures.append(str(exc))
    if failures and not any(stem.startswith("osd_network") for stem in data.outputs):
        data.unavailable["ceph:osd_network"] = "; ".join(failures)
