"""The approval letter (审批单): one data shape drawn twice, as a printable page and as a PDF.

The PDF is made in pure Python (reportlab). Chinese text is set in a CJK TrueType font embedded in
the PDF (see ``cjk_font``), so it reads and prints the same anywhere. The QR code (segno) holds the
public verification address (on ``GOVERN_PUBLIC_URL``): the request number and the digest of its
seal, never its content; a letter without a seal has no QR code, only its state.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache
from importlib import resources
from pathlib import Path

import segno
from markupsafe import Markup, escape
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

# TrueType (not CFF: reportlab embeds TrueType outlines only) CJK fonts, in order of preference.
# The first is WenQuanYi Micro Hei as the PyPI package paperang-p2-fonts-cjk ships it (a dependency
# of govern, so every machine that installs govern has it); the others are the same or similar
# fonts from Debian's packages (fonts-wqy-microhei, fonts-wqy-zenhei, fonts-arphic-uming).
CJK_FONTS = (
    ("package:paperang_p2_fonts_cjk/fonts/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
)

# Every character the letter prints itself; a font missing one of them would print a box.
LETTER_GLYPHS = "保密信息对外提供审批单编号状态协议甲方乙方申请人接收方用途期限审核意见·—–"


class NoCJKFont(RuntimeError):
    """No font on this machine can print the letter's Chinese: install govern's dependencies
    (paperang-p2-fonts-cjk) or Debian's fonts-wqy-microhei."""


# The letter's headings: Chinese first, as the office files it, with the English beside it.
HEADINGS = {
    "title": "保密信息对外提供审批单",
    "subtitle": "Approval of a disclosure of confidential information (clause 3.6)",
    "number": "编号 No.",
    "state": "状态 State",
    "agreement": "协议 Agreement",
    "parties": "甲方 / 乙方 Owner / Vendor",
    "filed": "申请人 Filed by",
    "third_party": "接收方 Third party",
    "purpose": "用途 Purpose",
    "form": "提供方式 Form",
    "window": "期限 Window",
    "items": "信息清单 Items",
    "steps": "审批经过 Reviewers and decisions",
    "seal": "电子签章 Seal",
    "verify": "核验 Verify",
    # A letter without a seal (denied, withdrawn, not yet decided) has nothing to verify.
    "unsealed": "无签章，无须核验；本单不提供任何信息 · No seal to verify; this letter discloses nothing:",
}


# The same letter for a subcontractor's minimisation record (clauses 3.5, 3.7): its own title and
# the names of the rows that differ.
SUBCONTRACTOR_HEADINGS = {
    **HEADINGS,
    "title": "分包方数据最小化记录审批单",
    "subtitle": "Approval of a subcontractor's minimisation record (clauses 3.5, 3.7)",
    "third_party": "分包方 Subcontractor",
    "form": "服务 Service",
    "window": "期限 Until (data-security agreement)",
    "items": "信息及字段 Items and fields",
}


def _font_path(spec: str) -> Path | None:
    if spec.startswith("package:"):
        package, _, inside = spec.removeprefix("package:").partition("/")
        try:
            return Path(str(resources.files(package).joinpath(inside)))
        except ModuleNotFoundError:
            return None
    return Path(spec)


@lru_cache(maxsize=1)
def cjk_font() -> str:
    """Register and name the font the PDF's Chinese is set in: a TrueType font, embedded in the
    PDF (as a subset), that has every glyph the letter prints. Without one the PDF is refused
    with a clear error, never printed in boxes or in a font the reader's machine may lack."""
    tried = []
    for spec, index in CJK_FONTS:
        path = _font_path(spec)
        if path is None or not path.exists():
            tried.append(spec)
            continue
        kwargs = {"subfontIndex": index} if index is not None else {}
        font = TTFont("GovernCJK", str(path), **kwargs)
        missing = [c for c in LETTER_GLYPHS if ord(c) not in font.face.charToGlyph]
        if missing:
            tried.append(f"{spec} (lacks {''.join(missing)})")
            continue
        pdfmetrics.registerFont(font)
        return "GovernCJK"
    raise NoCJKFont("no CJK TrueType font for the letter; tried: " + "; ".join(tried))


def qr_svg(url: str) -> Markup:
    """The verification address as an inline SVG QR code (no script, no image request)."""
    qr = segno.make(url, error="m")
    size = len(qr.matrix) + 8
    cells = [
        f'<rect x="{x + 4}" y="{y + 4}" width="1" height="1"/>'
        for y, row in enumerate(qr.matrix)
        for x, dark in enumerate(row)
        if dark
    ]
    # Safe: the only text is the escaped address; everything else is numbers we formatted.
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" class="qr" '
        f'role="img" aria-label="{escape(url)}" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/><g fill="#000">{"".join(cells)}</g></svg>'
    )


class QrFlowable(Flowable):
    """The same QR code, drawn into the PDF as filled squares."""

    def __init__(self, url: str, size: float = 32 * mm):
        super().__init__()
        self.matrix = segno.make(url, error="m").matrix
        self.size = size
        self.width = self.height = size

    def draw(self):
        cell = self.size / (len(self.matrix) + 8)
        self.canv.setFillColor(colors.black)
        n = len(self.matrix)
        for y, row in enumerate(self.matrix):
            for x, dark in enumerate(row):
                if dark:
                    self.canv.rect((x + 4) * cell, (n + 3 - y) * cell, cell, cell, 0, 1)


class SealStamp(Flowable):
    """The office's red stamp beside an applied seal: a picture only; the JWS is the seal."""

    def __init__(self, owner: str, font: str, size: float = 30 * mm):
        super().__init__()
        self.owner, self.font, self.size = owner, font, size
        self.width = self.height = size

    def draw(self):
        c, r = self.canv, self.size / 2
        c.saveState()
        c.setStrokeColor(colors.HexColor("#c8102e"))
        c.setFillColor(colors.HexColor("#c8102e"))
        c.setLineWidth(2)
        c.circle(r, r, r - 2, stroke=1, fill=0)
        # A five-pointed star in the middle, as on an office's round seal.
        points = []
        for k in range(10):
            radius = r * (0.28 if k % 2 == 0 else 0.11)
            angle = math.pi / 2 + k * math.pi / 5
            points.append((r + radius * math.cos(angle), r + 2 + radius * math.sin(angle)))
        path = c.beginPath()
        path.moveTo(*points[0])
        for point in points[1:]:
            path.lineTo(*point)
        path.close()
        c.drawPath(path, stroke=0, fill=1)
        name = self.owner[:14]
        # The name sits on a chord a third of the way up: about 1.5 radii of room.
        c.setFont(self.font, min(7.5, 1.5 * r / max(1, len(name))))
        c.drawCentredString(r, r + r * 0.38, name)
        c.setFont(self.font, 7)
        c.drawCentredString(r, r - r * 0.55, "审批专用章")
        c.restoreState()


def pdf(letter: dict) -> bytes:
    """The letter as an A4 PDF."""
    headings = letter.get("headings", HEADINGS)
    font = cjk_font()
    body = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=13)
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=10)
    head = ParagraphStyle("head", parent=body, textColor=colors.HexColor("#444444"))
    title = ParagraphStyle("title", parent=body, fontSize=17, leading=22, alignment=TA_CENTER)
    sub = ParagraphStyle("sub", parent=small, alignment=TA_CENTER)

    def p(text, style=body):
        return Paragraph(str(escape(text if text is not None else "—")), style)

    rows = [[p(headings[key], head), p(value)] for key, value in letter_rows(letter)]
    items = [[p("#", head), p("名称 Title", head), p("SHA-256", head)]] + [
        [p(str(i["id"])), p(i["title"]), p(i["sha256"], small)] for i in letter["items"]
    ]
    steps = [
        [p("角色 Role", head), p("人员 Who", head), p("时间 When", head), p("意见 Decision", head)]
    ]
    steps += [[p(s["role"]), p(s["who"]), p(s["at"]), p(s["decision"])] for s in letter["steps"]]
    seal = letter.get("seal")
    seal_text = (
        f"key id {seal['kid']} · {seal['alg']} · JWS SHA-256 {seal['digest']}"
        if seal
        else "未盖章 not sealed"
    )
    verify = letter["verify_url"]
    verify_text = verify or f"{headings['unsealed']} {letter['state']}"
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.6, colors.HexColor("#333333")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f3f0ec")),
        ]
    )
    listing = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.6, colors.HexColor("#333333")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f3f0ec")),
        ]
    )
    width = A4[0] - 36 * mm
    story = [
        p(headings["title"], title),
        p(headings["subtitle"], sub),
        Spacer(1, 6 * mm),
        Table(rows, colWidths=[45 * mm, width - 45 * mm], style=grid),
        Spacer(1, 4 * mm),
        p(headings["items"], head),
        Table(items, colWidths=[12 * mm, 60 * mm, width - 72 * mm], style=listing),
        Spacer(1, 4 * mm),
        p(headings["steps"], head),
        Table(steps, colWidths=[38 * mm, 30 * mm, 42 * mm, width - 110 * mm], style=listing),
        Spacer(1, 4 * mm),
        Table(
            [
                [
                    p(headings["seal"], head),
                    [p(seal_text, small), SealStamp(letter["agreement"]["owner"], font)]
                    if seal
                    else p(seal_text, small),
                    QrFlowable(verify) if verify else "",
                ],
                [p(headings["verify"], head), p(verify_text, small), ""],
            ],
            colWidths=[45 * mm, width - 85 * mm, 40 * mm],
            style=TableStyle(
                [
                    ("GRID", (0, 0), (1, -1), 0.6, colors.HexColor("#333333")),
                    ("SPAN", (2, 0), (2, 1)),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f3f0ec")),
                ]
            ),
        ),
    ]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"{headings['title']} {letter['number']}",
        author=letter["agreement"]["owner"],
    )
    doc.build(story)
    return out.getvalue()


def letter_rows(letter: dict) -> list[tuple[str, str]]:
    """The letter's head rows, in order: what both the page and the PDF show."""
    a = letter["agreement"]
    return [
        ("number", letter["number"]),
        ("state", letter["state"]),
        ("agreement", a["title"]),
        ("parties", f"{a['owner']} / {a['vendor']}"),
        ("filed", letter["filed"]),
        ("third_party", letter["third_party"]),
        ("purpose", letter["purpose"]),
        ("form", letter["form"]),
        ("window", letter["window"]),
    ]
