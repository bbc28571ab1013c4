"""Runs the lab by hand: ``python -m tests.lab [SNAPSHOT_DIR]`` starts a hub and two managed clusters, loads the
snapshot if given, prints timings, memory and the kubeconfig to use (e.g. with Debian's kubectl 1.20), and keeps
everything running until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

from .launcher import Lab
from .loader import load


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__)
    parser.add_argument("snapshot", nargs="?", type=Path, help="snapshot directory to load (docs/contract.md)")
    args = parser.parse_args()
    with Lab() as lab:
        print("started in", ", ".join(f"{step} {seconds:.1f} s" for step, seconds in lab.timings.items()))
        if args.snapshot:
            began = time.monotonic()
            for cluster, counts in load(lab, args.snapshot).items():
                print(f"{cluster}: {counts}")
            print(f"loaded {args.snapshot} in {time.monotonic() - began:.1f} s")
        print("memory:", ", ".join(f"{label} {mib:.0f} MiB" for label, mib in lab.rss_mib().items()))
        print(f"kubeconfig: {lab.kubeconfig} (contexts: {', '.join(lab.clusters)}); Ctrl-C stops the lab")
        try:
            signal.pause()
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
            print("stopping")


main()
