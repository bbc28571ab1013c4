"""The HTML report, and the print variant of the same page that the PDF renderer lays out.

Templates and CSS are read through ``importlib.resources`` from the ``report_templates`` package, so an
installed (even zipped) wheel renders exactly what the repository does. Every template autoescapes and
every undefined name is an error: cluster data (VM names, condition messages) is untrusted text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateNotFound
from jinja2.loaders import split_template_path

from auditor import compliance
from auditor.report import charts, views
from auditor.report.model import Report
from auditor.timeutil import human_age, rfc3339

TEMPLATE_PACKAGE = "report_templates"
PAGE_TEMPLATE = "report.html.j2"

Medium = Literal["screen", "print"]


class ResourceLoader(BaseLoader):
    """Jinja loader over a package's resources (a directory, a wheel or a zip import alike)."""

    def __init__(self, package: str) -> None:
        self.package = package

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, None]:
        resource = files(self.package).joinpath(*split_template_path(template))
        if not resource.is_file():
            raise TemplateNotFound(template)
        # Packaged templates do not change under a running process: no reload check (uptodate None).
        return resource.read_text(encoding="utf-8"), str(resource), None


@dataclass(frozen=True)
class Charts:
    status: charts.Chart | None
    coverage: charts.Chart | None
    rtt: charts.Chart | None
    runs: charts.Chart | None = None  # readiness over time: earlier audits of the hub
    rto: charts.Chart | None = None  # last drill RTO per application
    drills: dict[str, charts.Chart] = field(default_factory=dict)  # recovery timeline of each DrillView's anchor


@cache
def environment() -> Environment:
    env = Environment(
        loader=ResourceLoader(TEMPLATE_PACKAGE),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(timestamp=_timestamp, number=_number, ms=_ms, days=_days, duration=_duration)
    return env


def render_page(
    report: Report, *, medium: Medium, detail_limit: int | None = None, attachment_name: str | None = None
) -> str:
    """The report page for one medium; ``detail_limit`` caps the findings listed per check (page budget)."""
    view = views.build(report, detail_limit=detail_limit)
    return (
        environment()
        .get_template(PAGE_TEMPLATE)
        .render(
            report=report,
            verdict=report.verdict,
            summary=report.summary,
            view=view,
            compliance=compliance.build(report, view.sections),
            charts=Charts(
                status=charts.status_chart(view.status_breakdown),
                coverage=charts.coverage_chart(view.app_coverage),
                rtt=charts.rtt_chart(view.rtt_pairs),
                runs=charts.runs_chart(report.history.runs) if report.history else None,
                rto=(
                    charts.rto_chart(report.history.applications, targets=views.rto_targets(report.history))
                    if report.history
                    else None
                ),
                drills=_drill_timelines(view.drills),
            ),
            medium=medium,
            attachment_name=attachment_name,
        )
    )


def _drill_timelines(drills: tuple[views.DrillView, ...]) -> dict[str, charts.Chart]:
    """The newest drill's timeline per application, for the ones whose record has step timings."""
    timelines = {}
    for drill in drills:
        details = drill.app.latest_details
        if details is not None and (chart := charts.drill_timeline(details, f"chart-{drill.anchor}")) is not None:
            timelines[drill.anchor] = chart
    return timelines


# Findings listed per check on screen. Beyond a few hundred rows a page only gets slower to open and search (a
# 5,000-VM estate gave a 60 MB page); every finding stays in report.json, next to the page.
SCREEN_DETAIL_LIMIT = 500


def render_html(report: Report) -> str:
    return render_page(report, medium="screen", detail_limit=SCREEN_DETAIL_LIMIT)


def write_html(report: Report, path: Path) -> None:
    Path(path).write_text(render_html(report), encoding="utf-8")


def _timestamp(moment: datetime | None) -> str:
    return rfc3339(moment) if moment else "not recorded"


def _number(value: int) -> str:
    return f"{value:,}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _days(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _duration(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:,.0f} s ({human_age(timedelta(seconds=seconds))})"
