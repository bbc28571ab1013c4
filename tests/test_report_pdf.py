"""report.pdf: content, navigation, the embedded report.json, and a fetcher that loads nothing foreign."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import recording_server
from pypdf import PdfReader
from report_factory import estate_findings, make_report, vm_finding

from auditor.compliance import frameworks
from auditor.model import Status
from auditor.report.pdf import PackageFetcher, RefusedURL, document, package_dir, write_pdf


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[PdfReader, Path, object]:
    """One PDF for the read-only assertions: rendering is the slow part."""
    out = tmp_path_factory.mktemp("pdf")
    report = make_report(estate_findings(160, drpcs=6))
    (out / "report.json").write_text(json.dumps(report.to_json()), encoding="utf-8")
    write_pdf(report, out / "report.pdf", attachment=out / "report.json")
    return PdfReader(out / "report.pdf"), out, report


def _pages(reader: PdfReader) -> list[str]:
    return [page.extract_text() for page in reader.pages]


def test_cover_shows_verdict_scope_and_capture_time(rendered):
    reader, _, report = rendered
    cover = _pages(reader)[0]
    assert report.verdict == "not-ready"
    for text in ("NOT-READY", "hub-east", "ocp-dc1, ocp-dc2", "2026-08-21T09:30:00Z", "snapshot.yaml capturedAt"):
        assert text in cover
    assert "Page 1 of" in cover


def test_every_page_is_numbered_page_x_of_y(rendered):
    reader, _, _ = rendered
    total = len(reader.pages)
    for number, text in enumerate(_pages(reader), start=1):
        assert f"Page {number} of {total}" in text


def test_contents_page_numbers_point_at_their_headings(rendered):
    reader, _, report = rendered
    pages = _pages(reader)
    contents = pages[1]
    entries = ["Executive summary", "Findings by check", *(m.title for m in report.checks)]
    entries += ["Compliance mapping", *(f.title for f in frameworks())]
    entries += ["Readiness over time", "Appendix A: VM coverage", "Appendix B: Inputs", "Appendix C: Provenance"]
    for entry in entries:
        match = re.search(re.escape(entry) + r"[\s.]*?(\d+)\s*$", contents, re.MULTILINE)
        assert match, f"{entry!r} missing from the contents page"
        target = pages[int(match.group(1)) - 1]
        assert entry in target.replace("\n", " "), f"{entry!r} is not on page {match.group(1)}"


def test_bookmarks_follow_the_headings(rendered):
    reader, _, report = rendered
    top = [item.title for item in reader.outline if not isinstance(item, list)]
    assert top[:3] == ["Contents", "Executive summary", "Findings by check"]
    appendices = ["Appendix A: VM coverage", "Appendix B: Inputs", "Appendix C: Provenance"]
    assert top[-5:] == ["Readiness over time", "Failover drills", *appendices]
    nested = [item.title for group in reader.outline if isinstance(group, list) for item in group]
    assert {m.title for m in report.checks} <= set(nested)
    assert "Compliance mapping" in top
    assert {f.title for f in frameworks()} <= set(nested)
    assert "Cluster ocp-dc1 (80 VMs)" in nested


def test_findings_remediation_and_vm_appendix_are_printed(rendered):
    reader, _, _ = rendered
    text = "\n".join(_pages(reader))
    assert "Label the VM and its PVCs" in text  # remediation
    assert "VirtualMachine team-0/vm-00006" in text  # a failing VM's finding
    assert "team-1/vm-00157 team-1/team-1-drpc pass" in text  # an appendix row
    # 160 VM findings exceed the print detail limit: the PDF says what it left out and where it is
    assert re.search(r"\d+ further findings are not printed here\s+\(\d+ pass\)", text)


def test_table_headers_repeat_on_every_appendix_page(rendered):
    reader, _, _ = rendered
    appendix = [t for t in _pages(reader) if "hub-east Appendix A: VM coverage" in t]  # the running header
    assert len(appendix) >= 3
    assert all("VirtualMachine (namespace/name)" in page for page in appendix)


def test_report_json_is_embedded(rendered):
    reader, out, _ = rendered
    assert reader.attachments["report.json"] == [(out / "report.json").read_bytes()]


def test_report_json_is_an_associated_file_the_pdf_a_3_way(rendered):
    reader, _, _ = rendered
    associated = [ref.get_object() for ref in reader.trailer["/Root"]["/AF"]]
    assert [(spec["/UF"], spec["/AFRelationship"]) for spec in associated] == [("report.json", "/Data")]
    assert associated[0]["/Desc"] == "The canonical audit result this document renders"
    embedded = reader.trailer["/Root"]["/Names"]["/EmbeddedFiles"]["/Names"][1].get_object()
    assert embedded == associated[0]  # the /AF entry is the embedded file itself, not a copy


def test_metadata_comes_from_the_report_not_the_clock(rendered):
    reader, _, _ = rendered
    info = reader.metadata
    assert info.title == "DR readiness audit: hub-east: not-ready"
    assert info.creation_date.isoformat().startswith("2026-08-21T10:00:00")


def test_without_attachment_nothing_is_embedded_or_promised(tmp_path):
    report = make_report(estate_findings(4))
    write_pdf(report, tmp_path / "report.pdf")
    reader = PdfReader(tmp_path / "report.pdf")
    assert reader.attachments == {}
    assert "/AF" not in reader.trailer["/Root"]
    assert "attached" not in "".join(_pages(reader))


def test_a_missing_attachment_is_an_error_not_a_silent_omission(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_pdf(make_report([]), tmp_path / "report.pdf", attachment=tmp_path / "absent.json")


# The URL fetcher


def test_fetcher_serves_package_files():
    fetcher = PackageFetcher(package_dir())
    response = fetcher.fetch((package_dir() / "print.css").as_uri())
    assert response.read() == (package_dir() / "print.css").read_bytes()
    assert response.content_type == "text/css"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x.png",
        "https://example.com/font.woff2",
        "HTTP://example.com/",
        "ftp://example.com/x",
        "data:text/css,body{color:red}",
        "data:image/png;base64,iVBORw0KGgo=",
        "file:///etc/passwd",
        "file://remote-host/share/x.css",
        "javascript:alert(1)",
    ],
)
def test_fetcher_refuses_anything_foreign(url):
    with pytest.raises(RefusedURL):
        PackageFetcher(package_dir()).fetch(url)


def test_fetcher_refuses_escapes_out_of_the_package(tmp_path):
    root = package_dir()
    fetcher = PackageFetcher(root)
    with pytest.raises(RefusedURL):
        fetcher.fetch(root.as_uri() + "/../auditor/model.py")
    with pytest.raises(RefusedURL):
        fetcher.fetch(root.as_uri() + "/%2e%2e/auditor/model.py")
    with pytest.raises(RefusedURL):
        fetcher.fetch(root.as_uri() + "/")  # the directory itself
    with pytest.raises(RefusedURL):
        fetcher.fetch(root.as_uri() + "/no-such-file.css")
    sibling = tmp_path / "x.css"
    sibling.write_text("body{}")
    with pytest.raises(RefusedURL):
        PackageFetcher(tmp_path / "pkg").fetch(sibling.as_uri())


def test_document_resolves_relative_urls_into_the_package():
    doc = document("<p>x</p>")
    assert doc.base_url == package_dir().as_uri() + "/"
    assert isinstance(doc.url_fetcher, PackageFetcher)


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    with recording_server() as recorded:
        yield recorded.base, recorded.requests


def _bait(base: str) -> str:
    return (
        f'<link rel="stylesheet" href="{base}/sheet.css"><link rel="attachment" href="{base}/att.bin">'
        f'<style>@import url("{base}/import.css"); p {{ background: url({base}/bg.png) }}</style>'
        f'<p>x</p><img src="{base}/img.png"><object data="{base}/obj.svg"></object>'
        f'<svg xmlns="http://www.w3.org/2000/svg"><image href="{base}/svg.png" width="5" height="5"/></svg>'
    )


def test_the_bait_does_reach_the_server_without_our_fetcher(server):
    # Proves the test below can fail: stock WeasyPrint fetches what the markup names.
    from weasyprint import HTML

    base, requests = server
    HTML(string=_bait(base)).write_pdf()
    assert requests


def test_markup_naming_urls_loads_nothing_through_our_document(server):
    base, requests = server
    document(_bait(base)).write_pdf()
    assert requests == []


def test_rendering_hostile_evidence_performs_no_request(server, tmp_path):
    base, requests = server
    img = f"<img src={base}/leak.png>"
    hostile = vm_finding(
        "ocp-dc1",
        "web",
        f"vm{img}",
        status=Status.FAIL,
        message=f"</style>{img}<style>p{{background:url({base}/bg.png)}}</style>",
    )
    hostile.evidence["problems"] = [img, f"url({base}/css.png)", f'<link rel="attachment" href="{base}/a">']
    write_pdf(make_report([hostile]), tmp_path / "report.pdf")
    assert requests == []
    text = "".join(_pages(PdfReader(tmp_path / "report.pdf")))
    assert f"{base}/leak.png" in text  # shown as text, never fetched
