"""The period report as a printable PDF (A4 landscape) drawn by ReportLab, with the trend as a bar chart.

Chinese text needs a font that holds it: WenQuanYi Zen Hei from Debian's ``fonts-wqy-zenhei`` (TrueType
outlines, which ReportLab embeds as a subset; Noto CJK's CFF outlines it cannot). ``make setup`` installs it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from audit.labels import reason_label
from audit.period_report import Breakdown, PeriodReport, UnitSection
from audit.period_words import percent, points, words
from config.errors import Unavailable

FONT = "BwcCJK"
FONT_FILES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
)
CURRENT, PREVIOUS = colors.HexColor("#2b6cb0"), colors.HexColor("#a0aec0")


class PdfFontMissing(Unavailable):
    code = "pdf_font_missing"


@cache
def _font() -> str:
    """Register the CJK font once per process; missing, it is the set-up's fault, said plainly."""
    for path in FONT_FILES:
        if path.is_file():
            pdfmetrics.registerFont(TTFont(FONT, str(path), subfontIndex=0))
            return FONT
    raise PdfFontMissing("no Chinese font for the PDF: install Debian's fonts-wqy-zenhei (make setup does)")


def _styles(font: str) -> dict[str, ParagraphStyle]:
    return {
        "title": ParagraphStyle("title", fontName=font, fontSize=16, leading=22, spaceAfter=6),
        "h2": ParagraphStyle("h2", fontName=font, fontSize=12, leading=16, spaceBefore=10, spaceAfter=4),
        "body": ParagraphStyle("body", fontName=font, fontSize=9, leading=13),
    }


def _table(rows: Sequence[Sequence[Any]], font: str) -> Table:
    table = Table([[("" if v is None else str(v)) for v in row] for row in rows], repeatRows=1, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), font),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#edf2f7")),
                ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
            ]
        )
    )
    return table


def _unit_rows(report: PeriodReport, w: dict[str, str]) -> list[list[Any]]:
    heads = ["unit", "actions", "complete", "pending", "incomplete", "rate", "prev_actions", "prev_rate", "change"]
    heads += ["recordings", "late", "late_rate"]
    rows: list[list[Any]] = [[w[h] for h in heads]]
    for s in (*report.units, report.total):
        rows.append(_unit_row(s, w, s is report.total))
    return rows


def _unit_row(s: UnitSection, w: dict[str, str], total: bool) -> list[Any]:
    c, b = s.current, s.previous
    name = w["total"] if total else (s.unit if s.unit is not None else w["no_unit"])
    return [
        name,
        c.actions,
        c.complete,
        c.pending,
        c.incomplete,
        percent(c.rate),
        b.actions,
        percent(b.rate),
        points(s.change),
        s.uploads.recordings,
        s.uploads.late,
        percent(s.uploads.late_rate),
    ]


def _chart(report: PeriodReport, w: dict[str, str], font: str) -> Drawing:
    """Coverage rate per unit, this period beside the previous one, in percent."""
    units = report.units or (report.total,)
    drawing = Drawing(240 * mm, 80 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 15 * mm, 15 * mm, 170 * mm, 55 * mm
    chart.data = [
        [round((s.current.rate or 0) * 100, 1) for s in units],
        [round((s.previous.rate or 0) * 100, 1) for s in units],
    ]
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, 100, 20
    chart.valueAxis.labels.fontName = font
    chart.categoryAxis.categoryNames = [s.unit if s.unit is not None else w["no_unit"] for s in units]
    chart.categoryAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = 7
    chart.bars[0].fillColor, chart.bars[1].fillColor = CURRENT, PREVIOUS
    legend = Legend()
    legend.x, legend.y, legend.fontName = 192 * mm, 60 * mm, font
    legend.colorNamePairs = [(CURRENT, w["this_period"]), (PREVIOUS, w["previous"])]
    drawing.add(chart)
    drawing.add(legend)
    drawing.add(String(15 * mm, 74 * mm, f"{w['trend']} (%)", fontName=font, fontSize=10))
    return drawing


def _breakdown_rows(rows: Sequence[Breakdown], w: dict[str, str], key: str, none: str) -> list[list[Any]]:
    heads = [w[key], w["actions"], w["complete"], w["incomplete"], w["rate"]]
    if key == "device":
        heads += [w["recordings"], w["late"], w["late_rate"]]
    out: list[list[Any]] = [heads]
    for b in rows:
        c = b.current
        row: list[Any] = [b.key if b.key is not None else none, c.actions, c.complete, c.incomplete, percent(c.rate)]
        if key == "device":
            row += [b.uploads.recordings, b.uploads.late, percent(b.uploads.late_rate)]
        out.append(row)
    return out


def _findings(report: PeriodReport, w: dict[str, str], st: dict[str, ParagraphStyle], font: str) -> Flowable:
    if not report.findings_available:
        return Paragraph(escape(w["no_findings"]), st["body"])
    rows: list[list[Any]] = [[w[h] for h in ("unit", "opened", "closed_in_time", "closed_late", "overdue")]]
    for s in (*report.units, report.total):
        f = s.findings
        name = w["total"] if s is report.total else (s.unit if s.unit is not None else w["no_unit"])
        rows.append([name, *((f.opened, f.closed_in_time, f.closed_late, f.overdue) if f else ("",) * 4)])
    return _table(rows, font)


def render_period_pdf(report: PeriodReport, lang: str) -> bytes:
    """The PDF's bytes, in ``lang``."""
    font, w = _font(), words(lang)
    st = _styles(font)
    p, q = report.period, report.previous
    a = report.attribution
    reasons = [[w["unit"], w["reason"], w["count"]]] + [
        [w["total"] if s is report.total else (s.unit or w["no_unit"]), reason_label(code, lang), n]
        for s in (report.total, *report.units)
        for code, n in s.reasons
    ]
    story: list[Flowable] = [
        Paragraph(escape(w["title"]), st["title"]),
        Paragraph(
            escape(
                f"{w['period']}: {p.start} – {p.end} · {w['previous']}: {q.start} – {q.end} · "
                f"{w['unit']}: {report.unit or w['all_units']} · {w['timezone']}: {report.timezone} · "
                f"{w['generated']}: {report.generated_at.isoformat()}"
            ),
            st["body"],
        ),
        Paragraph(escape(w["per_unit"]), st["h2"]),
        _table(_unit_rows(report, w), font),
        Spacer(1, 4 * mm),
        _chart(report, w, font),
        Paragraph(escape(w["reasons"]), st["h2"]),
        _table(reasons, font) if len(reasons) > 1 else Paragraph(escape(w["none"]), st["body"]),
        Paragraph(escape(w["uploads"]), st["h2"]),
        Paragraph(
            escape(
                w["attribution"].format(
                    late=a.late_without_unit, action=a.via_action, assignment=a.via_assignment, none=a.unattributed
                )
            ),
            st["body"],
        ),
        Paragraph(escape(w["findings"]), st["h2"]),
        _findings(report, w, st, font),
        Paragraph(escape(w["devices"]), st["h2"]),
        _table(_breakdown_rows(report.devices, w, "device", w["no_device"]), font),
        Paragraph(escape(w["officers"]), st["h2"]),
        _table(_breakdown_rows(report.officers, w, "officer", w["no_assignment"]), font),
    ]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=landscape(A4), leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm, bottomMargin=12 * mm
    )
    doc.title = w["title"]
    doc.build(story)
    return out.getvalue()
