"""Cluster-supplied text is shown, never interpreted: escaped in HTML and JUnit, and never fetched by the PDF.

Names are DNS-safe on a real cluster, but a snapshot file can hold anything, and condition messages and labels are
free text wherever they come from. Hostile strings are planted in fields the checks copy into findings (a DRPC
condition message quoted by vm_dr_coverage, a PVC label value quoted in a selector mismatch, a VM name), and in a
VM annotation that no check copies, then the real CLI audits the estate while a loopback HTTP server counts every
request the rendering makes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from loopback import Recorded, recording_server
from markupsafe import escape
from pypdf import PdfReader
from sample_edit import add, condition, copy_sample, edit
from weasyprint import HTML

from auditor.cli import main

# Elements that load something or run something: none may come from cluster data.
ACTIVE_TAGS = {"script", "img", "image", "iframe", "object", "embed", "link", "base", "video", "audio", "source"}


def payload(base: str, where: str) -> str:
    """Every hostile form at once, its URLs naming the field they were planted in."""
    return (
        f"<img src={base}/{where}-img.png> <script>alert('{where}')</script> "
        f"</style><style>.findings{{display:none}} body{{background:url({base}/{where}-css.png)}}</style> "
        f'url({base}/{where}-url.png) " onmouseover="alert(1)'
    )


@dataclass
class Audited:
    server: Recorded
    out: Path
    payloads: dict[str, str]  # the field a payload was planted in -> the payload
    exit_code: int
    output: str


def _plant(root: Path, base: str) -> dict[str, str]:
    payloads = {where: payload(base, where) for where in ("drpc-message", "pvc-label", "vm-name", "vm-annotation")}

    def fail_available(drpc: dict) -> None:
        condition(drpc, "Available").update(status="False", reason="Hostile", message=payloads["drpc-message"])

    edit(root / "hub/apps/billing.yaml", "DRPlacementControl", "billing-drpc", fail_available)
    edit(
        root / "clusters/prod-east/billing.yaml",
        "PersistentVolumeClaim",
        "billing-db-data",
        lambda pvc: pvc["metadata"]["labels"].update(appname=payloads["pvc-label"]),
    )
    edit(
        root / "clusters/prod-east/billing.yaml",
        "VirtualMachine",
        "billing-app",
        lambda vm: vm["metadata"]["annotations"].update(description=payloads["vm-annotation"]),
    )
    add(
        root / "clusters/prod-east/hostile.yaml",
        {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "metadata": {"name": payloads["vm-name"], "namespace": "billing"},
            "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {"devices": {}}, "volumes": []}}},
        },
    )
    return payloads


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audited]:
    """One audit of the planted estate (all formats, PDF included) while the bait server listens."""
    tmp = tmp_path_factory.mktemp("escaping")
    with recording_server() as server:
        root = copy_sample("healthy", tmp / "estate")
        payloads = _plant(root, server.base)
        out = tmp / "out"
        result = CliRunner().invoke(main, ["audit", "--snapshot", str(root), "--output-dir", str(out)])
        yield Audited(server, out, payloads, result.exit_code, result.output)


class _Markup(HTMLParser):
    """Tags, attribute values and <style> contents of a page, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attribute_values: list[str] = []
        self.style_text: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attribute_values += [f"{name}={value}" for name, value in attrs]
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style_text.append(data)


def test_the_audit_ran_and_rendered_every_format(audited: Audited) -> None:
    assert audited.exit_code == 1, audited.output  # the failed Available condition makes it not ready
    assert {"report.json", "report.html", "report.junit.xml", "report.pdf"} <= {p.name for p in audited.out.iterdir()}


@pytest.mark.parametrize("where", ["drpc-message", "pvc-label", "vm-name"])
def test_planted_text_reaches_the_html_only_escaped(audited: Audited, where: str) -> None:
    html = (audited.out / "report.html").read_text(encoding="utf-8")
    planted = audited.payloads[where]
    assert str(escape(planted)) in html  # the field is shown (so this test is not vacuous) ...
    assert planted not in html  # ... and never as markup
    for piece in ("<script>", "</style><style>", "<img src=", '" onmouseover="'):
        assert piece not in html


def test_no_cluster_text_becomes_an_element_an_attribute_or_css(audited: Audited) -> None:
    page = _Markup()
    page.feed((audited.out / "report.html").read_text(encoding="utf-8"))
    assert not ACTIVE_TAGS & set(page.tags)
    assert not [value for value in page.attribute_values if "127.0.0.1" in value or "alert" in value]
    css = "".join(page.style_text)
    assert "127.0.0.1" not in css and ".findings{display:none}" not in css


def test_junit_keeps_the_text_as_text(audited: Audited) -> None:
    tree = ET.parse(audited.out / "report.junit.xml")
    texts = [element.text or "" for element in tree.iter()] + [v for e in tree.iter() for v in e.attrib.values()]
    assert any(audited.payloads["drpc-message"] in text for text in texts)  # parsed back exactly as planted


def test_rendering_fetched_nothing(audited: Audited) -> None:
    assert audited.server.requests == []


def test_the_pdf_prints_the_payload_as_text(audited: Audited) -> None:
    text = "".join(page.extract_text() for page in PdfReader(audited.out / "report.pdf").pages)
    assert "alert(" in text and "-img.png" in text


def test_the_escaped_page_fetches_nothing_even_with_a_fetching_renderer(audited: Audited) -> None:
    """Escaping alone defuses the payload: stock WeasyPrint (which fetches whatever a page names) loads nothing."""
    with recording_server() as server:
        html = (audited.out / "report.html").read_text(encoding="utf-8")
        HTML(string=html.replace(audited.server.base, server.base)).write_pdf()
        assert server.requests == []


def test_the_same_payload_unescaped_would_be_fetched() -> None:
    """The control: this payload is live bait for the renderer, so the two tests above can fail."""
    with recording_server() as server:
        HTML(string=f"<p>{payload(server.base, 'raw')}</p>").write_pdf()
        assert {("GET", "/raw-img.png"), ("GET", "/raw-css.png")} <= set(server.requests)


def test_terminal_summary_shows_control_characters_as_escapes() -> None:
    from auditor.report.terminal import printable

    hostile = "DRPC stuck\x1b[2J\x1b]0;owned\x07 done\r\nnext"
    shown = printable(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown
    assert shown == "DRPC stuck\\x1b[2J\\x1b]0;owned\\x07 done\\r\\nnext"
