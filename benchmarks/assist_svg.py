"""A hand-written SVG chart of part b's results (no plotting library is a dependency).

Left: each run as a point, share of items labelled by people (x) against the accuracy of the final labels
(y), with the issue's targets (at most 30% by people, at least 95% accurate) shaded. Right: each run's
progress, round by round: share of items labelled by the machine (y) against answers from people so far
(x, as a share of the items).
"""

from __future__ import annotations

import json
import sys
from html import escape

COLOURS = {"youtube_spam": "#1b9e77", "rt_polarity": "#d95f02", "sp_sentence_polarity": "#7570b3",
           "trec_question_classification": "#e7298a"}
W, H, PAD = 460, 330, 52


def _variant(r: dict) -> str:
    return (f"{r['features']}, overlap {r['overlap']}" + (f", {1 - r['noise']:.0%} accurate" if r["noise"] else "")
            + (f", validation {r['validation_share']:.0%}" if r.get("validation_share") else ""))


def _axes(x0: float, title: str, xlabel: str, ylabel: str, xr, yr, ticks_x, ticks_y, fmt_x, fmt_y) -> list[str]:
    out = [f'<text x="{x0 + W / 2}" y="20" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
           (f'<rect x="{x0 + PAD}" y="{PAD - 20}" width="{W - PAD - 10}" height="{H - 2 * PAD + 20}" '
            'fill="none" stroke="#444"/>')]
    for t in ticks_x:
        x = _sx(x0, t, xr)
        out.append(f'<line x1="{x}" y1="{H - PAD}" x2="{x}" y2="{H - PAD + 4}" stroke="#444"/>'
                   f'<text x="{x}" y="{H - PAD + 16}" text-anchor="middle">{fmt_x(t)}</text>')
    for t in ticks_y:
        y = _sy(t, yr)
        out.append(f'<line x1="{x0 + PAD - 4}" y1="{y}" x2="{x0 + PAD}" y2="{y}" stroke="#444"/>'
                   f'<text x="{x0 + PAD - 7}" y="{y + 4}" text-anchor="end">{fmt_y(t)}</text>')
    out.append(f'<text x="{x0 + PAD + (W - PAD) / 2}" y="{H - 12}" text-anchor="middle">{escape(xlabel)}</text>')
    out.append(f'<text transform="translate({x0 + 13},{H / 2}) rotate(-90)" text-anchor="middle">'
               f'{escape(ylabel)}</text>')
    return out


def _sx(x0: float, v: float, xr) -> float:
    return round(x0 + PAD + (v - xr[0]) / (xr[1] - xr[0]) * (W - PAD - 10), 1)


def _sy(v: float, yr) -> float:
    return round(H - PAD - (v - yr[0]) / (yr[1] - yr[0]) * (H - 2 * PAD + 20), 1)


def write_svg(results: list[dict], path: str) -> None:
    def pct(v: float) -> str:
        return f"{v:.0%}"

    low = min([0.9] + [int(r["final_accuracy"] * 20) / 20 for r in results])
    xr, yr = (0.0, 1.0), (low, 1.0)
    ticks_y = [round(low + 0.025 * i, 3) for i in range(int(round((1 - low) / 0.025)) + 1)]
    parts = _axes(0, "Share labelled by people vs final accuracy", "items labelled by people",
                  "accuracy of the final labels", xr, yr, [0, .2, .4, .6, .8, 1], ticks_y, pct,
                  lambda v: f"{v:.1%}")
    # the target region: x <= 30%, y >= 95%
    parts.insert(0, f'<rect x="{_sx(0, 0, xr)}" y="{_sy(1, yr)}" width="{_sx(0, .3, xr) - _sx(0, 0, xr)}" '
                    f'height="{_sy(.95, yr) - _sy(1, yr)}" fill="#d9f0d3"/>'
                    f'<text x="{_sx(0, 0.01, xr)}" y="{_sy(.953, yr)}" font-size="10" fill="#2a7">target</text>')
    variants = sorted({_variant(r) for r in results})
    shapes = ["circle", "square", "diamond", "triangle"]
    for r in results:
        x, y = _sx(0, r["people_share"], xr), _sy(max(r["final_accuracy"], yr[0]), yr)
        c = COLOURS.get(r["set"], "#333")
        shape = shapes[variants.index(_variant(r)) % len(shapes)]
        parts.append(_marker(shape, x, y, c, f"{r['set']} ({_variant(r)}): {r['people_share']:.1%} by people, "
                                             f"accuracy {r['final_accuracy']:.3f}"))
    x0 = W + 20
    parts += _axes(x0, "Machine labels as people answer", "answers from people / items",
                   "items labelled by the machine", (0, 3), (0, 1), [0, .5, 1, 1.5, 2, 2.5, 3], [0, .25, .5, .75, 1],
                   lambda v: f"{v:g}", pct)
    for r in results:
        pts = [(0.0, 0.0)] + [(h["people_answers"] / r["items"], h["machine"] / r["items"]) for h in r["history"]]
        xy = " ".join(f"{_sx(x0, min(a, 3), (0, 3))},{_sy(b, (0, 1))}" for a, b in pts)
        dash = (' stroke-dasharray="5,3"' if r["overlap"] > 1 else ' stroke-dasharray="1,2"'
                if r["features"] != "tfidf" else ' stroke-dasharray="9,2,2,2"' if r.get("validation_share") else "")
        parts.append(f'<polyline points="{xy}" fill="none" stroke="{COLOURS.get(r["set"], "#333")}" '
                     f'stroke-width="1.8"{dash}><title>{escape(r["set"])} ({escape(_variant(r))})</title></polyline>')
    # legends
    ly = H + 8
    present = [(name, c) for name, c in COLOURS.items() if any(r["set"] == name for r in results)]
    for i, (name, c) in enumerate(present):
        parts.append(f'<rect x="{PAD + i * 215}" y="{ly}" width="10" height="10" fill="{c}"/>'
                     f'<text x="{PAD + 14 + i * 215}" y="{ly + 9}">{escape(name)}</text>')
    for i, v in enumerate(variants):
        parts.append(_marker(shapes[i % len(shapes)], PAD + 5 + i * 215, ly + 26, "#555", v) +
                     f'<text x="{PAD + 14 + i * 215}" y="{ly + 30}">{escape(v)}</text>')
    parts.append(f'<text x="{PAD}" y="{ly + 50}" font-size="10" fill="#555">right panel: solid = TF-IDF overlap 1, '
                 'dashed = overlap 3 with noisy annotators, dotted = MiniLM, dash-dot = 30% validation sample</text>')
    total_w, total_h = 2 * W + 20, H + 70
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
           f'viewBox="0 0 {total_w} {total_h}" font-family="sans-serif" font-size="11">'
           f'<rect width="100%" height="100%" fill="white"/>' + "".join(parts) + "</svg>\n")
    with open(path, "w") as f:
        f.write(svg)


def _marker(shape: str, x: float, y: float, colour: str, title: str) -> str:
    t = f"<title>{escape(title)}</title>"
    if shape == "circle":
        return f'<circle cx="{x}" cy="{y}" r="5" fill="{colour}">{t}</circle>'
    if shape == "square":
        return f'<rect x="{x - 4.5}" y="{y - 4.5}" width="9" height="9" fill="{colour}">{t}</rect>'
    if shape == "diamond":
        return f'<polygon points="{x},{y - 6} {x + 6},{y} {x},{y + 6} {x - 6},{y}" fill="{colour}">{t}</polygon>'
    return f'<polygon points="{x},{y - 6} {x + 6},{y + 5} {x - 6},{y + 5}" fill="{colour}">{t}</polygon>'


if __name__ == "__main__":  # python benchmarks/assist_svg.py OUT.svg RUN.json... (files written by --json)
    runs = []
    for name in sys.argv[2:]:
        with open(name) as f:
            runs += json.load(f)["results"]
    write_svg(runs, sys.argv[1])
