"""Derive a heartbeat dump that emulates a WAN between the sites from a captured ``dump_osd_network`` output.

The reference stretch cluster ran on one host, so its inter-site round trips are loopback figures (about 1 ms).
To show the inter-site RTT check failing on real shapes, this adds a fixed round trip to every figure of every
cross-site entry (average, min and max of each window, and last), which is what a WAN delay such as
``tc qdisc add dev <uplink> root netem delay 7ms`` on both sites adds to a ping. Same-site entries, the
structure, the timestamps and the order stay exactly as captured. The output is deterministic.

    python samples/tools/derive_wan_latency.py --osd-tree OSD_TREE.json --wan-rtt-ms 14 INPUT.json OUTPUT.json
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

from auditor.ceph import crush_tree
from auditor.inventory import CephData

FIGURES = ("average", "min", "max")
WINDOWS = ("1min", "5min", "15min")


def derive(dump: dict[str, Any], osd_tree: dict[str, Any], wan_rtt_ms: float, site_type: str = "datacenter") -> dict:
    """A copy of ``dump`` with ``wan_rtt_ms`` added to the figures of every entry between two sites."""
    tree = crush_tree(CephData(outputs={"osd_tree": osd_tree}))
    derived = copy.deepcopy(dump)
    for entry in derived["entries"]:
        ends = tree.site_of(entry["from osd"], site_type), tree.site_of(entry["to osd"], site_type)
        if None in ends or ends[0] == ends[1]:
            continue
        for figure in FIGURES:
            for window in WINDOWS:
                entry[figure][window] = round(entry[figure][window] + wan_rtt_ms, 3)
        entry["last"] = round(entry["last"] + wan_rtt_ms, 3)
    return derived


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--osd-tree", type=Path, required=True, help="ceph osd tree -f json of the same cluster")
    parser.add_argument("--wan-rtt-ms", type=float, required=True, help="round trip to add between sites (ms)")
    parser.add_argument("--site-type", default="datacenter", help="CRUSH bucket type of the sites")
    parser.add_argument("input", type=Path, help="captured dump_osd_network output")
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    dump = json.loads(args.input.read_text(encoding="utf-8"))
    tree = json.loads(args.osd_tree.read_text(encoding="utf-8"))
    result = derive(dump, tree, args.wan_rtt_ms, args.site_type)
    args.output.write_text(json.dumps(result, indent=4) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
