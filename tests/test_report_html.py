"""report.html: self-contained, autoescaped, loaded from the installed template package."""

from __future__ import annotations

import re
import sys
import zipfile
from html.parser import HTMLParser
from importlib.resources import files

import pytest
from jinja2 import TemplateNotFound, UndefinedError
from report_factory import (
    RTT_META,
    ceph_finding,
    drill_finding,
    estate_findings,
    make_report,
    rtt_finding,
    vm_finding,
)

from auditor.model import Finding, Severity, Status
from auditor.report import html
from auditor.report.html import ResourceLoader, environment, render_html, render_page, write_html

SVG_NS = "http://www.w3.org/2000/svg"
SCRIPT = "<script>alert(1)</script>"
STYLE_BREAKOUT = "</style><img src=x onerror=alert(1)>"
CSS_URL = "url(http://evil/x)"


class _Markup(HTMLParser):
    """Everything a browser would treat as markup (tags, attributes, style sheets), text left aside."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend((tag, name, value or "") for name, value in attrs)
        self._in_style = tag == "style"

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        (self.styles if self._in_style else self.text).append(data)


def _parse(markup: str) -> _Markup:
    parser = _Markup()
    parser.feed(markup)
    parser.close()
    return parser


def _hostile_report():
    vm = vm_finding("ocp-dc1", "web", SCRIPT, message=f"Condition Ready=False: {STYLE_BREAKOUT}", status=Status.FAIL)
    vm.evidence["problems"] = [CSS_URL, '"><svg onload=alert(2)>']
    rtt = rtt_finding((f"dc1{SCRIPT}", "dc2"))
    stray = Finding('x" onclick="alert(3)', SCRIPT, Status.ERROR, Severity.HIGH, STYLE_BREAKOUT)
    return make_report(
        [vm, rtt, stray, drill_finding(f"web/{SCRIPT}", age_days=None)],
        input_digests={f"hub/{SCRIPT}.yaml": "0" * 64},
    )


def test_cluster_text_is_escaped_everywhere():
    page = render_html(_hostile_report())
    assert SCRIPT not in page
    assert STYLE_BREAKOUT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the VM name is shown, as text
    assert "&lt;/style&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<svg onload" not in page
    markup = _parse(page)
    assert not {"script", "img", "iframe", "object", "embed", "link", "image", "use", "base"} & set(markup.tags)
    assert markup.tags.count("style") == 1 + 3  # the page's sheet and one per chart, nothing injected
    assert not [a for a in markup.attributes if a[1].startswith("on") or "javascript:" in a[2].lower()]
    assert any(SCRIPT in chunk for chunk in markup.text)  # survived as inert text (in the table and chart)


def test_no_url_outside_text_even_when_evidence_carries_urls():
    markup = _parse(render_html(_hostile_report()))
    for tag, name, value in markup.attributes:
        if "://" in value:
            assert (tag, name, value) == ("svg", "xmlns", SVG_NS)
    sheets = "".join(markup.styles)
    assert "url(" not in sheets and "@import" not in sheets and "://" not in sheets
    assert any(CSS_URL in chunk for chunk in markup.text)


def test_the_only_urls_are_svg_namespaces():
    page = render_html(make_report(estate_findings(30)))
    assert re.findall(r"[^\s<>]*https?://[^\s<>]*", page) == [f'xmlns="{SVG_NS}"'] * 3
    assert "src=" not in page and 'href="http' not in page and "<link" not in page


def test_page_shows_verdict_scope_charts_findings_appendix_and_inputs():
    report = make_report(estate_findings(30), input_digests={"hub/drpc.yaml": "f" * 64})
    page = render_html(report)
    markup = _parse(page)
    assert report.verdict == "not-ready"
    assert 'class="verdict verdict-not-ready"' in page and "NOT-READY" in page
    for fact in (
        "hub-east",
        "ocp-dc1, ocp-dc2",
        "/snapshots/estate",
        "2026-08-21T09:30:00Z",
        "snapshot.yaml capturedAt",
    ):
        assert fact in page
    assert [v for t, n, v in markup.attributes if t == "svg" and n == "class"] == ["chart-svg"] * 3
    for chart_id in ("chart-status", "chart-coverage", "chart-rtt"):
        assert f'<figure class="chart" id="{chart_id}">' in page
    assert "vm-00006" in page and "team-0/vm-00000" in page  # a failing VM and an appendix row
    assert "Label the VM and its PVCs" in page  # remediation
    assert "f" * 64 in page
    assert "10 ms limit" in page


def test_every_finding_and_its_evidence_is_in_the_page():
    report = make_report(estate_findings(12))
    page = render_html(report)
    assert page.count('<tbody class="finding status-') == len(report.findings)
    assert '<details class="passing">' in page  # passing findings fold away on screen
    assert "&#34;pvc&#34;: &#34;vm-00000-disk0&#34;" in page  # nested evidence as escaped JSON text


def test_missing_data_gives_notes_not_charts():
    page = render_html(make_report([ceph_finding(Status.FAIL)]))
    assert page.count("<svg") == 1  # only the status chart
    assert "No VM coverage data" in page
    assert "No inter-site latency data" in page
    assert "No failover test data" in page
    assert "No VM coverage findings" in page


def test_an_empty_report_renders():
    page = render_html(make_report([], checks=[], input_digests={}))
    assert "<svg" not in page
    assert "No findings were produced." in page and "No checks ran." in page
    assert "No input digests were recorded." in page


def test_rtt_findings_without_a_site_pair_still_list_in_findings():
    finding = RTT_META.finding(Status.ERROR, "No osd_network output was captured.", evidence={})
    page = render_html(make_report([finding]))
    assert "No osd_network output was captured." in page
    assert "No inter-site latency data" in page


def test_write_html_writes_the_rendered_page(tmp_path):
    report = make_report(estate_findings(5))
    target = tmp_path / "report.html"
    write_html(report, target)
    assert target.read_text(encoding="utf-8") == render_html(report)


def test_print_medium_uses_print_css_and_limits_details():
    report = make_report(estate_findings(20))
    page = render_page(report, medium="print", detail_limit=3, attachment_name="report.json")
    assert "@page" in page and "position: sticky" not in page
    assert "<details" not in page
    assert "not printed here" in page and "attached to this PDF as report.json" in page
    assert "Appendix A lists every VirtualMachine" in page
    assert page.count('<tr class="odd">') + page.count('<tr class="even">') == 20  # the appendix is never cut


def test_style_sheets_are_inlined_verbatim():
    package = files("report_templates")

    def sheet(name: str) -> str:  # Jinja drops a template's final newline
        return package.joinpath(name).read_text(encoding="utf-8").removesuffix("\n")

    screen = render_html(make_report(estate_findings(8)))
    printed = render_page(make_report(estate_findings(8)), medium="print")
    for name, page, times in (("common.css", screen, 1), ("screen.css", screen, 1), ("chart.css", screen, 3)):
        assert page.count(sheet(name)) == times, name
    assert sheet("print.css") in printed


def test_templates_load_from_the_package_resources():
    env = environment()
    assert isinstance(env.loader, ResourceLoader) and env.loader.package == "report_templates"
    package = files("report_templates")
    names = [p.name for p in package.iterdir() if p.name.endswith((".j2", ".css"))]
    assert html.PAGE_TEMPLATE in names and "print.css" in names
    for name in names:
        assert env.loader.get_source(env, name)[0] == package.joinpath(name).read_text(encoding="utf-8")


def test_resource_loader_reads_a_zipped_package(tmp_path, monkeypatch):
    archive = tmp_path / "templates.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped_templates/__init__.py", "")
        zf.writestr("zipped_templates/page.j2", "<p>{{ name }}</p>")
    monkeypatch.syspath_prepend(str(archive))
    monkeypatch.delitem(sys.modules, "zipped_templates", raising=False)
    env = environment().overlay(loader=ResourceLoader("zipped_templates"))
    assert env.get_template("page.j2").render(name="<b>") == "<p>&lt;b&gt;</p>"
    with pytest.raises(TemplateNotFound, match=r"missing\.j2"):
        env.get_template("missing.j2")
    with pytest.raises(TemplateNotFound, match="escape"):
        env.get_template("../escape.j2")


def test_environment_autoescapes_and_rejects_undefined_names():
    env = environment()
    assert env.autoescape is True
    assert env.from_string("{{ x }}").render(x="<i>") == "&lt;i&gt;"
    with pytest.raises(UndefinedError):
        env.from_string("{{ nope }}").render()
    with pytest.raises(UndefinedError):
        env.from_string("{{ x.nope }}").render(x=object())


def test_the_screen_page_lists_a_bounded_number_of_findings_per_check() -> None:
    from auditor.report.html import SCREEN_DETAIL_LIMIT, render_html

    count = SCREEN_DETAIL_LIMIT + 7
    report = make_report([vm_finding("ocp-dc1", "apps", f"vm-{i}") for i in range(count)])
    page = render_html(report)
    assert page.count('class="finding status-pass"') == SCREEN_DETAIL_LIMIT
    assert "7 further findings are not listed here" in page and "report.json" in page
