"""Is the round trip between the two data sites short enough for synchronous Metro-DR replication?

Every write to a stretched Ceph pool waits for the copies in the other site, so inter-site latency is added to
every VM disk write, and OpenShift Virtualization Metro-DR is only supported up to a stated RTT. Ceph measures
exactly that link: every OSD pings its peers on the public ("front") and cluster ("back") networks and keeps
1/5/15-minute averages (``dump_osd_network``). The check maps each OSD to its site through the CRUSH tree and
judges each pair of sites by the worst OSD pair: a link is as slow as its slowest path.

A figure is current only if both OSDs are up in osd_tree, Ceph does not mark it stale, and it kept pace with
the newest figure of its dump: Ceph recomputes a peer's averages once a minute (the captures show the same pair
updated at 17:26:08, 17:27:08, 17:28:12), while a dead or re-added peer keeps its last figures with
"stale": false for an hour. When no current cross-site figure remains, the old ones still prove a link too
slow (fail) but cannot prove it fast enough today (error).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations
from typing import Any

from auditor.ceph import CephDataError, CrushTree, Ping, crush_tree, network_stems, osd_map, pings
from auditor.context import AuditContext
from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status

META = CheckMeta(
    id="intersite_rtt",
    title="Inter-site round trip is within the Metro-DR limit",
    severity=Severity.HIGH,
    description=(
        "Reads the OSD heartbeat ping times of dump_osd_network (osd_network.json and osd_network.<daemon>.json) "
        "and maps every OSD to its site through osd_tree. For each pair of sites it takes the worst 1-, 5- and "
        "15-minute average and the highest single ping over all cross-site OSD pairs and both interfaces, and "
        "compares them with thresholds.rtt_ms_max. Fails when the 1- or 5-minute figure exceeds it, warns when "
        "only the 15-minute average or a peak does."
    ),
    rationale=(
        "Metro-DR replicates synchronously: each VM disk write waits for the other site. Above the supported "
        "round trip (10 ms for OpenShift Virtualization Metro-DR) writes slow down for every VM and monitor "
        "elections and heartbeats start to fail, so a design that exceeds it is not supported for a site loss."
    ),
    remediation=(
        "Shorten or upgrade the inter-site link (dedicated, low-latency WAN; no shared congested path), or move to "
        "Regional-DR (asynchronous) if the sites are too far apart. Re-capture `ceph daemon osd.N "
        "dump_osd_network 0` (or the mgr's) after the OSDs have run for at least a minute."
    ),
    kinds_read=("ceph:osd_network", "ceph:osd_tree", "ceph:osd_dump"),
)

CLUSTER = "ceph"
DEFAULT_SITE_TYPE = "datacenter"
# A figure this far behind the newest one in its dump missed its once-a-minute update.
LAG_LIMIT = timedelta(seconds=90)
AGGREGATION = (
    "worst case over all cross-site OSD pairs, both directions and both interfaces (front and back): the "
    "highest 1-, 5- and 15-minute average of any single pair; max_ms is the highest single ping in 15 minutes"
)


@dataclass(frozen=True)
class _Figures:
    avg_1min: float
    avg_5min: float
    avg_15min: float
    max_ms: float
    osd_pairs: int

    @classmethod
    def of(cls, entries: list[Ping]) -> _Figures:
        return cls(
            avg_1min=max(e.avg_1min for e in entries),
            avg_5min=max(e.avg_5min for e in entries),
            avg_15min=max(e.avg_15min for e in entries),
            max_ms=max(e.max_ms for e in entries),
            osd_pairs=len({frozenset((e.from_osd, e.to_osd)) for e in entries}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "avg_1min_ms": self.avg_1min,
            "avg_5min_ms": self.avg_5min,
            "avg_15min_ms": self.avg_15min,
            "max_ms": self.max_ms,
            "osd_pairs": self.osd_pairs,
        }


@dataclass(frozen=True)
class _Dumps:
    """The heartbeat entries with the site of both ends, split into current and left-over figures."""

    tree: CrushTree
    site_type: str
    entries: list[tuple[Ping, str, str]]  # entry, site of from_osd, site of to_osd
    unmapped_osds: list[int]
    sources: list[str]
    newest: dict[str, datetime]  # per source dump: its most recent "last update"

    def down(self, entry: Ping) -> list[int]:
        return [osd for osd in (entry.from_osd, entry.to_osd) if not self.tree.is_up(osd)]

    def lagging(self, entry: Ping) -> bool:
        moment, newest = entry.last_update_time, self.newest.get(entry.source)
        return moment is not None and newest is not None and newest - moment > LAG_LIMIT

    def current(self, entry: Ping) -> bool:
        return not (entry.stale or self.down(entry) or self.lagging(entry))

    def why_not_current(self, entries: list[Ping]) -> str:
        down = sorted({osd for e in entries for osd in self.down(e)})
        lagging = sum(1 for e in entries if self.lagging(e))
        stale = sum(1 for e in entries if e.stale)
        reasons = (
            [f"{', '.join(f'osd.{osd}' for osd in down)} {'is' if len(down) == 1 else 'are'} down"] if down else []
        )
        if lagging:
            reasons.append(
                f"{lagging} entries were last updated over {LAG_LIMIT.seconds} s before the newest of their dump"
            )
        if stale:
            reasons.append(f"Ceph marks {stale} entries stale")
        return " and ".join(reasons)

    def between(self, a: str, b: str) -> list[Ping]:
        return [e for e, x, y in self.entries if {x, y} == {a, b}]


def run(ctx: AuditContext) -> list[Finding]:
    ceph = ctx.estate.ceph
    stems = network_stems(ceph)
    missing = ([] if stems else ["osd_network.json (or osd_network.<daemon>.json)"]) + (
        [] if "osd_tree" in ceph.outputs else ["osd_tree.json"]
    )
    if missing:
        return [
            _error(ctx, f"Inter-site RTT cannot be measured: {', '.join(missing)} missing from the snapshot.", stems)
        ]
    try:
        dumps = _read(ctx, stems)
    except CephDataError as exc:
        return [
            _error(ctx, f"Inter-site RTT cannot be measured: Ceph output {exc.file} is malformed: {exc.detail}.", stems)
        ]
    sites = [node.name for node in dumps.tree.sites(dumps.site_type)]
    if len(sites) < 2:
        reason = (
            f"osd_tree holds {len(sites)} {dumps.site_type} with OSDs ({', '.join(sites) or 'none'}), not two sites"
        )
        return [_error(ctx, f"Inter-site RTT cannot be measured: {reason}.", stems)]
    if not dumps.entries:
        return [
            _error(
                ctx,
                f"Inter-site RTT cannot be measured: the heartbeat dumps {', '.join(stems)} hold no entries for OSDs "
                "in the CRUSH tree (Ceph fills them about a minute after the OSDs start).",
                stems,
            )
        ]
    return [_site_pair(ctx, dumps, a, b, sites) for a, b in combinations(sites, 2)]


def _read(ctx: AuditContext, stems: list[str]) -> _Dumps:
    ceph = ctx.estate.ceph
    tree = crush_tree(ceph)
    site_type = DEFAULT_SITE_TYPE
    if "osd_dump" in ceph.outputs:
        stretch = osd_map(ceph).stretch
        if stretch.enabled and stretch.bucket_type_id:
            site_type = tree.type_name(stretch.bucket_type_id)
    entries, unmapped, newest = [], set(), {}
    for stem in stems:
        found = pings(ceph, stem)
        stamps = [moment for e in found if (moment := e.last_update_time) is not None]
        if stamps:
            newest[stem] = max(stamps)
        for entry in found:
            ends = tree.site_of(entry.from_osd, site_type), tree.site_of(entry.to_osd, site_type)
            unmapped.update(osd for osd, site in zip((entry.from_osd, entry.to_osd), ends, strict=True) if not site)
            if ends[0] and ends[1]:
                entries.append((entry, ends[0], ends[1]))
    return _Dumps(tree, site_type, entries, sorted(unmapped), stems, newest)


def _site_pair(ctx: AuditContext, dumps: _Dumps, a: str, b: str, sites: list[str]) -> Finding:
    threshold = ctx.config.thresholds.rtt_ms_max
    link = f"{dumps.site_type}s {a} and {b}"
    cross = dumps.between(a, b)
    live = [e for e in cross if dumps.current(e)]
    used = live or cross
    figures = _Figures.of(used) if used else None
    old = [e for e in cross if not dumps.current(e)]
    evidence = _evidence(ctx, dumps, [a, b], figures, sites)
    evidence.update(
        current=bool(live),
        not_current={
            "entries": len(old),
            "down_osds": sorted({osd for e in old for osd in dumps.down(e)}),
            "lagging_entries": sum(1 for e in old if dumps.lagging(e)),
            "stale_entries": sum(1 for e in old if e.stale),
        },
        last_update=_last_update(used),
    )
    resource = ResourceRef("ceph", "SiteLink", f"{a}-{b}")
    if figures is None:
        status = Status.ERROR
        message = (
            f"Inter-site RTT between {link} cannot be measured: the heartbeat dumps hold no entry between their OSDs."
        )
        return META.finding(status, message, cluster=CLUSTER, resource=resource, evidence=evidence)
    shown = (
        f"worst OSD-pair average {figures.avg_1min:g} ms (1 min), {figures.avg_5min:g} ms (5 min), "
        f"{figures.avg_15min:g} ms (15 min), peak {figures.max_ms:g} ms over {figures.osd_pairs} OSD pairs"
    )
    over = [window for window, value in (("1", figures.avg_1min), ("5", figures.avg_5min)) if value > threshold]
    if not live:
        why = dumps.why_not_current(old)
        if over:
            status = Status.FAIL
            message = (
                f"Inter-site RTT between {link} exceeded {threshold:g} ms in the last figures Ceph kept, which are "
                f"no longer current because {why}: {shown}."
            )
        else:
            status = Status.ERROR
            message = (
                f"Inter-site RTT between {link} cannot be confirmed because {why}, and the older figures "
                f"({shown}) say nothing about the link now."
            )
    elif over:
        status = Status.FAIL
        windows = " and ".join(over)
        message = f"Inter-site RTT between {link} exceeds {threshold:g} ms in the {windows}-minute averages: {shown}."
    elif figures.avg_15min > threshold or figures.max_ms > threshold:
        status = Status.WARN
        message = (
            f"Inter-site RTT between {link} is within {threshold:g} ms now, but not its 15-minute average or "
            f"peak: {shown}."
        )
    else:
        status, message = Status.PASS, f"Inter-site RTT between {link} is within {threshold:g} ms: {shown}."
    return META.finding(status, message, cluster=CLUSTER, resource=resource, evidence=evidence)


def _evidence(
    ctx: AuditContext, dumps: _Dumps | None, sites: list[str], figures: _Figures | None, all_sites: list[str]
) -> dict[str, Any]:
    """The evidence shape the report renders for every finding of this check (figures None when unmeasured)."""
    same_site = {}
    if dumps is not None:
        for site in all_sites:
            local = [e for e in dumps.between(site, site) if dumps.current(e)]
            if local:
                same_site[site] = _Figures.of(local).to_dict()
    values = figures.to_dict() if figures else dict.fromkeys(("avg_1min_ms", "avg_5min_ms", "avg_15min_ms", "max_ms"))
    return {
        "sites": sites,
        **values,
        "osd_pairs": figures.osd_pairs if figures else 0,
        "threshold_ms": ctx.config.thresholds.rtt_ms_max,
        "threshold_source": ctx.config.thresholds.rtt_ms_source,
        "sources": dumps.sources if dumps else [],
        "same_site": same_site,
        "aggregation": AGGREGATION,
        "site_type": dumps.site_type if dumps else None,
        "unmapped_osds": dumps.unmapped_osds if dumps else [],
    }


def _last_update(entries: list[Ping]) -> dict[str, str] | None:
    """Oldest and newest "last update" as the daemons printed them (host local time, no zone)."""
    stamped = sorted((t, e.last_update) for e in entries if (t := e.last_update_time) is not None)
    return {"oldest": stamped[0][1], "newest": stamped[-1][1]} if stamped else None


def _error(ctx: AuditContext, message: str, stems: list[str]) -> Finding:
    evidence = _evidence(ctx, None, [], None, [])
    evidence["sources"] = stems
    return META.finding(Status.ERROR, message, cluster=CLUSTER, evidence=evidence)
