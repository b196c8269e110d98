"""Pictures drawn on the server as inline SVG: no script, no external file, nothing the
Content-Security-Policy has to allow. Every text is escaped; every picture has a text twin on its
page (a table or a sentence), for readers who cannot see it."""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

from govern.web.i18n import show_date

ALLOW, DENY, INK, MUTED, ACCENT = "#2e7d4f", "#b3261e", "#1d232a", "#6b7280", "#7a1f1f"


def _text(x, y, s, size=12, anchor="start", fill=INK, weight="normal") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}" font-weight="{weight}">{escape(s)}</text>'
    )


def _svg(width: int, height: int, title: str, body: list[str]) -> Markup:
    # Safe: numbers are formatted by us and every text went through escape() on its way in.
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}" class="chart">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def timeline(
    signed: date, ends: date, today: date, protected: int, title: str, labels: dict
) -> Markup:
    """An agreement's clock (clause 5): signed → term end → today, with the protected items."""
    first, last = min(signed, today), max(ends, today)
    span = max(1, (last - first).days)
    left, right, width = 40, 680, 720

    def x(d: date) -> float:
        return left + (right - left) * (d - first).days / span

    body = [
        f'<line x1="{left}" y1="60" x2="{right}" y2="60" stroke="{MUTED}" stroke-width="2"/>',
        f'<rect x="{x(signed):.1f}" y="52" width="{max(2, x(ends) - x(signed)):.1f}" '
        f'height="16" fill="{ACCENT}" opacity="0.85"/>',
    ]
    if today > ends:
        # clause 5.2: after the term, unreleased items stay protected; drawn as a hatched tail.
        body.append(
            f'<rect x="{x(ends):.1f}" y="56" width="{x(today) - x(ends):.1f}" height="8" '
            f'fill="{ACCENT}" opacity="0.35"/>'
        )
    marks = [
        (signed, labels["signed"], 40, "start"),
        (ends, labels["term_end"], 40, "middle"),
        (today, labels["today"], 100, "middle"),
    ]
    for when, name, y, anchor in marks:
        px = x(when)
        if anchor == "middle":
            anchor = "end" if px > right - 60 else ("start" if px < left + 60 else "middle")
        body.append(
            f'<line x1="{px:.1f}" y1="46" x2="{px:.1f}" y2="74" stroke="{INK}" stroke-width="2"/>'
        )
        body.append(_text(px, y - 14, name, 12, anchor, INK, "bold"))
        body.append(_text(px, y, show_date(when), 12, anchor, MUTED))
    body.append(_text(left, 124, labels["protected"].format(n=protected), 13, "start", ACCENT))
    return _svg(width, 136, title, body)


def decisions_per_day(days: list[tuple[date, dict]], title: str, labels: dict) -> Markup:
    """Stacked bars per day: allowed below, denied above."""
    width, height, left, bottom, top = 720, 220, 44, 180, 16
    peak = max([c["allow"] + c["deny"] for _, c in days] + [1])
    step = (width - left - 10) / max(1, len(days))
    bar = max(2.0, step * 0.7)
    body = [
        f'<line x1="{left}" y1="{bottom}" x2="{width - 10}" y2="{bottom}" stroke="{MUTED}"/>',
        _text(left - 6, top + 4, str(peak), 11, "end", MUTED),
        _text(left - 6, bottom, "0", 11, "end", MUTED),
    ]
    scale = (bottom - top) / peak
    for i, (day, counts) in enumerate(days):
        x = left + i * step + (step - bar) / 2
        allow_h, deny_h = counts["allow"] * scale, counts["deny"] * scale
        tip = f"{show_date(day)}: {counts['allow']} / {counts['deny']}"
        body.append(
            f'<rect x="{x:.1f}" y="{bottom - allow_h:.1f}" width="{bar:.1f}" '
            f'height="{allow_h:.1f}" fill="{ALLOW}"><title>{escape(tip)}</title></rect>'
        )
        body.append(
            f'<rect x="{x:.1f}" y="{bottom - allow_h - deny_h:.1f}" width="{bar:.1f}" '
            f'height="{deny_h:.1f}" fill="{DENY}"><title>{escape(tip)}</title></rect>'
        )
        last = len(days) - 1
        if i in (0, last) or (len(days) > 10 and i % 7 == 0 and last - i > 4):
            anchor = "start" if i == 0 else ("end" if i == last else "middle")
            lx = x if i == 0 else (x + bar if i == last else x + bar / 2)
            body.append(_text(lx, bottom + 16, show_date(day), 10, anchor, MUTED))
    body.append(f'<rect x="{left}" y="{height - 16}" width="10" height="10" fill="{ALLOW}"/>')
    body.append(_text(left + 14, height - 7, labels["allow"], 11))
    body.append(f'<rect x="{left + 110}" y="{height - 16}" width="10" height="10" fill="{DENY}"/>')
    body.append(_text(left + 124, height - 7, labels["deny"], 11))
    return _svg(width, height, title, body)


def _wide(ch: str) -> bool:
    """A character drawn a full em wide: Han, kana, hangul and the full-width forms."""
    return ch >= "\u2e80" and not ("\ud7b0" <= ch <= "\uf8ff")


def _clip(text: str, room: float, size: int = 12) -> str:
    """``text`` cut, with an ellipsis, to fit ``room`` pixels at ``size``: a Chinese character
    takes a full em, others about 0.6 em (a count of characters let a Chinese reason run off the
    picture's left edge)."""
    used = 0.0
    for i, ch in enumerate(text):
        used += size if _wide(ch) else size * 0.6
        if used > room:
            return text[: max(0, i - 1)] + "…"
    return text


def denials_by_reason(reasons: list[tuple[str, int]], title: str, empty: str) -> Markup:
    """Horizontal bars, the most frequent reason first."""
    width, row = 720, 26
    height = max(40, row * len(reasons) + 12)
    if not reasons:
        return _svg(width, height, title, [_text(10, 24, empty, 13, fill=MUTED)])
    peak = max(c for _, c in reasons)
    body = []
    for i, (reason, count) in enumerate(reasons):
        y = 6 + i * row
        # The longest bar leaves room for its count inside the picture (260 pushed it past 720).
        w = 220 * count / peak
        shown = _clip(reason, 430)
        body.append(_text(440, y + 15, shown, 12, "end"))
        body.append(
            f'<rect x="450" y="{y + 3}" width="{max(2, w):.1f}" height="16" fill="{DENY}">'
            f"<title>{escape(reason)}: {count}</title></rect>"
        )
        body.append(_text(456 + w, y + 15, str(count), 12))
    return _svg(width, height, title, body)
