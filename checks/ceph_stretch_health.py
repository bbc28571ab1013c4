"""Is the Ceph cluster under both sites in healthy stretch mode, so that losing one site keeps data writable?

Metro-DR for VMs rests on one Ceph cluster stretched over two data sites plus a tiebreaker monitor. Ramen and
ODF report green while Ceph is already running on one site, and Ceph reports HEALTH_OK for pools that a site
loss would make read-only (measured on a real 16.2.15 stretch cluster: tests/fixtures/ceph). So the check reads
the monitor map, the OSD map, the CRUSH tree and rules, the quorum and the health checks itself.

Findings: one for the stretch mode of the cluster (naming the lost site when degraded), one per monitor,
one for the monitor layout, one per pool, one per raised health check (or one for HEALTH_OK), and an error
for every missing or malformed input file, which also lists what could therefore not be judged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auditor.ceph import (
    CephDataError,
    CrushRule,
    CrushTree,
    Health,
    HealthCheck,
    MonMap,
    OsdMap,
    crush_rules,
    crush_tree,
    health,
    mon_map,
    osd_map,
    quorum_names,
    rule_sites,
)
from auditor.context import AuditContext
from auditor.inventory import CephData
from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status

META = CheckMeta(
    id="ceph_stretch_health",
    title="Ceph stretch mode is on, healthy and survives a site loss",
    severity=Severity.CRITICAL,
    description=(
        "Reads ceph mon dump, osd dump, osd tree, crush rule dump, quorum_status and health detail. Checks that "
        "stretch mode is enabled with a tiebreaker monitor and connectivity elections, that it is neither "
        "degraded nor recovering (naming the lost site), that two monitors sit in each data site and the "
        "tiebreaker in a third location, all in quorum, that every pool is replicated with size 4 / min_size 2 "
        "on a CRUSH rule spanning both sites, and reports the stretch-related Ceph health checks."
    ),
    rationale=(
        "Metro-DR failover only works if the storage under both clusters survives the loss of either site. A "
        "degraded or recovering stretch cluster, a monitor layout that loses quorum with a site, or a pool on a "
        "single-site rule or with the wrong size turns a site loss into data loss or blocked I/O. Ceph itself "
        "stays HEALTH_OK for misconfigured pools, and keeps stretch mode undegraded (with I/O blocked) when a "
        "site's OSDs die while its monitors live."
    ),
    remediation=(
        "Enable stretch mode with `ceph mon set election_strategy connectivity`, `ceph mon set_location` for every "
        "monitor and `ceph mon enable_stretch_mode <tiebreaker> <stretch_rule> datacenter`; bring the lost site "
        "back and wait for recovery to finish; set pools to `size 4`, `min_size 2` and the stretch rule "
        "(`ceph osd pool set <pool> crush_rule <rule>`); for blocked I/O restore the site's OSDs or take its "
        "monitors down so that stretch mode degrades."
    ),
    kinds_read=(
        "ceph:mon_dump",
        "ceph:osd_dump",
        "ceph:osd_tree",
        "ceph:quorum_status",
        "ceph:health_detail",
        "ceph:status",
        "ceph:crush_rule_dump",
    ),
)

CLUSTER = "ceph"
STRETCH_POOL_SIZE = 4  # mon_stretch_pool_size default: two copies in each of the two sites
STRETCH_POOL_MIN_SIZE = 2  # mon_stretch_pool_min_size default; Ceph itself lowers it to 1 while degraded
CONNECTIVITY = 3  # election_strategy value Ceph's stretch-mode procedure sets first
DEFAULT_SITE_TYPE = "datacenter"

# Input files and the command that writes each (contract section 1). Health may come from status.json.
COMMANDS = {
    "mon_dump": "ceph mon dump -f json",
    "osd_dump": "ceph osd dump -f json",
    "osd_tree": "ceph osd tree -f json",
    "quorum_status": "ceph quorum_status -f json",
    "health_detail": "ceph health detail -f json",
    "crush_rule_dump": "ceph osd crush rule dump -f json",
}


@dataclass(frozen=True)
class _Input:
    key: str
    stem: str  # file read (health falls back to status.json)
    read: Callable[[CephData], Any]
    required: bool


_INPUTS = (
    _Input("mons", "mon_dump", mon_map, True),
    _Input("osds", "osd_dump", osd_map, True),
    _Input("tree", "osd_tree", crush_tree, True),
    _Input("quorum", "quorum_status", quorum_names, True),
    _Input("health", "health_detail", health, True),
    _Input("rules", "crush_rule_dump", crush_rules, False),  # without it pool rules stay unverified (error)
)


@dataclass(frozen=True)
class _Cluster:
    """The parsed inputs; a value is None when its file was missing or malformed."""

    mons: MonMap | None
    osds: OsdMap | None
    tree: CrushTree | None
    quorum: tuple[str, ...] | None
    health: Health | None
    rules: dict[int, CrushRule] | None

    @property
    def site_type(self) -> str:
        """The CRUSH bucket type of the sites: the one stretch mode was enabled with, else datacenter."""
        stretch = self.osds.stretch if self.osds else None
        if stretch and stretch.enabled and stretch.bucket_type_id and self.tree:
            return self.tree.type_name(stretch.bucket_type_id)
        return DEFAULT_SITE_TYPE

    @property
    def sites(self) -> list[str]:
        return [node.name for node in self.tree.sites(self.site_type)] if self.tree else []

    def down_sites(self) -> list[str]:
        """Sites whose OSDs are all down."""
        assert self.tree is not None
        return [
            site.name
            for site in self.tree.sites(self.site_type)
            if not any(self.tree.is_up(osd.id) for osd in self.tree.osds_under(site.id))
        ]

    def mons_by_site(self) -> dict[str, list[str]]:
        assert self.mons is not None
        placed: dict[str, list[str]] = {}
        for mon in self.mons.mons:
            placed.setdefault(mon.location.get(self.site_type, ""), []).append(mon.name)
        return placed


def run(ctx: AuditContext) -> list[Finding]:
    ceph = ctx.estate.ceph
    parsed: dict[str, Any] = {}
    findings: list[Finding] = []
    missing: list[str] = []
    for spec in _INPUTS:
        present = spec.stem in ceph.outputs or (spec.key == "health" and "status" in ceph.outputs)
        if not present:
            if spec.required:
                missing.append(spec.stem)
            continue
        try:
            parsed[spec.key] = spec.read(ceph)
        except CephDataError as exc:
            findings.append(_malformed(exc, _not_evaluated({spec.key})))
    if missing:
        findings.insert(0, _missing(missing, ceph.origin))
    cluster = _Cluster(**{spec.key: parsed.get(spec.key) for spec in _INPUTS})
    for aspect, needs in _ASPECTS:
        if all(parsed.get(key) is not None for key in needs):
            findings.extend(aspect(cluster))
    return findings


def _missing(stems: list[str], origin: str) -> Finding:
    files = [f"{stem}.json" for stem in stems]
    keys = {spec.key for spec in _INPUTS if spec.stem in stems}
    return META.finding(
        Status.ERROR,
        f"Ceph stretch health cannot be fully judged: {', '.join(files)} missing from the snapshot's ceph/ folder.",
        cluster=CLUSTER,
        evidence={
            "missing": {f"{stem}.json": COMMANDS[stem] for stem in stems},
            "ceph_folder": origin,
            "not_evaluated": _not_evaluated(keys),
        },
    )


def _malformed(exc: CephDataError, not_evaluated: list[str]) -> Finding:
    return META.finding(
        Status.ERROR,
        f"Ceph output {exc.file} is malformed: {exc.detail}.",
        cluster=CLUSTER,
        evidence={"file": exc.file, "field": exc.field, "problem": str(exc), "not_evaluated": not_evaluated},
    )


# --- stretch mode ------------------------------------------------------------------------------------


def _stretch_mode(c: _Cluster) -> list[Finding]:
    assert c.mons is not None and c.osds is not None
    mons, stretch, kind = c.mons, c.osds.stretch, c.site_type
    lost, basis = _lost_sites(c)
    problems = []
    if not (mons.stretch_mode and stretch.enabled):
        split = mons.stretch_mode != stretch.enabled
        flags = f" (monmap stretch_mode {mons.stretch_mode}, OSD map {stretch.enabled})" if split else ""
        problems.append(f"stretch mode is not enabled{flags}")
    else:
        if not mons.tiebreaker:
            problems.append("no tiebreaker monitor is set")
        elif mons.tiebreaker not in {m.name for m in mons.mons}:
            problems.append(f"tiebreaker mon {mons.tiebreaker} is not in the monmap")
        if mons.election_strategy != CONNECTIVITY:
            problems.append(f"the monitor election strategy is {mons.election_strategy_name}, not connectivity")
        if stretch.bucket_count != 2:
            problems.append(f"stretch mode counts {stretch.bucket_count} {kind} buckets, not 2")
        named = f"{kind} {', '.join(lost)}" if lost else f"the lost {kind} (not identifiable)"
        needed = f"only {stretch.degraded} of {stretch.bucket_count} {kind}s"
        if stretch.recovering:
            problems.append(f"stretch mode is recovering: {named} is rejoining and pools still peer with {needed}")
        elif stretch.degraded:
            problems.append(f"stretch mode is degraded: {named} is lost and pools peer with {needed}")
        else:
            problems.extend(_blocked_sites(c))
    evidence = {
        "fsid": c.osds.fsid,
        "monmap_stretch_mode": mons.stretch_mode,
        "tiebreaker_mon": mons.tiebreaker,
        "election_strategy": mons.election_strategy,
        "election_strategy_name": mons.election_strategy_name,
        "disallowed_leaders": list(mons.disallowed_leaders),
        "osdmap_stretch_mode": {
            "stretch_mode_enabled": stretch.enabled,
            "stretch_bucket_count": stretch.bucket_count,
            "degraded_stretch_mode": stretch.degraded,
            "recovering_stretch_mode": stretch.recovering,
            "stretch_mode_bucket": stretch.bucket_type_id,
        },
        "site_type": kind,
        "sites": c.sites,
        "sites_with_all_osds_down": c.down_sites(),
        "lost_sites": lost,
        "lost_site_basis": basis,
    }
    resource = ResourceRef("ceph", "CephCluster", c.osds.fsid)
    if problems:
        return [
            META.finding(
                Status.FAIL,
                f"Ceph cluster {c.osds.fsid}: {'; '.join(problems)}.",
                cluster=CLUSTER,
                resource=resource,
                evidence=evidence,
            )
        ]
    return [
        META.finding(
            Status.PASS,
            f"Ceph cluster {c.osds.fsid} is in stretch mode across {kind}s {' and '.join(c.sites)} with "
            f"tiebreaker mon {mons.tiebreaker} and connectivity elections, neither degraded nor recovering.",
            cluster=CLUSTER,
            resource=resource,
            evidence=evidence,
        )
    ]


def _lost_sites(c: _Cluster) -> tuple[list[str], str]:
    """Which site is gone, from the strongest evidence available.

    In degraded and recovering stretch mode Ceph sets every pool's peering_crush_bucket_mandatory_member to
    the CRUSH id of the surviving site, so the lost site is the other one. Without that, a site whose OSDs are
    all down, or whose monitors are all out of quorum, is the lost one.
    """
    assert c.osds is not None and c.tree is not None and c.mons is not None
    kind, sites = c.site_type, c.sites
    members = {pool.mandatory_member for pool in c.osds.pools if pool.mandatory_member is not None}
    survivors = sorted(c.tree.nodes[m].name for m in members if m in c.tree.nodes)
    lost = [site for site in sites if site not in survivors]
    if survivors and lost:
        return lost, (
            f"pools' peering_crush_bucket_mandatory_member {sorted(members)} is the surviving {kind} "
            f"{', '.join(survivors)}"
        )
    if down := c.down_sites():
        return down, f"all OSDs of the {kind} are down in osd_tree"
    if c.quorum is not None:
        by_site = c.mons_by_site()
        silent = [site for site in sites if by_site.get(site) and not set(by_site[site]) & set(c.quorum)]
        if silent:
            return silent, f"all monitors of the {kind} are out of quorum"
    return [], "no surviving bucket recorded in the pools, no site with all OSDs down or all monitors out of quorum"


def _blocked_sites(c: _Cluster) -> list[str]:
    """A site whose OSDs are all down while stretch mode stays undegraded: its PGs cannot peer, I/O stops.

    Ceph degrades stretch mode only when a site's monitors are gone as well; with them still in quorum every PG
    waits for the dead site (captured: scenarioB_dc2_osds_down_mons_up).
    """
    assert c.tree is not None
    quorum = set(c.quorum or ())
    by_site = c.mons_by_site() if c.mons else {}
    problems = []
    for site in c.down_sites():
        voting = sorted(set(by_site.get(site, [])) & quorum)
        reason = f" because its monitors {', '.join(voting)} are still in quorum" if voting else ""
        problems.append(
            f"all OSDs of {c.site_type} {site} are down but stretch mode did not degrade{reason}, so placement "
            "groups cannot peer and client I/O is blocked"
        )
    return problems


# --- monitors ------------------------------------------------------------------------------------------


def _monitors(c: _Cluster) -> list[Finding]:
    assert c.mons is not None and c.quorum is not None
    kind, quorum = c.site_type, set(c.quorum)
    findings = []
    for mon in sorted(c.mons.mons, key=lambda m: m.rank):
        site = mon.location.get(kind)
        role = "Tiebreaker mon" if mon.name == c.mons.tiebreaker else "Mon"
        evidence = {
            "rank": mon.rank,
            "crush_location": mon.location,
            "in_quorum": mon.name in quorum,
            "tiebreaker": mon.name == c.mons.tiebreaker,
            "quorum_names": list(c.quorum),
        }
        if not site:
            status = Status.FAIL
            message = (
                f"{role} {mon.name} has no {kind} in its CRUSH location {mon.location or '{}'}, so stretch mode "
                "cannot place it in a site" + ("" if mon.name in quorum else " (it is also out of quorum)") + "."
            )
        elif mon.name not in quorum:
            status = Status.WARN
            consequence = (
                ", so losing a data site now would also lose monitor quorum" if role == "Tiebreaker mon" else ""
            )
            message = f"{role} {mon.name} in {kind} {site} is out of quorum{consequence}."
        else:
            status, message = Status.PASS, f"{role} {mon.name} in {kind} {site} is in quorum."
        findings.append(
            META.finding(
                status,
                message,
                cluster=CLUSTER,
                resource=ResourceRef("ceph", "Monitor", mon.name),
                evidence=evidence,
            )
        )
    findings.append(_monitor_layout(c))
    return findings


def _monitor_layout(c: _Cluster) -> Finding:
    """Two monitors per data site plus the tiebreaker elsewhere: either site can go and a majority remains."""
    assert c.mons is not None and c.osds is not None
    kind, sites, mons = c.site_type, c.sites, c.mons
    tiebreaker = next((m for m in mons.mons if m.name == mons.tiebreaker), None)
    counts = Counter(m.location.get(kind, "") for m in mons.mons if m is not tiebreaker)
    everyone = Counter(m.location.get(kind, "") for m in mons.mons)
    total = len(mons.mons)
    fatal, unusual = [], []
    if len(sites) != 2:
        fatal.append(f"osd_tree holds {len(sites)} {kind}s with OSDs ({', '.join(sites) or 'none'}), not 2")
    if tiebreaker is None:
        fatal.append("there is no tiebreaker mon")
    elif tiebreaker.location.get(kind, "") in {*sites, ""}:
        where = tiebreaker.location.get(kind) or "no location"
        fatal.append(f"tiebreaker mon {tiebreaker.name} is in {where}, not in a third location")
    for site in sites:
        left = total - everyone[site]
        if left * 2 <= total:
            fatal.append(f"losing {kind} {site} leaves {left} of {total} monitors, no majority")
        if counts[site] != 2:
            unusual.append(f"{kind} {site} holds {counts[site]} data-site monitor(s) instead of 2")
    others = sorted(place or "no location" for place in counts if place not in sites)
    if others:
        unusual.append(f"monitors outside the data sites besides the tiebreaker: {', '.join(others)}")
    placement = {site: sorted(names) for site, names in c.mons_by_site().items()}
    evidence = {"site_type": kind, "sites": sites, "monitors_by_location": placement, "total": total}
    resource = ResourceRef("ceph", "MonMap", mons.fsid)
    if fatal or unusual:
        status = Status.FAIL if fatal else Status.WARN
        message = f"The monitor layout of Ceph cluster {mons.fsid} is unsafe for stretch mode: "
        if not fatal:
            message = f"The monitor layout of Ceph cluster {mons.fsid} differs from the documented 2 + 2 + 1: "
        return META.finding(
            status, message + "; ".join(fatal + unusual) + ".", cluster=CLUSTER, resource=resource, evidence=evidence
        )
    assert tiebreaker is not None
    spread = ", ".join(f"2 in {site}" for site in sites)
    return META.finding(
        Status.PASS,
        f"Monitors are placed {spread} and tiebreaker {tiebreaker.name} in {tiebreaker.location[kind]}, so either "
        "data site can be lost without losing quorum.",
        cluster=CLUSTER,
        resource=resource,
        evidence=evidence,
    )


# --- pools -----------------------------------------------------------------------------------------


def _pools(c: _Cluster) -> list[Finding]:
    """Every pool, the mgr's own included: enable_stretch_mode converts every existing pool and gives pools
    created later the stretch settings, and a pool left on one site goes inactive on a site loss (for the
    mgr's pool that stalls its module). So no pool is exempt.
    """
    assert c.osds is not None and c.tree is not None
    stretch, kind, sites = c.osds.stretch, c.site_type, c.sites
    state = "recovering" if stretch.recovering else "degraded" if stretch.degraded else ""
    findings = []
    for pool in c.osds.pools:
        problems, unverified = [], ""
        if not pool.replicated:
            problems.append(f"it is not replicated (type {pool.type_id}); stretch mode needs replicated pools")
        if pool.size != STRETCH_POOL_SIZE:
            problems.append(f"size {pool.size} instead of {STRETCH_POOL_SIZE}")
        lowered = bool(state) and pool.min_size == 1 and pool.mandatory_member is not None
        if pool.min_size != STRETCH_POOL_MIN_SIZE and not lowered:
            problems.append(f"min_size {pool.min_size} instead of {STRETCH_POOL_MIN_SIZE}")
        rule = c.rules.get(pool.crush_rule) if c.rules is not None else None
        covered = sorted(rule_sites(rule, c.tree, kind)) if rule else []
        if c.rules is None:
            unverified = "crush_rule_dump.json is missing"
        elif rule is None:
            unverified = "crush_rule_dump.json has no such rule"
        elif uncovered := [site for site in sites if site not in covered]:
            problems.append(
                f"CRUSH rule {rule.name} (id {rule.id}) does not direct copies to {kind} {', '.join(uncovered)}"
            )
        evidence = {
            "pool_id": pool.id,
            "type": pool.type_id,
            "size": pool.size,
            "min_size": pool.min_size,
            "crush_rule": pool.crush_rule,
            "crush_rule_name": rule.name if rule else None,
            "rule_sites": covered,
            "sites": sites,
            "expected": {"size": STRETCH_POOL_SIZE, "min_size": STRETCH_POOL_MIN_SIZE, "rule_spans": sites},
            "peering_crush_bucket_count": pool.peering_bucket_count,
            "peering_crush_bucket_mandatory_member": pool.mandatory_member,
            "applications": list(pool.applications),
        }
        if problems:
            status, message = Status.FAIL, f"Pool {pool.name} is not set up for stretch mode: {'; '.join(problems)}."
        elif unverified:
            status = Status.ERROR
            message = (
                f"Pool {pool.name} has size {pool.size} and min_size {pool.min_size}, but its CRUSH rule "
                f"{pool.crush_rule} cannot be checked: {unverified}."
            )
        elif lowered:
            status = Status.WARN
            message = (
                f"Pool {pool.name} runs with min_size 1 because stretch mode is {state}; Ceph restores min_size "
                f"{STRETCH_POOL_MIN_SIZE} once both {kind}s are back."
            )
        else:
            assert rule is not None
            status = Status.PASS
            message = (
                f"Pool {pool.name} keeps size {pool.size} / min_size {pool.min_size} on CRUSH rule {rule.name} "
                f"spanning {' and '.join(covered)}."
            )
        findings.append(
            META.finding(
                status, message, cluster=CLUSTER, resource=ResourceRef("ceph", "Pool", pool.name), evidence=evidence
            )
        )
    return findings


# --- health checks ------------------------------------------------------------------------------------

# Why each stretch-related code matters for a site loss; every other code is reported by its own severity.
_WHY = {
    "DEGRADED_STRETCH_MODE": "a site is lost and the cluster runs on one site",
    "RECOVERING_STRETCH_MODE": "data is not yet back on both sites",
    "PG_AVAILABILITY": "inactive placement groups block client I/O",
    "MON_DOWN": "monitors out of quorum shrink the margin for a site loss",
    "OSD_SLOW_PING_TIME_FRONT": "slow OSD heartbeats on the public network point at a slow inter-site link",
    "OSD_SLOW_PING_TIME_BACK": "slow OSD heartbeats on the cluster network point at a slow inter-site link",
    "MON_LOCATION_NOT_SET": "stretch mode cannot place a monitor without a location",
    "INCORRECT_NUM_BUCKETS_STRETCH_MODE": "stretch mode needs exactly two site buckets",
    "UNEVEN_WEIGHTS_STRETCH_MODE": "the two sites have different CRUSH weights",
    "MON_NETSPLIT": "monitors see a network partition",
}
_FAILING = {
    "DEGRADED_STRETCH_MODE",
    "RECOVERING_STRETCH_MODE",
    "PG_AVAILABILITY",
    "MON_LOCATION_NOT_SET",
    "INCORRECT_NUM_BUCKETS_STRETCH_MODE",
}


def _health(c: _Cluster) -> list[Finding]:
    assert c.health is not None
    report = c.health
    site_down = f"OSD_{c.site_type.upper()}_DOWN"  # Ceph builds the code from the CRUSH type name
    if not report.checks:
        status = Status.PASS if report.status == "HEALTH_OK" else Status.WARN
        return [
            META.finding(
                status,
                f"Ceph reports {report.status} with no health checks raised.",
                cluster=CLUSTER,
                resource=ResourceRef("ceph", "HealthCheck", report.status),
                evidence={"status": report.status, "source": report.source},
            )
        ]
    return [_health_check(check, report, site_down) for check in report.checks]


def _health_check(check: HealthCheck, report: Health, site_down: str) -> Finding:
    why = _WHY.get(check.code) or ("all OSDs of a site are down" if check.code == site_down else "")
    failing = check.code in _FAILING or check.code == site_down or check.severity == "HEALTH_ERR"
    muted = " (muted in Ceph)" if check.muted else ""
    return META.finding(
        Status.FAIL if failing else Status.WARN,
        f"Ceph raises {check.code}{muted}: {check.summary}" + (f"; {why}." if why else "."),
        cluster=CLUSTER,
        resource=ResourceRef("ceph", "HealthCheck", check.code),
        evidence={
            "code": check.code,
            "severity": check.severity,
            "summary": check.summary,
            "count": check.count,
            "detail": list(check.details[:10]),
            "detail_total": len(check.details),
            "muted": check.muted,
            "health_status": report.status,
            "source": report.source,
        },
    )


_ASPECTS: tuple[tuple[Callable[[_Cluster], list[Finding]], tuple[str, ...]], ...] = (
    (_stretch_mode, ("mons", "osds", "tree")),
    (_monitors, ("mons", "osds", "quorum", "tree")),
    (_pools, ("osds", "tree")),
    (_health, ("health",)),
)
_ASPECT_NAMES = {
    _stretch_mode: "stretch mode state",
    _monitors: "monitors and their layout",
    _pools: "pools",
    _health: "health checks",
}


def _not_evaluated(keys: set[str]) -> list[str]:
    return [_ASPECT_NAMES[aspect] for aspect, needs in _ASPECTS if keys & set(needs)]
