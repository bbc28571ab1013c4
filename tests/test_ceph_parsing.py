"""auditor.ceph reads real Ceph 16.2.15 outputs (tests/fixtures/ceph) and names the file and field of bad ones.

Where a test needs another shape (a newer key spelling, a Rook-style rule, a wrong type), it changes the
captured data in memory and says so.
"""

from __future__ import annotations

import pytest
from helpers import ceph_fixture

from auditor.ceph import (
    CephDataError,
    crush_rules,
    crush_tree,
    health,
    mon_map,
    network_stems,
    osd_map,
    pings,
    quorum_names,
    rule_sites,
)
from auditor.inventory import CephData


def data(scenario: str) -> CephData:
    return CephData(outputs=ceph_fixture(scenario))


def test_mon_dump_with_pacific_key_quirks() -> None:
    mons = mon_map(data("healthy"))
    assert mons.fsid == "ffbc25fa-5bad-4433-990a-11c9f489f705"
    assert (mons.election_strategy, mons.election_strategy_name) == (3, "connectivity")
    assert mons.stretch_mode is True and mons.tiebreaker == "arb"
    assert mons.disallowed_leaders == ("arb",)  # read from the key "disallowed_leaders: "
    assert [(m.name, m.rank, m.location) for m in mons.mons] == [
        ("dc1a", 0, {"datacenter": "dc1"}),
        ("dc1b", 1, {"datacenter": "dc1"}),
        ("dc2a", 2, {"datacenter": "dc2"}),
        ("dc2b", 3, {"datacenter": "dc2"}),
        ("arb", 4, {"datacenter": "arbiter"}),
    ]


def test_mon_dump_newer_spellings_read_the_same() -> None:
    outputs = ceph_fixture("healthy")
    dump = outputs["mon_dump"]
    dump["disallowed_leaders"] = dump.pop("disallowed_leaders: ")  # key without the suffix (newer releases)
    dump["mons"][0]["crush_location"] = {"datacenter": "dc1"}  # object form
    dump["mons"][1]["crush_location"] = "{datacenter=dc1,host=h1}"
    mons = mon_map(CephData(outputs=outputs))
    assert mons.disallowed_leaders == ("arb",)
    assert mons.mons[0].location == {"datacenter": "dc1"}
    assert mons.mons[1].location == {"datacenter": "dc1", "host": "h1"}


def test_mon_dump_before_stretch_mode_keys_existed() -> None:
    outputs = ceph_fixture("healthy")
    for key in ("election_strategy", "stretch_mode", "tiebreaker_mon", "disallowed_leaders: ", "removed_ranks: "):
        del outputs["mon_dump"][key]  # as Octopus writes it
    for mon in outputs["mon_dump"]["mons"]:
        del mon["crush_location"]
    mons = mon_map(CephData(outputs=outputs))
    assert (mons.election_strategy_name, mons.stretch_mode, mons.tiebreaker) == ("classic", False, "")
    assert all(m.location == {} for m in mons.mons)


def test_unset_crush_location_is_empty() -> None:
    outputs = ceph_fixture("healthy")
    outputs["mon_dump"]["mons"][4]["crush_location"] = "{}"
    assert mon_map(CephData(outputs=outputs)).mons[4].location == {}


def test_quorum_names() -> None:
    assert quorum_names(data("degraded")) == ("dc1a", "dc1b", "arb")


def test_osd_dump_stretch_block_and_pools() -> None:
    healthy, degraded = osd_map(data("healthy")), osd_map(data("degraded"))
    assert healthy.stretch.enabled and healthy.stretch.bucket_count == 2 and healthy.stretch.bucket_type_id == 8
    assert (healthy.stretch.degraded, healthy.stretch.recovering) == (0, 0)
    assert (degraded.stretch.degraded, degraded.stretch.recovering) == (1, 0)
    assert [(p.name, p.size, p.min_size, p.crush_rule, p.mandatory_member) for p in healthy.pools] == [
        ("device_health_metrics", 4, 2, 1, None),
        ("rbdpool", 4, 2, 1, None),
    ]
    assert {p.mandatory_member for p in degraded.pools} == {-4}  # CRUSH id of the surviving dc1
    assert healthy.pools[0].applications == ("mgr_devicehealth",) and healthy.pools[0].replicated


def test_osd_dump_without_stretch_block_means_stretch_off() -> None:
    outputs = ceph_fixture("healthy")
    del outputs["osd_dump"]["stretch_mode"]
    assert osd_map(CephData(outputs=outputs)).stretch.enabled is False


def test_crush_tree_sites_and_osd_state() -> None:
    tree = crush_tree(data("degraded"))
    assert [s.name for s in tree.sites("datacenter")] == ["dc1", "dc2"]  # the arbiter has no bucket
    assert {osd: tree.site_of(osd, "datacenter") for osd in range(4)} == {0: "dc1", 1: "dc1", 2: "dc2", 3: "dc2"}
    assert [tree.is_up(osd) for osd in range(4)] == [True, True, False, False]
    assert tree.type_name(8) == "datacenter" and tree.nodes[-4].name == "dc1"


def test_stretch_rule_spans_both_sites_and_replicated_rule_none() -> None:
    ceph = data("misconfigured_pools_health_ok")
    rules, tree = crush_rules(ceph), crush_tree(ceph)
    assert {r.id: r.name for r in rules.values()} == {0: "replicated_rule", 1: "stretch_rule"}
    assert rule_sites(rules[1], tree, "datacenter") == {"dc1", "dc2"}
    assert rule_sites(rules[0], tree, "datacenter") == set()


def test_rook_style_rule_that_chooses_the_site_type_spans_both_sites() -> None:
    outputs = ceph_fixture("healthy")
    outputs["crush_rule_dump"] = {  # one rule object, built in memory in the form Rook writes
        "rule_id": 2,
        "rule_name": "default_stretch_cluster_rule",
        "steps": [
            {"op": "take", "item": -1, "item_name": "default"},
            {"op": "choose_firstn", "num": 0, "type": "datacenter"},
            {"op": "chooseleaf_firstn", "num": 2, "type": "host"},
            {"op": "emit"},
        ],
    }
    ceph = CephData(outputs=outputs)
    assert rule_sites(crush_rules(ceph)[2], crush_tree(ceph), "datacenter") == {"dc1", "dc2"}


def test_health_detail_and_status_fallback() -> None:
    report = health(data("degraded"))
    assert report.status == "HEALTH_WARN" and report.source == "health_detail.json"
    codes = {c.code: c for c in report.checks}
    assert set(codes) == {
        "DEGRADED_STRETCH_MODE",
        "MON_DOWN",
        "OSD_DATACENTER_DOWN",
        "OSD_DOWN",
        "OSD_HOST_DOWN",
        "PG_DEGRADED",
    }
    assert codes["OSD_DATACENTER_DOWN"].details == ("datacenter dc2 (root=default) (2 osds) is down",)
    outputs = ceph_fixture("degraded")
    del outputs["health_detail"]
    fallback = health(CephData(outputs=outputs))
    assert fallback.source == "status.json" and {c.code for c in fallback.checks} == set(codes)
    assert all(c.details == () for c in fallback.checks)  # ceph status carries no detail lines


def test_heartbeat_dumps() -> None:
    ceph = data("healthy")
    assert network_stems(ceph) == [
        "osd_network.mgr.x",
        "osd_network.osd.0",
        "osd_network.osd.1",
        "osd_network.osd.2",
        "osd_network.osd.3",
    ]
    entries = pings(ceph, "osd_network.osd.0")
    assert len(entries) == 6 and len(pings(ceph, "osd_network.mgr.x")) == 24
    front = next(e for e in entries if (e.to_osd, e.interface) == (3, "front"))
    assert (front.from_osd, front.avg_1min, front.avg_5min, front.avg_15min, front.max_ms) == (
        0,
        1.241,
        1.241,
        1.241,
        8.343,
    )
    assert front.last_update == "Wed Nov 25 17:26:14 2026" and front.last_update_time is not None
    assert not front.stale


@pytest.mark.parametrize(
    ("stem", "change", "message"),
    [
        (
            "osd_dump",
            lambda d: d["pools"][1].__setitem__("size", "4"),
            "osd_dump.json: pools[1].size is a string ('4'), expected an integer",
        ),
        (
            "osd_dump",
            lambda d: d["stretch_mode"].__setitem__("degraded_stretch_mode", True),
            "osd_dump.json: stretch_mode.degraded_stretch_mode is a boolean (True), expected an integer",
        ),
        ("osd_dump", lambda d: d.pop("pools"), "osd_dump.json: pools is missing"),
        (
            "mon_dump",
            lambda d: d["mons"][0].__setitem__("crush_location", "datacenter=dc1"),
            "mon_dump.json: mons[0].crush_location is 'datacenter=dc1', expected a location",
        ),
        ("mon_dump", lambda d: d.__setitem__("mons", {}), "mon_dump.json: mons is an object ({}), expected a list"),
        ("osd_tree", lambda d: d["nodes"][3].__setitem__("id", None), "osd_tree.json: nodes[3].id is null"),
    ],
)
def test_wrong_types_name_file_and_field(stem, change, message) -> None:
    outputs = ceph_fixture("healthy")
    change(outputs[stem])
    reader = {"osd_dump": osd_map, "mon_dump": mon_map, "osd_tree": crush_tree}[stem]
    with pytest.raises(CephDataError) as raised:
        reader(CephData(outputs=outputs))
    assert str(raised.value).startswith(message)
    assert raised.value.file == f"{stem}.json"


def test_wrong_type_in_a_heartbeat_entry() -> None:
    outputs = ceph_fixture("healthy")
    outputs["osd_network.osd.0"]["entries"][2]["average"]["5min"] = "0.5"
    with pytest.raises(CephDataError, match=r"osd_network.osd.0.json: entries\[2\].average.5min is a string"):
        pings(CephData(outputs=outputs), "osd_network.osd.0")


def test_missing_document_is_a_ceph_data_error() -> None:
    with pytest.raises(CephDataError, match=r"osd_tree\.json"):
        crush_tree(CephData())
