"""Chart geometry for the HTML and PDF reports: numbers and class names only, never markup.

The templates draw these shapes as inline SVG through one Jinja macro, so every label (a DRPC or site
name read from a cluster) goes through autoescaping like any other text. The same geometry serves the
browser and WeasyPrint, which is why the layout uses a fixed viewBox and plain rect/line/text shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from auditor.drill.measure import STEPS
from auditor.drill_details import DrillDetails
from auditor.history import AppRto, Measurement, PastRun
from auditor.report.views import COVERAGE_BUCKETS, AppCoverage, RttPair, StatusCount

WIDTH = 640.0
_FONT_WIDTH = 6.2  # average advance of an 11px sans-serif glyph, for fitting labels


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # what the bar is, for its tooltip
    value: str  # the figure it stands for, as printed
    css_class: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    css_class: str
    anchor: str = "start"  # SVG text-anchor


@dataclass(frozen=True)
class Rule:
    x1: float
    y1: float
    x2: float
    y2: float
    css_class: str


@dataclass(frozen=True)
class LegendEntry:
    x: float  # top-left corner of the swatch; the label follows it
    y: float
    label: str
    css_class: str


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    description: str
    width: float
    height: float
    bars: tuple[Bar, ...]
    labels: tuple[Label, ...]
    rules: tuple[Rule, ...]  # drawn under the bars: axes, grid
    legend: tuple[LegendEntry, ...]
    markers: tuple[Rule, ...] = ()  # drawn over the bars: thresholds
    note: str | None = None


def status_chart(breakdown: tuple[StatusCount, ...]) -> Chart | None:
    """Findings per status as vertical bars; None when the report has no findings at all."""
    if not any(item.count for item in breakdown):
        return None
    left, top, bottom, height = 44.0, 18.0, 26.0, 200.0
    plot_h = height - top - bottom
    y_max, step = _scale(max(item.count for item in breakdown))
    slot = (WIDTH - left - 10) / len(breakdown)
    rules, labels = _grid(left, WIDTH - 10, top, plot_h, y_max, step, "{:g}")
    bars = []
    for i, item in enumerate(breakdown):
        bar_h = plot_h * item.count / y_max
        x = left + i * slot + slot * 0.2
        base = top + plot_h
        bars.append(
            Bar(_r(x), _r(base - bar_h), _r(slot * 0.6), _r(bar_h), item.status, f"{item.count:,}", item.status)
        )
        labels.append(Label(_r(x + slot * 0.3), _r(base - bar_h - 4), f"{item.count:,}", "value", "middle"))
        labels.append(Label(_r(x + slot * 0.3), _r(base + 16), item.status, "axis-label", "middle"))
    total = sum(item.count for item in breakdown)
    return Chart(
        id="chart-status",
        title="Findings per status",
        description=f"{total:,} findings: " + ", ".join(f"{i.count:,} {i.status}" for i in breakdown),
        width=WIDTH,
        height=height,
        bars=tuple(bars),
        labels=tuple(labels),
        rules=tuple(rules),
        legend=(),
    )


def coverage_chart(apps: tuple[AppCoverage, ...], *, max_rows: int = 20) -> Chart | None:
    """Each DRPC's VMs as one full-width bar split by coverage share, its VM count at the end.

    Shares, not absolute lengths: one large application (or the summed tail beyond ``max_rows``) would
    otherwise flatten every other bar to a sliver.
    """
    if not apps:
        return None
    rows = [(_app_label(app), app.counts) for app in apps[:max_rows]]
    rest = apps[max_rows:]
    note = None
    if rest:
        summed = {key: sum(app.counts[key] for app in rest) for key, _, _ in COVERAGE_BUCKETS}
        rows.append((f"{len(rest):,} more DRPCs", summed))
        note = f"The {max_rows} DRPCs with the most uncovered VMs are drawn; the other {len(rest):,} are summed."
    label_w, total_w, row_h, gap, top = 190.0, 64.0, 16.0, 6.0, 30.0
    plot_w = WIDTH - label_w - total_w
    bars, labels = [], []
    for i, (label, counts) in enumerate(rows):
        y = top + i * (row_h + gap)
        total = sum(counts.values())
        x = label_w
        for key, title, _ in COVERAGE_BUCKETS:
            if counts[key]:
                width = plot_w * counts[key] / total
                bars.append(Bar(_r(x), _r(y), _r(width), row_h, f"{label}: {title}", f"{counts[key]:,}", key))
                x += width
        labels.append(Label(label_w - 6, _r(y + row_h - 4), _clip(label, label_w - 10), "axis-label", "end"))
        labels.append(
            Label(label_w + plot_w + 6, _r(y + row_h - 4), f"{total:,} VM" + ("" if total == 1 else "s"), "value")
        )
    height = top + len(rows) * (row_h + gap) + 4
    return Chart(
        id="chart-coverage",
        title="VM coverage per application (DRPC)",
        description=f"{sum(app.total for app in apps):,} VMs across {len(apps):,} groups",
        width=WIDTH,
        height=_r(height),
        bars=tuple(bars),
        labels=tuple(labels),
        rules=(Rule(label_w, top - 2, label_w, _r(height - 4), "axis"),),
        legend=_legend([(title, key) for key, title, _ in COVERAGE_BUCKETS], label_w),
        note=note,
    )


_RTT_SERIES = (
    ("avg_1min_ms", "avg 1 min", "rtt-1m"),
    ("avg_5min_ms", "avg 5 min", "rtt-5m"),
    ("avg_15min_ms", "avg 15 min", "rtt-15m"),
    ("max_ms", "max", "rtt-max"),
)


def rtt_chart(pairs: tuple[RttPair, ...]) -> Chart | None:
    """Heartbeat round-trip times per site pair against each pair's threshold (dashed line)."""
    if not pairs:
        return None
    left, top, bottom, height = 44.0, 44.0, 28.0, 240.0
    plot_h = height - top - bottom
    values = [getattr(p.latency, field) for p in pairs for field, _, _ in _RTT_SERIES]
    values += [p.threshold_ms for p in pairs]
    y_max, step = _scale(max((v for v in values if v is not None), default=0.0) * 1.08)
    right = WIDTH - 72  # room for the threshold values, printed once each at the right edge
    rules, labels = _grid(left, right, top, plot_h, y_max, step, "{:g} ms")
    group_w = (right - left) / len(pairs)
    bar_w = min(36.0, group_w * 0.7 / len(_RTT_SERIES))
    base = top + plot_h
    bars, markers = [], []
    for i, pair in enumerate(pairs):
        x0 = left + i * group_w + (group_w - bar_w * len(_RTT_SERIES)) / 2
        for j, (field, title, css) in enumerate(_RTT_SERIES):
            value = getattr(pair.latency, field)
            x = x0 + j * bar_w
            if value is None:
                labels.append(Label(_r(x + bar_w / 2), _r(base - 4), "n/a", "value", "middle"))
                continue
            bar_h = plot_h * value / y_max
            over = pair.threshold_ms is not None and value > pair.threshold_ms
            bars.append(
                Bar(
                    _r(x + 1),
                    _r(base - bar_h),
                    _r(bar_w - 2),
                    _r(bar_h),
                    f"{pair.label} {title}",
                    f"{value:.2f} ms",
                    f"{css} over" if over else css,
                )
            )
            labels.append(Label(_r(x + bar_w / 2), _r(base - bar_h - 4), f"{value:.2f}", "value", "middle"))
        labels.append(Label(_r(left + (i + 0.5) * group_w), _r(base + 16), pair.label, "axis-label", "middle"))
        if pair.threshold_ms is not None:
            y = _r(base - plot_h * pair.threshold_ms / y_max)
            markers.append(Rule(_r(left + i * group_w), y, _r(left + (i + 1) * group_w), y, "threshold"))
    for threshold in sorted({p.threshold_ms for p in pairs if p.threshold_ms is not None}):
        y = _r(base - plot_h * threshold / y_max)
        labels.append(Label(right + 6, _r(y + 4), f"{threshold:g} ms limit", "threshold-label"))
    return Chart(
        id="chart-rtt",
        title="Inter-site round-trip time per site pair",
        description="; ".join(
            f"{p.label}: max {_fmt(p.latency.max_ms)} ms, threshold {_fmt(p.threshold_ms)} ms" for p in pairs
        ),
        width=WIDTH,
        height=height,
        bars=tuple(bars),
        labels=tuple(labels),
        rules=tuple(rules),
        legend=_legend([*((title, css) for _, title, css in _RTT_SERIES), ("threshold", "threshold-swatch")], left),
        markers=tuple(markers),
    )


# What a run's bar stacks, bottom up: the findings that need attention. Passes would dwarf them.
_ATTENTION = ("fail", "error", "warn")
_RUN_LEGEND = (("fail", "fail"), ("error", "error"), ("warn", "warn"))
_VERDICT_LEGEND = (("verdict: ready", "run-ready"), ("not-ready", "run-not-ready"), ("incomplete", "run-incomplete"))


def runs_chart(runs: tuple[PastRun, ...]) -> Chart | None:
    """Failing, erroring and warning findings per earlier audit as stacked bars, oldest on the left, each run's
    verdict as a strip under its bar; None when there is no earlier run."""
    if not runs:
        return None
    left, top, plot_h = 44.0, 30.0, 140.0
    right, base = WIDTH - 36, top + plot_h  # room for half the newest run's date label
    totals = [sum(run.summary.get(status, 0) for status in _ATTENTION) for run in runs]
    y_max, step = _scale(max(*totals, 4))  # at least 4: whole-number ticks for small counts
    rules, labels = _grid(left, right, top, plot_h, y_max, step, "{:g}")
    slot = (right - left) / len(runs)
    bar_w = max(slot * 0.7, 1.0)
    label_every = math.ceil(len(runs) * 74 / (right - left))  # dates never overlap; the newest is always labelled
    bars = []
    for i, (run, total) in enumerate(zip(runs, totals, strict=True)):
        x = left + i * slot + (slot - bar_w) / 2
        when = run.finished_at.strftime("%Y-%m-%d %H:%M")
        y = base
        for status in _ATTENTION:
            if count := run.summary.get(status, 0):
                height = plot_h * count / y_max
                y -= height
                bars.append(Bar(_r(x), _r(y), _r(bar_w), _r(height), f"{when} {status}", f"{count:,}", status))
        if slot >= 22:
            labels.append(Label(_r(x + bar_w / 2), _r(y - 4), f"{total:,}", "value", "middle"))
        bars.append(Bar(_r(x), base + 6, _r(bar_w), 8.0, f"{when} verdict", run.verdict, f"run-{run.verdict}"))
        if (len(runs) - 1 - i) % label_every == 0:
            labels.append(Label(_r(x + bar_w / 2), base + 30, f"{run.finished_at:%Y-%m-%d}", "axis-label", "middle"))
    newest = runs[-1]
    return Chart(
        id="chart-runs",
        title="Findings needing attention per audit run",
        description=(
            f"{len(runs):,} earlier audits from {runs[0].finished_at:%Y-%m-%d} to {newest.finished_at:%Y-%m-%d}; "
            f"the newest {newest.verdict}: "
            + ", ".join(f"{newest.summary.get(status, 0):,} {status}" for status in _ATTENTION)
        ),
        width=WIDTH,
        height=base + 38,
        bars=tuple(bars),
        labels=tuple(labels),
        rules=tuple(rules),
        legend=_legend([*_RUN_LEGEND, *_VERDICT_LEGEND], left),
    )


def rto_chart(apps: tuple[AppRto, ...], *, targets: dict[str, float] | None = None, max_rows: int = 20) -> Chart | None:
    """Each application's last measured RTO as a bar, its earlier drills' RTOs as ticks across it and its RTO target
    (``targets``: application -> seconds) as a dashed line across its row, the longest first; None when no drill
    measured one."""
    if not apps:
        return None
    targets = targets or {}
    ranked = sorted(apps, key=lambda app: (-app.last.rto_seconds, app.application))
    shown = ranked[:max_rows]
    label_w, value_w, row_h, gap, top = 190.0, 70.0, 14.0, 8.0, 30.0
    plot_w = WIDTH - label_w - value_w
    peak = max(max(*(m.rto_seconds for m in app.drills), targets.get(app.application, 0.0)) for app in shown)
    x_max = peak * 1.05 if peak > 0 else 1.0
    bars, labels, markers = [], [], []
    for i, app in enumerate(shown):
        y = top + i * (row_h + gap)
        last = app.last
        width = plot_w * max(last.rto_seconds, 0.0) / x_max
        when = last.finished_at.strftime("%Y-%m-%d")
        bars.append(
            Bar(label_w, _r(y), _r(width), row_h, f"{app.application}: drill of {when}", _seconds(last), "rto-last")
        )
        for earlier in app.drills[:-1]:
            x = _r(label_w + plot_w * max(earlier.rto_seconds, 0.0) / x_max)
            markers.append(Rule(x, _r(y - 2), x, _r(y + row_h + 2), "rto-earlier"))
        if (target := targets.get(app.application)) is not None:
            x = _r(label_w + plot_w * max(target, 0.0) / x_max)
            markers.append(Rule(x, _r(y - 4), x, _r(y + row_h + 4), "threshold"))
        labels.append(Label(label_w - 6, _r(y + row_h - 3), _clip(app.application, label_w - 10), "axis-label", "end"))
        labels.append(Label(_r(label_w + width + 6), _r(y + row_h - 3), _seconds(last), "value"))
    height = top + len(shown) * (row_h + gap) + 4
    rest = len(ranked) - len(shown)
    return Chart(
        id="chart-rto",
        title="Last drill RTO per application",
        description="; ".join(f"{app.application}: {_seconds(app.last)}" for app in shown),
        width=WIDTH,
        height=_r(height),
        bars=tuple(bars),
        labels=tuple(labels),
        rules=(Rule(label_w, top - 2, label_w, _r(height - 4), "axis"),),
        legend=_legend(
            [
                ("last drill", "rto-last"),
                ("earlier drills", "rto-earlier-swatch"),
                *((("RTO target", "threshold-swatch"),) if any(app.application in targets for app in shown) else ()),
            ],
            label_w,
        ),
        markers=tuple(markers),
        note=f"The {len(shown)} longest are drawn; {rest:,} more are in the table below." if rest else None,
    )


# Short legend names: all seven steps and "failed" fit one legend row.
STEP_LABELS = {
    "snapshot_ready": "snapshot",
    "content_ready": "content",
    "pvc_bound": "PVC bound",
    "vmi_scheduled": "scheduled",
    "vmi_running": "running",
    "agent_connected": "agent",
    "probe_ready": "probe",
}


def drill_timeline(details: DrillDetails, chart_id: str, *, max_rows: int = 30) -> Chart | None:
    """One horizontal bar per VM from T0, a segment per recovery step ending when the step was reached (seconds on
    the monotonic clock), a VM that did not recover marked where it stopped, the RTO target as a dashed line; None
    when no VM reached a step."""
    if not any(vm.steps for vm in details.vms):
        return None
    shown = details.vms[:max_rows]
    label_w, value_w, row_h, gap, top = 190.0, 120.0, 14.0, 8.0, 42.0
    plot_w = WIDTH - label_w - value_w
    peak = max(step.seconds for vm in shown for step in vm.steps) if any(vm.steps for vm in shown) else 0.0
    x_max, tick = _scale(max(peak, details.rto_target or 0.0))
    bottom = top + len(shown) * (row_h + gap)
    rules, labels = _vertical_grid(label_w, plot_w, top - 2, bottom, x_max, tick)
    bars, markers, seen = [], [], set()
    for i, vm in enumerate(shown):
        y = top + i * (row_h + gap)
        before = 0.0
        # Drawn in the order the steps happened: a WaitForFirstConsumer PVC binds only after its VMI is scheduled.
        for step in sorted(vm.steps, key=lambda s: s.seconds):
            x0, x1 = (label_w + plot_w * max(v, 0.0) / x_max for v in (before, step.seconds))
            seen.add(step.step)
            title = f"{vm.key}: {STEP_LABELS[step.step]} (+{step.seconds - before:,.1f} s)"
            bars.append(
                Bar(_r(x0), _r(y), _r(max(x1 - x0, 0.0)), row_h, title, f"{step.seconds:,.1f} s", f"step-{step.step}")
            )
            before = max(before, step.seconds)
        end = _r(label_w + plot_w * max(before, 0.0) / x_max)
        state = "" if vm.recovered else " vm-failed"
        labels.append(Label(label_w - 6, _r(y + row_h - 3), _clip(vm.key, label_w - 10), f"axis-label{state}", "end"))
        if vm.recovered:
            text = f"RTO {vm.rto_seconds:,.1f} s" if vm.rto_seconds is not None else "ready"
        else:
            markers.append(Rule(end, _r(y - 3), end, _r(y + row_h + 3), "vm-failed-mark"))
            text = f"{vm.outcome} after {before:,.1f} s" if vm.steps else f"{vm.outcome}, no step reached"
        labels.append(Label(_r(label_w + plot_w + 8), _r(y + row_h - 3), text, f"value{state}"))
    legend = [(STEP_LABELS[step], f"step-{step}") for step in STEPS if step in seen]
    if not all(vm.recovered for vm in shown):
        legend.append(("not recovered", "vm-failed-swatch"))
    if details.rto_target is not None:
        x = _r(label_w + plot_w * details.rto_target / x_max)
        markers.append(Rule(x, top - 6, x, _r(bottom - 4), "threshold"))
        labels.append(Label(x, top - 9, f"RTO target {details.rto_target:,.0f} s", "threshold-label", "middle"))
    rest = len(details.vms) - len(shown)
    return Chart(
        id=chart_id,
        title="Recovery timeline per VM, seconds after the simulated disaster (T0)",
        description="; ".join(
            f"{vm.key}: {vm.outcome}" + (f" in {vm.rto_seconds:,.1f} s" if vm.rto_seconds is not None else "")
            for vm in shown
        ),
        width=WIDTH,
        height=_r(bottom + 18),
        bars=tuple(bars),
        labels=tuple(labels),
        rules=tuple(rules),
        legend=_legend(legend, 4.0),
        markers=tuple(markers),
        note=f"The first {len(shown)} VMs are drawn; {rest:,} more are in the table below." if rest else None,
    )


def _vertical_grid(
    left: float, plot_w: float, top: float, bottom: float, x_max: float, step: float
) -> tuple[list[Rule], list[Label]]:
    """Vertical grid lines (the axis at zero first) and their tick labels in seconds under the plot."""
    rules, labels = [], []
    for k in range(round(x_max / step) + 1):
        value = k * step
        x = _r(left + plot_w * value / x_max)
        rules.append(Rule(x, top, x, _r(bottom - 4), "axis" if k == 0 else "grid"))
        labels.append(Label(x, _r(bottom + 8), f"{round(value, 6):g} s", "tick", "middle"))
    return rules, labels


def _seconds(measurement: Measurement) -> str:
    return f"{measurement.rto_seconds:,.0f} s"


def _grid(
    left: float, right: float, top: float, plot_h: float, y_max: float, step: float, fmt: str
) -> tuple[list[Rule], list[Label]]:
    """Horizontal grid lines (the baseline first) and their tick labels."""
    rules, labels = [], []
    for k in range(round(y_max / step) + 1):
        value = k * step
        y = _r(top + plot_h - plot_h * value / y_max)
        rules.append(Rule(left, y, right, y, "axis" if k == 0 else "grid"))
        labels.append(Label(left - 6, _r(y + 4), fmt.format(round(value, 6)), "tick", "end"))
    return rules, labels


def _legend(entries: list[tuple[str, str]], x: float) -> tuple[LegendEntry, ...]:
    """One row of swatches along the top edge, each as wide as its label needs."""
    placed = []
    for label, css_class in entries:
        placed.append(LegendEntry(_r(x), 6.0, label, css_class))
        x += 10 + 6 + len(label) * _FONT_WIDTH + 16
    return tuple(placed)


def _scale(peak: float) -> tuple[float, float]:
    """A round axis maximum and tick step (1, 2 or 5 times a power of ten) covering ``peak``."""
    if peak <= 0:
        return 1.0, 0.25
    raw = peak / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return step * math.ceil(peak / step - 1e-9), step


def _app_label(app: AppCoverage) -> str:
    if app.drpc is None:
        return "no DRPC (unprotected)"
    return app.drpc


def _clip(text: str, width: float) -> str:
    fits = int(width / _FONT_WIDTH)
    return text if len(text) <= fits else text[: fits - 1] + "…"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _r(value: float) -> float:
    return round(value, 1)
