"""Server-rendered SVG charts: small pure functions that return escaped markup (:class:`markupsafe.Markup`).

No third-party script and no inline style (the page's CSP stays strict): colours come from classes in
``static/style.css``; geometry is written as SVG attributes. Every chart is a ``<figure class="chart-figure">``
holding an ``<svg role="img">`` with a ``<title>`` and a ``<desc>``, text labels on the picture (values,
names, flags, so colour is never the only carrier) and, under it, the numbers as a table inside
``<details>``. Every text that comes from data (labels, names) is escaped; the output is well-formed XML.

Insert a chart in a template as ``{{ chart }}`` (it is already :class:`Markup`).

The functions (keyword arguments after ``*``):

``bar_chart(bars, *, title, desc="", unit="", value_format=None, width=640, height=180, label_every=None,
numbers=True) -> Markup``
    One bar per ``(label, value)`` pair of ``bars``, in order, left to right; values >= 0. ``unit`` follows
    each value in the tooltips and the table (``"€"``, ``"items"``); ``value_format`` (a function of the value)
    writes a value (default: an integer if whole, else one decimal). Values are printed above the bars when
    there are at most 16; x labels are printed every ``label_every`` bars (default: as many as fit).
    Example, earnings per week::

        bar_chart([("2026-W01", 12.5), ("2026-W02", 0)], title="Earnings per week", unit="€",
                  value_format=lambda v: f"{v:.2f}")

``line_chart(series, *, title, desc="", projected=None, target=None, target_label="", y_min=None, y_max=None,
value_format=None, width=640, height=200, numbers=True) -> Markup``
    Lines over time: ``series`` maps a name to ``[(date, value), ...]`` (value may be ``None`` for a gap).
    ``projected`` maps a series' name to its projected points, drawn dashed (a finish estimate).
    ``target`` draws a horizontal line with ``target_label``. Each series has its own marker shape as well
    as its own colour, and its name at the end of its line.

``finish_charts(per_day, *, done, total, finish) -> (Markup, Markup)``
    The project page's items completed per day and items done with a dashed finish estimate (lines).

``heatmap(rows, cols, counts, *, title, desc="", row_title="consensus", col_title="given", width=None)
-> Markup``
    A matrix (the confusion matrix: ``counts[i][j]`` = how often row label ``i`` was given as column
    label ``j``). Each cell is shaded by its share of its row and prints its count and share.

``scatter(points, *, title, desc="", x_label, y_label, x_format=None, y_format=None, x_log=False,
y_min=None, y_max=None, width=640, height=260, numbers=True) -> Markup``
    ``points`` are dicts ``{"label", "x", "y", "flag"}`` (``flag`` a short reason or ``None``); flagged
    points are drawn as a cross with their reason written beside them.

``throughput_chart(per_minute) -> Markup``
    The project page's last hour: a bar chart of annotations per minute, oldest first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import TypeGuard

from markupsafe import Markup, escape

__all__ = ["bar_chart", "heatmap", "line_chart", "scatter", "throughput_chart"]

_MARKERS = ("circle", "square", "triangle", "diamond", "cross", "bar")
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 44, 12, 18, 28


def _num(x: float) -> str:
    """A coordinate: at most one decimal, no ``-0``."""
    text = f"{x:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _default_format(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def _finite(v: object) -> TypeGuard[float]:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def _svg(width: float, height: float, title: str, desc: str, body: str, kind: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" viewBox="0 0 {_num(width)} '
            f'{_num(height)}" role="img" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title><desc>{escape(desc or title)}</desc>{body}</svg>")


def _text(x: float, y: float, text: str, cls: str = "", anchor: str = "middle") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}"{klass}>{escape(text)}</text>'


def _table(caption: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<details class="chart-numbers"><summary>The numbers</summary><table class="chart-table">'
            f"<caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            f"</table></details>")


def _figure(svg: str, table: str = "", empty: str = "") -> Markup:
    note = f'<p class="muted chart-empty">{escape(empty)}</p>' if empty else ""
    return Markup(f'<figure class="chart-figure">{svg}{note}{table}</figure>')


def _ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """Round tick values covering ``lo..hi``."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out, v = [], first
    while v <= hi + 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def _y_axis(lo: float, hi: float, top: float, bottom: float, left: float, right: float,
            fmt: Callable[[float], str]) -> tuple[str, Callable[[float], float]]:
    span = (hi - lo) or 1.0

    def y_of(v: float) -> float:
        return bottom - (v - lo) / span * (bottom - top)

    parts = []
    for t in _ticks(lo, hi):
        y = y_of(t)
        parts.append(f'<line class="grid" x1="{_num(left)}" x2="{_num(right)}" y1="{_num(y)}" y2="{_num(y)}"/>')
        parts.append(_text(left - 4, y + 4, fmt(t), "tick", "end"))
    return "".join(parts), y_of


# ---- bar chart --------------------------------------------------------------------------------------


def bar_chart(bars: Sequence[tuple[str, float]], *, title: str, desc: str = "", unit: str = "",
              value_format: Callable[[float], str] | None = None, width: int = 640, height: int = 180,
              label_every: int | None = None, numbers: bool = True) -> Markup:
    """Bars for ``(label, value)`` pairs, left to right (see the module docstring)."""
    fmt = value_format or _default_format
    suffix = f" {unit}" if unit else ""
    bars = [(str(label), float(v) if _finite(v) else 0.0) for label, v in bars]
    table = _table(title, ("", f"value{suffix}"), [(label, fmt(v)) for label, v in bars]) if numbers else ""
    if not bars:
        return _figure(_svg(width, 40, title, desc, _text(width / 2, 24, "no data yet", "empty"), "bars"),
                       empty="Nothing to show yet.")
    top = max(max(v for _, v in bars), 0.0)
    left, right, ytop, bottom = _PAD_LEFT, width - _PAD_RIGHT, _PAD_TOP, height - _PAD_BOTTOM
    axis, y_of = _y_axis(0.0, top or 1.0, ytop, bottom, left, right, fmt)
    step = (right - left) / len(bars)
    fits = max(1, int(step * len(bars) // 70))  # about 70 px per x label
    every = label_every or max(1, math.ceil(len(bars) / fits))
    parts = [axis]
    for i, (label, v) in enumerate(bars):
        x = left + i * step
        y = y_of(v)
        w = max(step - 2, 0.5)
        parts.append(f'<rect class="bar" x="{_num(x + 1)}" y="{_num(y)}" width="{_num(w)}" '
                     f'height="{_num(bottom - y)}"><title>{escape(label)}: {escape(fmt(v) + suffix)}</title></rect>')
        if len(bars) <= 16:
            parts.append(_text(x + step / 2, y - 3, fmt(v), "value"))
        if i % every == 0 or i == len(bars) - 1 and len(bars) <= 16:
            parts.append(_text(x + step / 2, height - 10, label, "tick"))
    parts.append(f'<line class="axis" x1="{left}" x2="{right}" y1="{_num(bottom)}" y2="{_num(bottom)}"/>')
    return _figure(_svg(width, height, title, desc, "".join(parts), "bars"), table)


def throughput_chart(per_minute: Sequence[int]) -> Markup:
    """The project page's last hour: annotations per minute, oldest on the left."""
    n = len(per_minute)
    bars = [(f"{n - i} min ago", c) for i, c in enumerate(per_minute)]
    return bar_chart(bars, title="Annotations per minute over the last hour",
                     desc="One bar per minute, oldest on the left, now on the right.", unit="annotations",
                     width=960, height=160, label_every=10, numbers=False)


def finish_charts(per_day: Sequence[tuple[date, int]], *, done: int, total: int,
                  finish: date | None) -> tuple[Markup, Markup]:
    """The project page's pace: items completed per day (oldest on the left) and items done over the
    same days with the finish estimate as a dashed segment up to ``total`` on ``finish`` (none without one)."""
    daily = line_chart({"completed": list(per_day)}, title="Items completed per day",
                       desc="One point per UTC day over the last 30 days, today on the right: the items that "
                            "got their last needed answer that day.", y_min=0, width=960, height=160)
    after, cumulative = 0, []
    for d, n in reversed(per_day):
        cumulative.append((d, done - after))
        after += n
    cumulative.reverse()
    projected = {"items done": [(finish, total)]} if finish is not None and per_day else None
    lines = line_chart({"items done": cumulative}, title="Items done, and when the rest will be",
                       desc="Items done at the end of each day; the dashed segment runs at the recent rate to "
                            "the day every item is done." if projected else "Items done at the end of each day.",
                       projected=projected, target=total, target_label=f"all {total} items", y_min=0,
                       width=960, height=200)
    return daily, lines


# ---- lines over time --------------------------------------------------------------------------------


def _marker(kind: str, x: float, y: float, cls: str, tip: str) -> str:
    t = f"<title>{escape(tip)}</title>"
    if kind == "square":
        return f'<rect class="{cls}" x="{_num(x - 3)}" y="{_num(y - 3)}" width="6" height="6">{t}</rect>'
    if kind == "triangle":
        pts = f"{_num(x)},{_num(y - 4)} {_num(x + 4)},{_num(y + 3)} {_num(x - 4)},{_num(y + 3)}"
        return f'<polygon class="{cls}" points="{pts}">{t}</polygon>'
    if kind == "diamond":
        pts = f"{_num(x)},{_num(y - 4)} {_num(x + 4)},{_num(y)} {_num(x)},{_num(y + 4)} {_num(x - 4)},{_num(y)}"
        return f'<polygon class="{cls}" points="{pts}">{t}</polygon>'
    if kind == "cross":
        d = (f"M{_num(x - 4)} {_num(y - 4)}L{_num(x + 4)} {_num(y + 4)}"
             f"M{_num(x - 4)} {_num(y + 4)}L{_num(x + 4)} {_num(y - 4)}")
        return f'<path class="{cls} stroke" d="{d}">{t}</path>'
    if kind == "bar":
        return f'<rect class="{cls}" x="{_num(x - 1.5)}" y="{_num(y - 5)}" width="3" height="10">{t}</rect>'
    return f'<circle class="{cls}" cx="{_num(x)}" cy="{_num(y)}" r="3.5">{t}</circle>'


def line_chart(series: Mapping[str, Sequence[tuple[date, float | None]]], *, title: str, desc: str = "",
               projected: Mapping[str, Sequence[tuple[date, float]]] | None = None,
               target: float | None = None, target_label: str = "", y_min: float | None = None,
               y_max: float | None = None, value_format: Callable[[float], str] | None = None,
               width: int = 640, height: int = 200, numbers: bool = True) -> Markup:
    """Lines over time, one per series, with optional dashed projections (see the module docstring)."""
    fmt = value_format or _default_format
    projected = projected or {}
    names = list(series)
    everything = [(d, v) for pts in list(series.values()) + list(projected.values()) for d, v in pts if _finite(v)]
    rows = [(name, d.isoformat(), fmt(v) if _finite(v) else "–") for name in names for d, v in series[name]]
    rows += [(f"{name} (projected)", d.isoformat(), fmt(v)) for name, pts in projected.items() for d, v in pts]
    table = _table(title, ("series", "date", "value"), rows) if numbers else ""
    if not everything:
        return _figure(_svg(width, 40, title, desc, _text(width / 2, 24, "no data yet", "empty"), "lines"),
                       empty="Nothing to show yet.")
    days = [d.toordinal() for d, _ in everything]
    d_lo, d_hi = min(days), max(days)
    values = [v for _, v in everything] + ([target] if _finite(target) else [])
    lo = min(values) if y_min is None else y_min
    hi = max(values) if y_max is None else y_max
    if hi <= lo:
        hi = lo + 1
    longest = max((len(n) for n in names), default=0)
    left, right = _PAD_LEFT, width - _PAD_RIGHT - min(longest, 14) * 6.5 - 8
    top, bottom = _PAD_TOP, height - _PAD_BOTTOM
    axis, y_of = _y_axis(lo, hi, top, bottom, left, right, fmt)

    def x_of(d: date) -> float:
        return left + (d.toordinal() - d_lo) / ((d_hi - d_lo) or 1) * (right - left) if d_hi > d_lo \
            else (left + right) / 2

    parts = [axis, f'<line class="axis" x1="{left}" x2="{_num(right)}" y1="{_num(bottom)}" y2="{_num(bottom)}"/>']
    if _finite(target):
        y = y_of(target)
        parts.append(f'<line class="target" x1="{left}" x2="{_num(right)}" y1="{_num(y)}" y2="{_num(y)}"/>')
        if target_label:
            parts.append(_text(left + 4, y - 4, target_label, "target-label", "start"))
    for i, name in enumerate(names):
        cls, shape = f"series-{i % len(_MARKERS)}", _MARKERS[i % len(_MARKERS)]
        pts = [(d, v) for d, v in series[name] if _finite(v)]
        segments, current = [], []
        for d, v in series[name]:
            if _finite(v):
                current.append(f"{_num(x_of(d))},{_num(y_of(v))}")
            elif current:
                segments.append(current)
                current = []
        if current:
            segments.append(current)
        group = [f'<g class="series {cls}"><title>{escape(name)}</title>']
        group += [f'<polyline class="line" points="{" ".join(s)}"/>' for s in segments if len(s) > 1]
        extra = [(d, v) for d, v in projected.get(name, ()) if _finite(v)]
        if extra:
            start = [pts[-1]] if pts else []
            line = " ".join(f"{_num(x_of(d))},{_num(y_of(v))}" for d, v in start + extra)
            group.append(f'<polyline class="line projected" points="{line}"/>')
            d, v = extra[-1]
            group.append(_marker(shape, x_of(d), y_of(v), "marker projected",
                                 f"{name}, projected {d.isoformat()}: {fmt(v)}"))
            group.append(_text(x_of(d), y_of(v) - 7, d.isoformat(), "value", "end"))
        for d, v in pts:
            group.append(_marker(shape, x_of(d), y_of(v), "marker", f"{name}, {d.isoformat()}: {fmt(v)}"))
        if pts:
            d, v = pts[-1]
            label = name if len(name) <= 14 else name[:13] + "…"
            group.append(_text(x_of(d) + 7, y_of(v) + 4, label, "series-label", "start")
                         if not extra else _text(x_of(d) - 6, y_of(v) - 6, label, "series-label", "end"))
        group.append("</g>")
        parts.append("".join(group))
    first, last = date.fromordinal(d_lo), date.fromordinal(d_hi)
    parts.append(_text(left, height - 8, first.isoformat(), "tick", "start"))
    if d_hi > d_lo:
        parts.append(_text(right, height - 8, last.isoformat(), "tick", "end"))
    return _figure(_svg(width, height, title, desc, "".join(parts), "lines"), table)


# ---- heatmap ----------------------------------------------------------------------------------------


def heatmap(rows: Sequence[str], cols: Sequence[str], counts: Sequence[Sequence[float]], *, title: str,
            desc: str = "", row_title: str = "consensus", col_title: str = "given",
            width: int | None = None) -> Markup:
    """A matrix of counts shaded by row share, each cell printing its count and share."""
    rows, cols = [str(r) for r in rows], [str(c) for c in cols]
    headers = [f"{row_title} \\ {col_title}"] + cols
    table_rows = [[r] + [_default_format(counts[i][j]) for j in range(len(cols))] for i, r in enumerate(rows)]
    table = _table(title, headers, table_rows)
    if not rows or not cols:
        return _figure(_svg(width or 320, 40, title, desc, _text((width or 320) / 2, 24, "no data yet", "empty"),
                            "heatmap"), empty="Nothing to show yet.")
    label_w = min(max(len(r) for r in rows), 16) * 7 + 16
    cell = 56 if width is None else max(24, (width - label_w - 8) / len(cols))
    full_width = width or label_w + cell * len(cols) + 8
    top = 48
    height = top + cell * len(rows) + 8
    parts = [_text(label_w + cell * len(cols) / 2, 26, f"{col_title} →", "axis-title"),
             _text(4, 11, f"{row_title} ↓", "axis-title", "start")]
    for j, c in enumerate(cols):
        short = c if len(c) <= 8 else c[:7] + "…"
        parts.append(_text(label_w + j * cell + cell / 2, top - 6, short, "tick"))
    for i, r in enumerate(rows):
        total = sum(counts[i][j] for j in range(len(cols)))
        short = r if len(r) <= 16 else r[:15] + "…"
        y = top + i * cell
        parts.append(_text(label_w - 6, y + cell / 2 + 4, short, "tick", "end"))
        for j, c in enumerate(cols):
            n = counts[i][j]
            share = n / total if total else 0.0
            x = label_w + j * cell
            level = min(5, int(math.ceil(share * 5))) if n else 0
            diag = " diagonal" if r == c else ""
            parts.append(f'<rect class="cell heat-{level}{diag}" x="{_num(x)}" y="{_num(y)}" width="{_num(cell - 2)}" '
                         f'height="{_num(cell - 2)}"><title>{escape(row_title)} {escape(r)}, {escape(col_title)} '
                         f'{escape(c)}: {escape(_default_format(n))} ({share:.0%} of the row)</title></rect>')
            ink = "cell-text dark" if level >= 4 else "cell-text"
            parts.append(_text(x + cell / 2 - 1, y + cell / 2 - 1, _default_format(n), ink))
            if cell >= 40 and total:
                parts.append(_text(x + cell / 2 - 1, y + cell / 2 + 12, f"{share:.0%}", ink + " small"))
    return _figure(_svg(full_width, height, title, desc, "".join(parts), "heatmap"), table)


# ---- scatter ----------------------------------------------------------------------------------------


def scatter(points: Sequence[Mapping], *, title: str, desc: str = "", x_label: str, y_label: str,
            x_format: Callable[[float], str] | None = None, y_format: Callable[[float], str] | None = None,
            x_log: bool = False, y_min: float | None = None, y_max: float | None = None,
            width: int = 640, height: int = 260, numbers: bool = True) -> Markup:
    """Labelled points; flagged points are crosses with their reason beside them."""
    xf, yf = x_format or _default_format, y_format or _default_format
    shown = [p for p in points if _finite(p.get("x")) and _finite(p.get("y")) and (not x_log or p["x"] > 0)]
    rows = [(str(p.get("label", "")), xf(p["x"]) if _finite(p.get("x")) else "–",
             yf(p["y"]) if _finite(p.get("y")) else "–", str(p.get("flag") or "")) for p in points]
    table = _table(title, ("", x_label, y_label, "flag"), rows) if numbers else ""
    if not shown:
        return _figure(_svg(width, 40, title, desc, _text(width / 2, 24, "no data yet", "empty"), "scatter"),
                       table, empty="Nothing to show yet.")
    tx = (lambda v: math.log10(v)) if x_log else (lambda v: v)
    xs = [tx(p["x"]) for p in shown]
    x_lo, x_hi = min(xs), max(xs)
    if x_hi <= x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    pad = (x_hi - x_lo) * 0.06
    x_lo, x_hi = x_lo - pad, x_hi + pad
    ys = [p["y"] for p in shown]
    lo = min(ys) if y_min is None else y_min
    hi = max(ys) if y_max is None else y_max
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    left, right, top, bottom = _PAD_LEFT, width - _PAD_RIGHT, _PAD_TOP, height - _PAD_BOTTOM - 10
    axis, y_of = _y_axis(lo, hi, top, bottom, left, right, yf)

    def x_of(v: float) -> float:
        return left + (tx(v) - x_lo) / (x_hi - x_lo) * (right - left)

    parts = [axis, f'<line class="axis" x1="{left}" x2="{right}" y1="{_num(bottom)}" y2="{_num(bottom)}"/>']
    ticks = [10 ** t for t in _ticks(math.floor(x_lo), math.ceil(x_hi), 4)] if x_log \
        else _ticks(x_lo, x_hi, 5)
    for t in ticks:
        if x_log and not x_lo <= math.log10(t) <= x_hi or not x_log and not x_lo <= t <= x_hi:
            continue
        parts.append(_text(x_of(t), bottom + 14, xf(t), "tick"))
    parts.append(_text((left + right) / 2, height - 6, x_label, "axis-title"))
    parts.append(_text(4, 11, y_label, "axis-title", "start"))
    for p in shown:
        x, y = x_of(p["x"]), y_of(p["y"])
        label = str(p.get("label", ""))
        flag = p.get("flag")
        tip = f"{label}: {x_label} {xf(p['x'])}, {y_label} {yf(p['y'])}" + (f" — {flag}" if flag else "")
        if flag:
            parts.append(_marker("cross", x, y, "marker flagged", tip))
        else:
            parts.append(_marker("circle", x, y, "marker", tip))
        short = label if len(label) <= 16 else label[:15] + "…"
        text = f"{short} ⚑ {flag}" if flag else short
        if len(text) > 40:
            text = text[:39] + "…"
        anchor = "end" if x > (left + right) / 2 else "start"
        parts.append(_text(x + (-7 if anchor == "end" else 7), y - 5, text,
                           "point-label flagged" if flag else "point-label", anchor))
    return _figure(_svg(width, height, title, desc, "".join(parts), "scatter"), table)
