"""Typed readers over the Ceph command outputs of a snapshot (CephData), Pacific quirks included.

Checks never index raw Ceph JSON. Every field goes through a reader here, so a value of the wrong type
becomes a CephDataError naming the file and the field (an error finding), never a KeyError inside a check.
Shapes follow real Ceph 16.2.15 captures (tests/fixtures/ceph/SOURCES.md) and Ceph's dump code; keys that
older releases omit (Octopus has no stretch mode) fall back to what their absence means.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from auditor.inventory import CephData

NO_CRUSH_ITEM = 2147483647  # CRUSH_ITEM_NONE: a pool's "no mandatory member" value
ELECTION_STRATEGIES = {1: "classic", 2: "disallow", 3: "connectivity"}  # enum election_strategy, MonMap.h
# Ceph's default CRUSH type ids (OSDMap::_build_crush_types), for when the tree does not name a type.
DEFAULT_CRUSH_TYPES = {
    0: "osd",
    1: "host",
    2: "chassis",
    3: "rack",
    4: "row",
    5: "pdu",
    6: "pod",
    7: "room",
    8: "datacenter",
    9: "zone",
    10: "region",
    11: "root",
}
NETWORK_STEM = "osd_network"  # osd_network.json, plus osd_network.<daemon>.json per admin socket
_CHOOSE_OPS = {"choose_firstn", "choose_indep", "chooseleaf_firstn", "chooseleaf_indep"}


class CephDataError(Exception):
    """A Ceph output that is present but not shaped the way Ceph writes it."""

    def __init__(self, stem: str, where: str, problem: str) -> None:
        self.file = f"{stem}.json"
        self.field = where or "(document)"
        self.problem = problem
        super().__init__(f"{self.file}: {self.field} {problem}")

    @property
    def detail(self) -> str:
        """The field and what is wrong with it, without the file name."""
        return f"{self.field} {self.problem}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}
    return names.get(type(value), "an object" if isinstance(value, dict) else type(value).__name__)


class _Value:
    """One value inside one file, with its JSON path, so every type error can say where it is."""

    __slots__ = ("path", "raw", "stem")

    def __init__(self, stem: str, raw: Any, path: str = "") -> None:
        self.stem, self.raw, self.path = stem, raw, path

    def _wrong(self, expected: str) -> CephDataError:
        shown = repr(self.raw) if len(repr(self.raw)) <= 40 else repr(self.raw)[:37] + "..."
        return CephDataError(self.stem, self.path, f"is {_kind(self.raw)} ({shown}), expected {expected}")

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _mapping(self) -> dict[str, Any]:
        if not isinstance(self.raw, dict):
            raise self._wrong("an object")
        return self.raw

    def field(self, *keys: str) -> _Value:
        """The first of ``keys`` present (spelling variants of one field); missing is an error."""
        found = self.optional(*keys)
        if found is None:
            raise CephDataError(self.stem, self._key(keys[0]), "is missing")
        return found

    def optional(self, *keys: str) -> _Value | None:
        mapping = self._mapping()
        for key in keys:
            if key in mapping:
                return _Value(self.stem, mapping[key], self._key(key))
        return None

    def items(self) -> list[_Value]:
        if not isinstance(self.raw, list):
            raise self._wrong("a list")
        return [_Value(self.stem, item, f"{self.path}[{i}]") for i, item in enumerate(self.raw)]

    def entries(self) -> dict[str, _Value]:
        return {key: _Value(self.stem, value, self._key(key)) for key, value in self._mapping().items()}

    def integer(self) -> int:
        if isinstance(self.raw, bool) or not isinstance(self.raw, int):
            raise self._wrong("an integer")
        return self.raw

    def number(self) -> float:
        if isinstance(self.raw, bool) or not isinstance(self.raw, int | float):
            raise self._wrong("a number")
        return float(self.raw)

    def text(self) -> str:
        if not isinstance(self.raw, str):
            raise self._wrong("a string")
        return self.raw

    def flag(self) -> bool:
        if not isinstance(self.raw, bool):
            raise self._wrong("a boolean")
        return self.raw


def _document(ceph: CephData, stem: str) -> _Value:
    if stem not in ceph.outputs:
        raise CephDataError(stem, "", "is missing from the snapshot")
    return _Value(stem, ceph.outputs[stem])


def _optional_int(value: _Value, *keys: str, default: int) -> int:
    found = value.optional(*keys)
    return default if found is None else found.integer()


def _comma_list(text: str) -> tuple[str, ...]:
    """A std::set streamed by Ceph: names joined by ',' and '' when empty."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


# --- monitors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Monitor:
    name: str
    rank: int
    location: dict[str, str]  # CRUSH location, e.g. {"datacenter": "dc1"}; {} when unset


@dataclass(frozen=True)
class MonMap:
    fsid: str
    epoch: int
    election_strategy: int
    stretch_mode: bool
    tiebreaker: str
    disallowed_leaders: tuple[str, ...]
    mons: tuple[Monitor, ...]

    @property
    def election_strategy_name(self) -> str:
        return ELECTION_STRATEGIES.get(self.election_strategy, f"unknown ({self.election_strategy})")


def parse_crush_location(value: _Value) -> dict[str, str]:
    """Ceph streams the std::map as ``"{datacenter=dc1,host=h1}"`` (``"{}"`` unset); accept an object too."""
    if isinstance(value.raw, dict):
        return {key: item.text() for key, item in value.entries().items()}
    text = value.text().strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise CephDataError(value.stem, value.path, f"is {text!r}, expected a location such as '{{datacenter=dc1}}'")
    location = {}
    for pair in _comma_list(text[1:-1]):
        key, sep, item = pair.partition("=")
        if not sep or not key.strip():
            raise CephDataError(value.stem, value.path, f"has {pair!r}, expected key=value")
        location[key.strip()] = item.strip()
    return location


def mon_map(ceph: CephData) -> MonMap:
    """``ceph mon dump``; Pacific writes ``"disallowed_leaders: "`` and ``"removed_ranks: "`` with the colon."""
    doc = _document(ceph, "mon_dump")
    mons = []
    for item in doc.field("mons").items():
        location = item.optional("crush_location")
        mons.append(
            Monitor(
                name=item.field("name").text(),
                rank=item.field("rank").integer(),
                location={} if location is None else parse_crush_location(location),
            )
        )
    stretch = doc.optional("stretch_mode")
    tiebreaker = doc.optional("tiebreaker_mon")
    leaders = doc.optional("disallowed_leaders", "disallowed_leaders: ")
    return MonMap(
        fsid=doc.field("fsid").text(),
        epoch=doc.field("epoch").integer(),
        election_strategy=_optional_int(doc, "election_strategy", default=1),  # before Pacific: classic only
        stretch_mode=False if stretch is None else stretch.flag(),
        tiebreaker="" if tiebreaker is None else tiebreaker.text(),
        disallowed_leaders=() if leaders is None else _comma_list(leaders.text()),
        mons=tuple(mons),
    )


def quorum_names(ceph: CephData) -> tuple[str, ...]:
    return tuple(item.text() for item in _document(ceph, "quorum_status").field("quorum_names").items())


# --- OSD map -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StretchMode:
    enabled: bool
    bucket_count: int
    degraded: int  # non-zero while degraded: the number of site buckets pools need to peer
    recovering: int
    bucket_type_id: int  # CRUSH type id of the site buckets (8 = datacenter)


@dataclass(frozen=True)
class Pool:
    id: int
    name: str
    type_id: int  # 1 replicated, 3 erasure
    size: int
    min_size: int
    crush_rule: int
    peering_bucket_count: int
    mandatory_member: int | None  # CRUSH id of the bucket every PG must include (the surviving site)
    applications: tuple[str, ...]

    @property
    def replicated(self) -> bool:
        return self.type_id == 1


@dataclass(frozen=True)
class OsdMap:
    fsid: str
    stretch: StretchMode
    pools: tuple[Pool, ...]


def _pool(item: _Value) -> Pool:
    member = _optional_int(item, "peering_crush_bucket_mandatory_member", default=NO_CRUSH_ITEM)
    apps = item.optional("application_metadata")
    return Pool(
        id=item.field("pool").integer(),
        name=item.field("pool_name").text(),
        type_id=item.field("type").integer(),
        size=item.field("size").integer(),
        min_size=item.field("min_size").integer(),
        crush_rule=item.field("crush_rule").integer(),
        peering_bucket_count=_optional_int(item, "peering_crush_bucket_count", default=0),
        mandatory_member=None if member == NO_CRUSH_ITEM else member,
        applications=() if apps is None else tuple(sorted(apps.entries())),
    )


def osd_map(ceph: CephData) -> OsdMap:
    """``ceph osd dump``; without a ``stretch_mode`` block (before Pacific) stretch mode is off."""
    doc = _document(ceph, "osd_dump")
    block = doc.optional("stretch_mode")
    if block is None:
        stretch = StretchMode(False, 0, 0, 0, 0)
    else:
        stretch = StretchMode(
            enabled=block.field("stretch_mode_enabled").flag(),
            bucket_count=block.field("stretch_bucket_count").integer(),
            degraded=block.field("degraded_stretch_mode").integer(),
            recovering=block.field("recovering_stretch_mode").integer(),
            bucket_type_id=block.field("stretch_mode_bucket").integer(),
        )
    pools = tuple(_pool(item) for item in doc.field("pools").items())
    return OsdMap(fsid=doc.field("fsid").text(), stretch=stretch, pools=pools)


# --- CRUSH tree and rules ------------------------------------------------------------------------


@dataclass(frozen=True)
class CrushNode:
    id: int
    name: str
    type: str
    type_id: int
    children: tuple[int, ...]
    status: str | None  # OSDs only: "up", "down" or "destroyed"


class CrushTree:
    """``ceph osd tree``: buckets and OSDs, with the site (datacenter, zone, ...) each OSD lives in."""

    def __init__(self, nodes: list[CrushNode]) -> None:
        self.nodes = {node.id: node for node in nodes}
        self._parent = {child: node.id for node in nodes for child in node.children}

    def type_name(self, type_id: int) -> str:
        names = {node.type_id: node.type for node in self.nodes.values()}
        return names.get(type_id) or DEFAULT_CRUSH_TYPES.get(type_id, f"type{type_id}")

    def lineage(self, item: int) -> list[CrushNode]:
        """``item`` and the buckets above it, nearest first."""
        chain: list[CrushNode] = []
        while item in self.nodes and self.nodes[item] not in chain:
            chain.append(self.nodes[item])
            item = self._parent.get(item, NO_CRUSH_ITEM)
        return chain

    def ancestor(self, item: int, bucket_type: str) -> CrushNode | None:
        """The bucket of ``bucket_type`` holding ``item`` (or the item itself when it is one)."""
        return next((node for node in self.lineage(item) if node.type == bucket_type), None)

    def osds_under(self, bucket: int) -> list[CrushNode]:
        found, stack, seen = [], [bucket], set()
        while stack:
            item = stack.pop()
            if item in seen or item not in self.nodes:
                continue
            seen.add(item)
            node = self.nodes[item]
            if node.type == "osd":
                found.append(node)
            stack.extend(node.children)
        return sorted(found, key=lambda n: n.id)

    def sites(self, bucket_type: str) -> list[CrushNode]:
        """Buckets of the site type that hold at least one OSD (an arbiter location holds none)."""
        buckets = [n for n in self.nodes.values() if n.type == bucket_type and self.osds_under(n.id)]
        return sorted(buckets, key=lambda n: n.name)

    def site_of(self, osd: int, bucket_type: str) -> str | None:
        site = self.ancestor(osd, bucket_type)
        return site.name if site else None

    def is_up(self, osd: int) -> bool:
        node = self.nodes.get(osd)
        return node is not None and node.status == "up"


def crush_tree(ceph: CephData) -> CrushTree:
    nodes = []
    for item in _document(ceph, "osd_tree").field("nodes").items():
        children = item.optional("children")
        status = item.optional("status")
        nodes.append(
            CrushNode(
                id=item.field("id").integer(),
                name=item.field("name").text(),
                type=item.field("type").text(),
                type_id=item.field("type_id").integer(),
                children=() if children is None else tuple(c.integer() for c in children.items()),
                status=None if status is None else status.text(),
            )
        )
    return CrushTree(nodes)


@dataclass(frozen=True)
class RuleStep:
    op: str
    item: int | None  # "take" steps
    bucket_type: str | None  # choose/chooseleaf steps


@dataclass(frozen=True)
class CrushRule:
    id: int
    name: str
    steps: tuple[RuleStep, ...]


def crush_rules(ceph: CephData) -> dict[int, CrushRule]:
    """``ceph osd crush rule dump`` (a list of rules; a single rule object is accepted too)."""
    doc = _document(ceph, "crush_rule_dump")
    rules = {}
    for item in doc.items() if isinstance(doc.raw, list) else [doc]:
        steps = []
        for step in item.field("steps").items():
            take, kind = step.optional("item"), step.optional("type")
            steps.append(
                RuleStep(
                    op=step.field("op").text(),
                    item=None if take is None else take.integer(),
                    bucket_type=None if kind is None else kind.text(),
                )
            )
        rule = CrushRule(item.field("rule_id").integer(), item.field("rule_name").text(), tuple(steps))
        rules[rule.id] = rule
    return rules


def rule_sites(rule: CrushRule, tree: CrushTree, site_type: str) -> set[str]:
    """The sites a rule places copies in, for both documented stretch rule forms.

    Ceph's form takes each site bucket (``take dc1 / chooseleaf firstn 2 host / emit``, then dc2); Rook's takes
    the root and chooses the site type (``take default / choose firstn 0 zone / chooseleaf firstn 2 host``).
    A rule that only spreads over hosts under the root (``replicated_rule``) covers no site by design.
    """
    covered: set[str] = set()
    taken: int | None = None
    for step in rule.steps:
        if step.op == "take" and step.item is not None:
            taken = step.item
            site = tree.ancestor(taken, site_type)
            if site is not None:
                covered.add(site.name)
        elif step.op in _CHOOSE_OPS and step.bucket_type == site_type and taken is not None:
            covered.update(s.name for s in tree.sites(site_type) if taken in {n.id for n in tree.lineage(s.id)})
    return covered


# --- health ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthCheck:
    code: str
    severity: str  # HEALTH_WARN / HEALTH_ERR
    summary: str
    count: int
    details: tuple[str, ...]
    muted: bool


@dataclass(frozen=True)
class Health:
    status: str
    checks: tuple[HealthCheck, ...]
    source: str  # file read: health_detail.json, or status.json when only that was captured


def health(ceph: CephData) -> Health:
    """``ceph health detail`` (with details), else the ``health`` object of ``ceph status``."""
    if "health_detail" in ceph.outputs:
        doc, source = _document(ceph, "health_detail"), "health_detail.json"
    else:
        doc, source = _document(ceph, "status").field("health"), "status.json"
    checks = []
    for code, item in sorted(doc.field("checks").entries().items()):
        summary = item.field("summary")
        details = item.optional("detail")
        muted = item.optional("muted")
        checks.append(
            HealthCheck(
                code=code,
                severity=item.field("severity").text(),
                summary=summary.field("message").text(),
                count=_optional_int(summary, "count", default=0),
                details=() if details is None else tuple(d.field("message").text() for d in details.items()),
                muted=False if muted is None else muted.flag(),
            )
        )
    return Health(status=doc.field("status").text(), checks=tuple(checks), source=source)


# --- heartbeat ping times --------------------------------------------------------------------------


@dataclass(frozen=True)
class Ping:
    """One ``dump_osd_network`` entry: heartbeat round trips from one OSD to another on one interface (ms)."""

    source: str  # file stem the entry came from
    from_osd: int
    to_osd: int
    interface: str  # "front" (public network) or "back" (cluster network)
    avg_1min: float
    avg_5min: float
    avg_15min: float
    max_ms: float  # highest single ping over the 15-minute window
    stale: bool
    last_update: str  # ctime() of the daemon's host, without a time zone

    @property
    def last_update_time(self) -> datetime | None:
        try:
            return datetime.strptime(self.last_update, "%a %b %d %H:%M:%S %Y")
        except ValueError:
            return None


def network_stems(ceph: CephData) -> list[str]:
    return sorted(s for s in ceph.outputs if s == NETWORK_STEM or s.startswith(NETWORK_STEM + "."))


def pings(ceph: CephData, stem: str) -> list[Ping]:
    """Entries of one dump. ``min`` is not read: Pacific's OSD admin socket prints the maximum there."""
    found = []
    for item in _document(ceph, stem).field("entries").items():
        average, peak = item.field("average"), item.field("max")
        stale, updated = item.optional("stale"), item.optional("last update")
        found.append(
            Ping(
                source=stem,
                from_osd=item.field("from osd").integer(),
                to_osd=item.field("to osd").integer(),
                interface=item.field("interface").text(),
                avg_1min=average.field("1min").number(),
                avg_5min=average.field("5min").number(),
                avg_15min=average.field("15min").number(),
                max_ms=max(peak.field(w).number() for w in ("1min", "5min", "15min")),
                stale=False if stale is None else stale.flag(),
                last_update="" if updated is None else updated.text(),
            )
        )
    return found


def stretch_degraded(ceph: CephData) -> tuple[bool | None, str]:
    """Whether the stretched cluster runs on one site only (stretch mode degraded or still recovering), and in words.

    None when it cannot be told: no ``osd_dump`` was read, or it is malformed (the words say which). A cluster
    without stretch mode is not degraded: there is no second site to lose.
    """
    if "osd_dump" not in ceph.outputs:
        return None, "stretch state unknown: no Ceph osd_dump was read"
    try:
        stretch = osd_map(ceph).stretch
    except CephDataError as exc:
        return None, f"stretch state unknown: {exc}"
    if not stretch.enabled:
        return False, "stretch mode is not enabled"
    sites = f"pools peer with only {stretch.degraded} of {stretch.bucket_count} sites"
    if stretch.recovering:
        return True, f"stretch mode is recovering ({sites} until the lost site has caught up)"
    if stretch.degraded:
        return True, f"stretch mode is degraded ({sites})"
    return False, f"stretch mode is healthy across {stretch.bucket_count} sites"
