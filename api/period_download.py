"""The period report's downloads, shared by the API and the web page: bytes, media type and file name.

The file name keeps a Chinese unit name through RFC 6266's ``filename*`` (UTF-8, percent-encoded), with an
ASCII ``filename`` beside it for clients that know only that.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import quote

from fastapi import Response

from api.downloads import attachment
from audit.period_report import PeriodReport

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF = "application/pdf"
_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def period_file(report: PeriodReport, fmt: Literal["xlsx", "pdf"], lang: str) -> Response:
    """The report as the file the API and the page both answer with."""
    body, media = render_period(report, fmt, lang)
    return attachment(body, media, period_disposition(report, fmt))


def render_period(report: PeriodReport, fmt: Literal["xlsx", "pdf"], lang: str) -> tuple[bytes, str]:
    # The renderers are imported when a file is asked for: reportlab's charts alone are ~0.3 s of every
    # worker's start-up (and of every `bwc` command), for a download few requests make.
    if fmt == "xlsx":
        from audit.period_render_xlsx import render_period_xlsx

        return render_period_xlsx(report, lang), XLSX
    from audit.period_render_pdf import render_period_pdf

    return render_period_pdf(report, lang), PDF


def period_disposition(report: PeriodReport, ext: str) -> str:
    """``attachment`` with ``period-<from>-<to>[-<unit>].<ext>``, the unit's own name kept in ``filename*``."""
    stem = f"period-{report.period.start}-{report.period.end}"
    unit = report.unit
    ascii_unit = (_ASCII_UNSAFE.sub("_", unit).strip("_") or "unit") if unit else ""
    fallback = f"{stem}-{ascii_unit}.{ext}" if unit else f"{stem}.{ext}"
    full = f"{stem}-{unit}.{ext}" if unit else fallback
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(full, safe='')}"
