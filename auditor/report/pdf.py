"""report.pdf: the print variant of the HTML report, laid out by WeasyPrint.

WeasyPrint would fetch any URL the page names (images, stylesheets, fonts). The page is built from
cluster data, so it gets a fetcher that serves the files of the installed ``report_templates`` package
and refuses everything else: no network, no other local file, no data: URI.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pydyf
from weasyprint import HTML, Attachment
from weasyprint.urls import URLFetcher, URLFetcherResponse

from auditor.report.html import TEMPLATE_PACKAGE, render_page
from auditor.report.model import Report

# Findings printed per check. Beyond it the PDF states what it left out and points to report.json; the
# per-VM appendix still lists every VM. Keeps a 5,000-VM estate's PDF to a readable, fast document.
PRINT_DETAIL_LIMIT = 50


class RefusedURL(ValueError):
    """A URL the report's PDF may not load."""


class PackageFetcher(URLFetcher):
    """Serves ``file:`` URLs inside one directory (the templates package); refuses every other URL."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root.resolve()

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        parts = urlsplit(url)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            raise RefusedURL(f"refused {url!r}: the report only loads its own packaged files")
        path = Path(url2pathname(parts.path)).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise RefusedURL(f"refused {url!r}: not a file of the {TEMPLATE_PACKAGE} package")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": content_type})


def package_dir() -> Path:
    return Path(str(files(TEMPLATE_PACKAGE)))


def document(markup: str) -> HTML:
    """WeasyPrint's view of ``markup``: relative URLs resolve into the package, and only it is readable."""
    root = package_dir()
    return HTML(string=markup, base_url=f"{root.as_uri()}/", url_fetcher=PackageFetcher(root))


def associate_files(attachments: list[Attachment]) -> Callable[[object, pydyf.PDF], None]:
    """A WeasyPrint finisher that declares each attachment an associated file, the PDF/A-3 way.

    Each embedded file's specification gets its ``/AFRelationship`` (``/Data`` for report.json: the data this
    document renders) and the catalog lists it under ``/AF``, so a PDF/A-3-aware reader knows what the attachment
    is. WeasyPrint writes these entries only for a PDF/A variant, which would also declare a PDF/A conformance this
    document has not been validated against; the finisher adds the association and claims nothing more.
    """
    relationships = {a.name: a.relationship for a in attachments}

    def finish(_document, pdf: pydyf.PDF) -> None:
        associated = []
        for obj in pdf.objects:
            if isinstance(obj, dict) and obj.get("Type") == "/Filespec" and obj["UF"].string in relationships:
                obj["AFRelationship"] = f"/{relationships[obj['UF'].string]}"
                associated.append(obj.reference)
        if associated:
            pdf.catalog["AF"] = pydyf.Array(associated)

    return finish


def write_pdf(report: Report, path: Path, *, attachment: Path | None = None) -> None:
    """Render ``report`` to ``path``; ``attachment`` (report.json) is embedded so data travels with the document."""
    attachments = []
    if attachment is not None:
        # Read here: WeasyPrint only logs an unreadable attachment, and a PDF silently without its data is wrong.
        data = Path(attachment).read_bytes()
        attachments.append(
            Attachment(
                string=data,
                name=Path(attachment).name,
                description="The canonical audit result this document renders",
                created=report.generated_at,
                modified=report.generated_at,
                relationship="Data",
            )
        )
    markup = render_page(
        report,
        medium="print",
        detail_limit=PRINT_DETAIL_LIMIT,
        attachment_name=Path(attachment).name if attachment is not None else None,
    )
    document(markup).write_pdf(Path(path), attachments=attachments, finisher=associate_files(attachments))
