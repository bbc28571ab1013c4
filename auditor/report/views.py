"""Renderer views: plain data the HTML and PDF templates read, derived from ``Report.findings`` only.

Every function here is pure and tolerant: evidence comes from checks written by others (and from
third-party packs), so a missing or oddly typed field becomes ``None`` and a finding that does not
have the expected shape is left out of the view (it still appears in the findings section).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from auditor import lenient
from auditor.history import AppDrills, History, PastDrill
from auditor.model import CheckMeta, Finding, Status, WaiverMark
from auditor.report.model import Report

VM_COVERAGE = "vm_dr_coverage"
INTERSITE_RTT = "intersite_rtt"
LAST_TEST_FAILOVER = "last_test_failover"

# Worst first: the order tables and per-check counts use.
STATUS_ORDER = (Status.FAIL, Status.ERROR, Status.WARN, Status.SKIP, Status.PASS)
_STATUS_RANK = {status: rank for rank, status in enumerate(STATUS_ORDER)}

# How a VM finding's status reads in the coverage view: the check's own verdict, not a re-derivation.
COVERAGE_BUCKETS = (
    ("protected", "Protected", (Status.PASS,)),
    ("at-risk", "At risk", (Status.WARN,)),
    ("unprotected", "Unprotected", (Status.FAIL,)),
    ("not-evaluated", "Not evaluated", (Status.ERROR, Status.SKIP)),
)
_BUCKET_OF = {status: key for key, _, statuses in COVERAGE_BUCKETS for status in statuses}


@dataclass(frozen=True)
class StatusCount:
    status: str
    count: int


@dataclass(frozen=True)
class EvidenceItem:
    key: str
    text: str
    nested: bool  # dicts and lists are shown as JSON text, in a monospace block


@dataclass(frozen=True)
class FindingView:
    status: str
    severity: str
    cluster: str
    resource: str
    message: str
    evidence: tuple[EvidenceItem, ...]
    waiver: WaiverMark | None = None  # shown as a WAIVED badge: the finding does not decide the verdict
    baselined: bool = False


@dataclass(frozen=True)
class CheckSection:
    meta: CheckMeta
    anchor: str
    counts: tuple[StatusCount, ...]  # worst first, zero counts left out
    attention: tuple[FindingView, ...]  # shown findings that did not pass, worst first
    passing: tuple[FindingView, ...]  # shown findings that passed
    omitted: tuple[StatusCount, ...]  # findings not printed because of the detail limit
    lists_vms: bool  # its VMs are also listed in the coverage appendix

    @property
    def total(self) -> int:
        return sum(c.count for c in self.counts)

    @property
    def omitted_total(self) -> int:
        return sum(c.count for c in self.omitted)

    def count(self, status: str) -> int:
        return next((c.count for c in self.counts if c.status == status), 0)


@dataclass(frozen=True)
class VmRow:
    cluster: str
    namespace: str
    name: str
    status: str
    drpc: str | None
    drpolicy: str | None
    vrg: str | None
    placement_cluster: str | None
    disks_protected: int
    disks_total: int
    problems: tuple[str, ...]


@dataclass(frozen=True)
class ClusterVms:
    cluster: str
    anchor: str
    rows: tuple[VmRow, ...]


@dataclass(frozen=True)
class AppCoverage:
    drpc: str | None  # None: the VMs no DRPC protects
    drpolicy: str | None
    counts: dict[str, int]  # coverage bucket key -> VMs

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Latency:
    label: str
    avg_1min_ms: float | None
    avg_5min_ms: float | None
    avg_15min_ms: float | None
    max_ms: float | None
    osd_pairs: int | None


@dataclass(frozen=True)
class RttPair:
    sites: tuple[str, str]
    status: str
    latency: Latency
    threshold_ms: float | None
    threshold_source: str | None
    same_site: tuple[Latency, ...]

    @property
    def label(self) -> str:
        return f"{self.sites[0]} ↔ {self.sites[1]}"


@dataclass(frozen=True)
class FailoverTest:
    drpc: str
    status: str
    last_success: str | None
    source: str | None
    age_days: float | None
    max_age_days: int | None
    rto_seconds: float | None
    drills: int


@dataclass(frozen=True)
class Objective:
    """One recovery objective of a drill: what it achieved against the target configured when it ran."""

    name: str  # RTO | RPO
    achieved: float | None  # seconds; None when the drill did not measure it
    target: float | None
    result: str  # met | missed | no target | not measured


@dataclass(frozen=True)
class DrillView:
    """One application's drills: the newest one in detail, then its history newest first."""

    app: AppDrills
    anchor: str
    objectives: tuple[Objective, ...]
    history: tuple[PastDrill, ...]  # newest first

    @property
    def latest(self) -> PastDrill:
        return self.app.latest


@dataclass(frozen=True)
class Headline:
    label: str
    value: str
    detail: str
    css_class: str


@dataclass(frozen=True)
class Setting:
    key: str  # dotted path in the configuration, e.g. thresholds.rtt_ms_max
    value: str


@dataclass(frozen=True)
class ReportView:
    """Everything the templates show besides the report's own fields, built once per render."""

    verdict_reason: str
    status_breakdown: tuple[StatusCount, ...]
    sections: tuple[CheckSection, ...]
    vm_clusters: tuple[ClusterVms, ...]
    app_coverage: tuple[AppCoverage, ...]
    rtt_pairs: tuple[RttPair, ...]
    failover_tests: tuple[FailoverTest, ...]  # worst first, at most the detail limit
    failover_omitted: int
    headlines: tuple[Headline, ...]
    inputs: tuple[tuple[str, str], ...]  # (input, SHA-256), sorted
    settings: tuple[Setting, ...]  # the configuration the audit used, as recorded (redacted) in its provenance
    drills: tuple[DrillView, ...] = ()  # per application, at most the detail limit
    drills_omitted: int = 0

    @property
    def vm_count(self) -> int:
        return sum(len(group.rows) for group in self.vm_clusters)


def build(report: Report, *, detail_limit: int | None = None) -> ReportView:
    """All views of one report; ``detail_limit`` caps per-finding listings (the PDF's page budget), not the appendix."""
    vms = vm_rows(report)
    pairs = rtt_pairs(report)
    tests = failover_tests(report)
    drills = drill_views(report.history)
    return ReportView(
        verdict_reason=verdict_reason(report),
        status_breakdown=status_breakdown(report),
        sections=check_sections(report, detail_limit=detail_limit),
        vm_clusters=vms_by_cluster(vms),
        app_coverage=coverage_of(vms),
        rtt_pairs=pairs,
        failover_tests=tests[:detail_limit],
        failover_omitted=len(tests) - len(tests[:detail_limit]),
        headlines=headlines(vms, pairs, tests),
        inputs=input_digests(report),
        settings=settings(report.provenance.config) if report.provenance else (),
        drills=drills[:detail_limit],
        drills_omitted=len(drills) - len(drills[:detail_limit]),
    )


def verdict_reason(report: Report) -> str:
    """The verdict rule of contract section 3, stated with this report's numbers."""
    fail_on = report.fail_on
    judged = [f for f in report.findings if not f.accepted]
    failing = [f for f in judged if f.status is Status.FAIL]
    gating = sum(1 for f in failing if f.severity.rank >= fail_on.rank)
    errors = sum(1 for f in judged if f.status is Status.ERROR)
    below = f" ({len(failing) - gating:,} more below that severity)" if len(failing) > gating else ""
    counts = report.gate_counts
    accepted = counts.fail + counts.error - counts.new
    aside = (
        f" {accepted:,} failing or erroring {_plural(accepted, 'finding')} accepted by a waiver or the baseline "
        f"{'is' if accepted == 1 else 'are'} reported but not counted."
        if accepted
        else ""
    )
    if report.verdict == "not-ready":
        return f"{gating:,} failing {_plural(gating, 'finding')} at or above {fail_on.value} severity{below}.{aside}"
    if report.verdict == "incomplete":
        return (
            f"No failing finding at or above {fail_on.value} severity{below}, but {errors:,} "
            f"{_plural(errors, 'result')} could not be evaluated.{aside}"
        )
    return f"No failing finding at or above {fail_on.value} severity{below}, and every check was evaluated.{aside}"


def status_breakdown(report: Report) -> tuple[StatusCount, ...]:
    counts = Counter(f.status for f in report.findings)
    return tuple(StatusCount(status.value, counts.get(status, 0)) for status in Status)


def check_sections(report: Report, *, detail_limit: int | None = None) -> tuple[CheckSection, ...]:
    sections = []
    for meta, findings in report.findings_by_check():
        shown = findings[:detail_limit]
        sections.append(
            CheckSection(
                meta=meta,
                anchor=f"check-{_anchor(meta.id)}",
                counts=_counts(findings),
                attention=tuple(finding_view(f) for f in shown if f.status is not Status.PASS),
                passing=tuple(finding_view(f) for f in shown if f.status is Status.PASS),
                omitted=_counts(findings[len(shown) :]),
                lists_vms=meta.id == VM_COVERAGE,
            )
        )
    return tuple(sections)


def finding_view(finding: Finding) -> FindingView:
    return FindingView(
        status=finding.status.value,
        severity=finding.severity.value,
        cluster=finding.cluster or "",
        resource=finding.resource.display() if finding.resource else "",
        message=finding.message,
        evidence=evidence_items(finding.evidence),
        waiver=finding.waiver,
        baselined=finding.baselined,
    )


# A finding's evidence can hold a whole estate (peer_capacity lists every VM it sized); printed in full, one such
# value costs hundreds of MB of page layout. HTML and PDF show the start of it; report.json always holds all of it.
EVIDENCE_TEXT_LIMIT = 2000


def evidence_items(evidence: dict[str, Any]) -> tuple[EvidenceItem, ...]:
    """Scalars as text, nested values as compact JSON, each cut at EVIDENCE_TEXT_LIMIT; templates escape them all."""
    items = []
    for key, value in evidence.items():
        nested = isinstance(value, dict | list | tuple)
        items.append(EvidenceItem(str(key), _shortened(_json(value) if nested else _scalar(value)), nested))
    return tuple(items)


def _shortened(text: str) -> str:
    if len(text) <= EVIDENCE_TEXT_LIMIT:
        return text
    return f"{text[:EVIDENCE_TEXT_LIMIT]} … ({len(text):,} characters in all: the whole value is in report.json)"


def input_digests(report: Report) -> tuple[tuple[str, str], ...]:
    """Every input's digest: the provenance's list (estate, config file, evidence store) when the report has one."""
    digests = report.provenance.inputs if report.provenance else report.input_digests
    return tuple(sorted(digests.items()))


def settings(values: dict[str, Any], prefix: str = "") -> tuple[Setting, ...]:
    """A nested configuration as one row per setting, keyed by its dotted path; lists and empty maps as JSON."""
    rows: list[Setting] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.extend(settings(value, f"{name}."))
        else:
            nested = isinstance(value, dict | list | tuple)
            rows.append(Setting(name, _json(value) if nested else _scalar(value)))
    return tuple(rows)


def vm_rows(report: Report) -> tuple[VmRow, ...]:
    """One row per VirtualMachine the coverage check judged, ordered for lookup (cluster, namespace, name)."""
    rows = []
    for finding in _of_check(report, VM_COVERAGE):
        ev = finding.evidence
        vm = lenient.mapping(ev.get("vm"))
        ref = finding.resource if finding.resource and finding.resource.kind == "VirtualMachine" else None
        name = ref.name if ref else lenient.text(vm.get("name"))
        if not name:
            continue  # a check-level error, not a VM
        disks = [d for d in lenient.items(ev.get("disks")) if isinstance(d, dict)]
        rows.append(
            VmRow(
                cluster=finding.cluster or lenient.text(vm.get("cluster")) or "",
                namespace=(ref.namespace if ref else lenient.text(vm.get("namespace"))) or "",
                name=name,
                status=finding.status.value,
                drpc=lenient.text(ev.get("drpc")),
                drpolicy=lenient.text(ev.get("drpolicy")),
                vrg=lenient.text(ev.get("vrg")),
                placement_cluster=lenient.text(ev.get("placement_cluster")),
                disks_protected=sum(1 for d in disks if d.get("protected") is True),
                disks_total=len(disks),
                problems=tuple(str(p) for p in lenient.items(ev.get("problems"))),
            )
        )
    return tuple(sorted(rows, key=lambda r: (r.cluster, r.namespace, r.name)))


def vms_by_cluster(rows: tuple[VmRow, ...]) -> tuple[ClusterVms, ...]:
    clusters: dict[str, list[VmRow]] = {}
    for row in rows:
        clusters.setdefault(row.cluster, []).append(row)
    return tuple(
        ClusterVms(cluster or "(cluster unknown)", f"vms-{_anchor(cluster or 'unknown')}", tuple(members))
        for cluster, members in clusters.items()
    )


def app_coverage(report: Report) -> tuple[AppCoverage, ...]:
    return coverage_of(vm_rows(report))


def coverage_of(rows: tuple[VmRow, ...]) -> tuple[AppCoverage, ...]:
    """VMs per DRPC by coverage bucket; the VMs no DRPC protects come first, then the worst-covered DRPCs."""
    counts: dict[str | None, Counter[str]] = {}
    policies: dict[str | None, str | None] = {}
    for row in rows:
        counts.setdefault(row.drpc, Counter())[_BUCKET_OF[Status(row.status)]] += 1
        policies.setdefault(row.drpc, row.drpolicy)
    apps = [
        AppCoverage(drpc, policies[drpc], {key: bucket.get(key, 0) for key, _, _ in COVERAGE_BUCKETS})
        for drpc, bucket in counts.items()
    ]
    return tuple(sorted(apps, key=lambda a: (a.drpc is not None, -(a.total - a.counts["protected"]), a.drpc or "")))


def rtt_pairs(report: Report) -> tuple[RttPair, ...]:
    pairs = []
    for finding in _of_check(report, INTERSITE_RTT):
        ev = finding.evidence
        sites = [str(s) for s in lenient.items(ev.get("sites"))]
        if len(sites) != 2:
            continue  # e.g. "no heartbeat data": shown in the findings section only
        same_site = lenient.mapping(ev.get("same_site"))
        pairs.append(
            RttPair(
                sites=(sites[0], sites[1]),
                status=finding.status.value,
                latency=_latency(f"{sites[0]} ↔ {sites[1]}", ev),
                threshold_ms=lenient.number(ev.get("threshold_ms")),
                threshold_source=lenient.text(ev.get("threshold_source")),
                same_site=tuple(
                    _latency(f"within {site}", lenient.mapping(values)) for site, values in sorted(same_site.items())
                ),
            )
        )
    return tuple(sorted(pairs, key=lambda p: p.sites))


def failover_tests(report: Report) -> tuple[FailoverTest, ...]:
    tests = []
    for finding in _of_check(report, LAST_TEST_FAILOVER):
        ev = finding.evidence
        drpc = lenient.text(ev.get("drpc")) or (finding.resource.display() if finding.resource else None)
        if not drpc:
            continue
        max_age = lenient.number(ev.get("max_age_days"))
        tests.append(
            FailoverTest(
                drpc=drpc,
                status=finding.status.value,
                last_success=lenient.text(ev.get("last_success")),
                source=lenient.text(ev.get("source")),
                age_days=lenient.number(ev.get("age_days")),
                max_age_days=int(max_age) if max_age is not None else None,
                rto_seconds=lenient.number(ev.get("rto_seconds")),
                drills=len(lenient.items(ev.get("drills"))),
            )
        )
    return tuple(sorted(tests, key=lambda t: (_STATUS_RANK[Status(t.status)], t.drpc)))


def drill_views(history: History | None) -> tuple[DrillView, ...]:
    """Each application with a drill on record, in the history's order (namespace/name)."""
    if history is None:
        return ()
    views = []
    for app in history.drills:
        details, latest = app.latest_details, app.latest
        views.append(
            DrillView(
                app=app,
                anchor=f"drill-{_anchor(app.application)}",
                objectives=(
                    objective("RTO", latest.rto_seconds, details.rto_target if details else None),
                    objective("RPO", latest.rpo_seconds, details.rpo_target if details else None),
                ),
                history=tuple(reversed(app.drills)),
            )
        )
    return tuple(views)


def objective(name: str, achieved: float | None, target: float | None) -> Objective:
    """Met when the drill measured the objective within its target; a drill that measured nothing missed nothing."""
    if target is None:
        result = "no target"
    elif achieved is None:
        result = "not measured"
    else:
        result = "met" if achieved <= target else "missed"
    return Objective(name, achieved, target, result)


def rto_targets(history: History) -> dict[str, float]:
    """Each application's RTO target as its newest drill recorded it (application -> seconds)."""
    return {
        app.application: app.latest_details.rto_target
        for app in history.drills
        if app.latest_details is not None and app.latest_details.rto_target is not None
    }


def headlines(
    vms: tuple[VmRow, ...], pairs: tuple[RttPair, ...], tests: tuple[FailoverTest, ...]
) -> tuple[Headline, ...]:
    """The three numbers an executive reads first; a figure without data is left out, not shown as zero."""
    lines = []
    if vms:
        protected = sum(1 for row in vms if row.status == Status.PASS.value)
        unprotected = sum(1 for row in vms if row.drpc is None)
        lines.append(
            Headline(
                "VMs protected",
                f"{protected:,} / {len(vms):,}",
                f"{unprotected:,} not covered by any DRPC",
                "good" if protected == len(vms) else "bad",
            )
        )
    measured = [p for p in pairs if p.latency.max_ms is not None]
    if measured:
        worst = max(measured, key=lambda p: p.latency.max_ms or 0.0)
        threshold = f"threshold {_ms(worst.threshold_ms)}" if worst.threshold_ms is not None else "no threshold"
        over = worst.threshold_ms is not None and (worst.latency.max_ms or 0.0) > worst.threshold_ms
        lines.append(
            Headline(
                "Worst inter-site RTT (max)",
                _ms(worst.latency.max_ms),
                f"{worst.label}, {threshold}",
                "bad" if over else "good",
            )
        )
    if tests:
        recent = sum(1 for t in tests if t.status == Status.PASS.value)
        lines.append(
            Headline(
                "Applications with a recent failover test",
                f"{recent:,} / {len(tests):,}",
                "within the configured maximum age",
                "good" if recent == len(tests) else "bad",
            )
        )
    return tuple(lines)


def _of_check(report: Report, check_id: str) -> list[Finding]:
    return [f for f in report.findings if f.check_id == check_id]


def _counts(findings: list[Finding]) -> tuple[StatusCount, ...]:
    counts = Counter(f.status for f in findings)
    return tuple(StatusCount(s.value, counts[s]) for s in STATUS_ORDER if counts.get(s))


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def _latency(label: str, values: dict[str, Any]) -> Latency:
    pairs = lenient.number(values.get("osd_pairs"))
    return Latency(
        label=label,
        avg_1min_ms=lenient.number(values.get("avg_1min_ms")),
        avg_5min_ms=lenient.number(values.get("avg_5min_ms")),
        avg_15min_ms=lenient.number(values.get("avg_15min_ms")),
        max_ms=lenient.number(values.get("max_ms")),
        osd_pairs=int(pairs) if pairs is not None else None,
    )


def _anchor(text: str) -> str:
    return "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in text.lower())


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)  # null / true / false, as in report.json
    return str(value)
