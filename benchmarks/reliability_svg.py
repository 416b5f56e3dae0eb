"""Reliability diagrams as plain SVG (no plotting library): one panel per dataset, bins of confidence against
accuracy, for up to two methods side by side. Used by ``benchmarks/aggregation.py --only selection``."""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np

from labelwright.quality import expected_calibration_error, reliability_table

PANEL, PAD, COLS = 170, 28, 5
COLOURS = ("#9a9a9a", "#1f6fb2")  # the first series (the default) in grey, the second in blue


def _panel(x0: float, y0: float, title: str, series: list[tuple[str, np.ndarray, np.ndarray]]) -> list[str]:
    size = PANEL - 2 * PAD
    out = [f'<g transform="translate({x0:.0f},{y0:.0f})">',
           f'<text x="{PANEL / 2:.0f}" y="14" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
           f'<rect x="{PAD}" y="{PAD}" width="{size}" height="{size}" fill="none" stroke="#444"/>',
           f'<line x1="{PAD}" y1="{PAD + size}" x2="{PAD + size}" y2="{PAD}" stroke="#bbb" stroke-dasharray="3,3"/>']
    for tick in (0.0, 0.5, 1.0):
        out.append(f'<text x="{PAD + tick * size:.0f}" y="{PAD + size + 11}" text-anchor="middle"'
                   f' font-size="8">{tick:g}</text>')
        out.append(f'<text x="{PAD - 3}" y="{PAD + (1 - tick) * size + 3:.0f}" text-anchor="end"'
                   f' font-size="8">{tick:g}</text>')
    for i, (name, conf, hit) in enumerate(series):
        table = reliability_table(conf, hit)
        total = table["n"].sum()
        points = []
        for r in table.itertuples():
            cx, cy = PAD + r.confidence * size, PAD + (1 - r.accuracy) * size
            radius = 1.5 + 5 * np.sqrt(r.n / total)
            points.append(f"{cx:.1f},{cy:.1f}")
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius:.1f}" fill="{COLOURS[i]}"'
                       f' fill-opacity="0.7"><title>{escape(name)}: {int(r.n)} tasks, confidence'
                       f' {r.confidence:.3f}, accuracy {r.accuracy:.3f}</title></circle>')
        out.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{COLOURS[i]}"/>')
        out.append(f'<text x="{PAD + 4}" y="{PAD + 10 + 10 * i}" font-size="8" fill="{COLOURS[i]}">'
                   f'ECE {expected_calibration_error(conf, hit):.3f}</text>')
    out.append("</g>")
    return out


def write_reliability_svg(path: Path, panels: dict[str, list[tuple[str, np.ndarray, np.ndarray]]],
                          caption: str) -> None:
    """Write one SVG with a panel per entry of ``panels`` (title -> [(series name, confidence, correct)])."""
    rows = -(-len(panels) // COLS)
    width, height = COLS * PANEL, rows * PANEL + 40
    names = next(iter(panels.values()))
    body = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
            f' viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">',
            f'<rect width="{width}" height="{height}" fill="white"/>']
    for i, (title, series) in enumerate(panels.items()):
        body += _panel((i % COLS) * PANEL, (i // COLS) * PANEL, title, series)
    legend_y = rows * PANEL + 14
    for i, (name, _, _) in enumerate(names):
        body.append(f'<circle cx="{12 + 260 * i}" cy="{legend_y - 3}" r="4" fill="{COLOURS[i]}"/>')
        body.append(f'<text x="{20 + 260 * i}" y="{legend_y}">{escape(name)}</text>')
    body.append(f'<text x="12" y="{legend_y + 16}" font-size="9">{escape(caption)}</text>')
    body.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(body) + "\n")
