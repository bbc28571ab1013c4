"""Prints how long a snapshot audit of a 5,000-VM estate takes, stage by stage, and the peak RSS.

Targets (issue 2): checks < 2 s, HTML < 3 s, PDF < 30 s, peak RSS < 500 MB.
Usage: .venv/bin/python benchmarks/bench_audit.py [--apps 1000] [--vms-per-app 5] [--disks-per-vm 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from functools import partial
from pathlib import Path

from estate_generator import write_estate

from auditor.config import AuditConfig
from auditor.engine import audit, build_context
from auditor.report.html import write_html
from auditor.report.model import Report
from auditor.report.pdf import write_pdf
from auditor.snapshot import load_snapshot

SAMPLE_CEPH = Path(__file__).resolve().parent.parent / "samples" / "healthy" / "ceph"


def run_checks(estate) -> str:
    return json.dumps(audit(build_context(estate, AuditConfig())).to_json(), default=str)


def rebuild(canonical: str) -> Report:
    return Report.from_json(json.loads(canonical))


def timed(label: str, action):
    """Runs one stage and prints its time and the process's peak RSS so far (which stage sets the peak)."""
    start = time.perf_counter()
    result = action()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{label:<28} {time.perf_counter() - start:8.2f} s   peak RSS so far {peak_mb:6.0f} MB")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--vms-per-app", type=int, default=5)
    parser.add_argument("--disks-per-vm", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drauditor-bench-") as tmp:
        root = Path(tmp) / "estate"
        counts = timed(
            "generate snapshot",
            lambda: write_estate(
                root,
                apps=args.apps,
                vms_per_app=args.vms_per_app,
                disks_per_vm=args.disks_per_vm,
                ceph_from=SAMPLE_CEPH,
            ),
        )
        print(f"estate: {counts['vms']} VMs, {counts['drpcs']} DRPCs, {counts['pvcs']} PVCs")
        estate = timed("load snapshot", lambda: load_snapshot(root))
        canonical = timed("checks (+ report model)", partial(run_checks, estate))
        del estate  # as engine.audit_released does: only the report's JSON outlives the checks
        report = timed("report rebuilt from JSON", partial(rebuild, canonical))
        del canonical
        print(f"findings: {len(report.findings)} ({report.summary}), verdict {report.verdict}")
        out = Path(tmp) / "out"
        out.mkdir()
        timed("HTML", lambda: write_html(report, out / "report.html"))
        timed("PDF", lambda: write_pdf(report, out / "report.pdf"))
        print(
            f"HTML size {(out / 'report.html').stat().st_size / 1e6:.1f} MB, "
            f"PDF size {(out / 'report.pdf').stat().st_size / 1e6:.1f} MB"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'peak RSS':<28} {peak_mb:8.0f} MB")


if __name__ == "__main__":
    main()
