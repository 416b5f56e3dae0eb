"""The SVG charts (labelwright/web/charts.py): well-formed XML, hostile labels escaped, empty data, one point,
zero values, accessible names and the numbers beside each picture."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

import pytest

from labelwright.web.charts import bar_chart, heatmap, line_chart, scatter, throughput_chart

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script>&"\'</svg>'


def parse(markup) -> ET.Element:
    figure = ET.fromstring(str(markup))
    assert figure.tag == "figure"
    return figure


def svg_of(figure: ET.Element) -> ET.Element:
    svg = figure.find(f"{SVG}svg")
    assert svg is not None and svg.get("role") == "img" and svg.get("aria-label")
    assert svg.find(f"{SVG}title").text == svg.get("aria-label")
    assert svg.find(f"{SVG}desc").text
    return svg


def texts(el: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in el.iter() if t.tag in (f"{SVG}text", f"{SVG}title", "td", "th")]


def every_chart(label: str, value: float = 3.0):
    d1, d2 = date(2026, 3, 1), date(2026, 3, 2)
    return [
        bar_chart([(label, value), ("b", 0)], title=label, unit=label),
        line_chart({label: [(d1, value), (d2, value + 1)]}, projected={label: [(date(2026, 3, 9), 10)]},
                   title=label, target=10, target_label=label),
        heatmap([label, "b"], [label, "b"], [[value, 1], [0, 0]], title=label, row_title=label),
        scatter([{"label": label, "x": value + 1, "y": 0.9, "flag": label}, {"label": "b", "x": 2, "y": 0.5}],
                title=label, x_label=label, y_label="accuracy", x_log=True),
    ]


def test_hostile_labels_are_escaped_and_the_markup_stays_xml():
    for chart in every_chart(HOSTILE):
        raw = str(chart)
        assert "<script" not in raw and "</svg>'" not in raw
        figure = parse(chart)
        svg_of(figure)
        assert any(HOSTILE in t or HOSTILE[:14] in t for t in texts(figure))  # shown as text, not as markup


@pytest.mark.parametrize("make", [
    lambda: bar_chart([], title="empty"),
    lambda: line_chart({}, title="empty"),
    lambda: line_chart({"a": [(date(2026, 1, 1), None)]}, title="empty"),
    lambda: heatmap([], [], [], title="empty"),
    lambda: scatter([], title="empty", x_label="x", y_label="y"),
    lambda: scatter([{"label": "a", "x": 0, "y": 1}], title="empty", x_label="x", y_label="y", x_log=True),
])
def test_empty_data_says_so(make):
    figure = parse(make())
    svg_of(figure)
    assert "Nothing to show yet." in "".join(figure.itertext())


def test_one_point_and_zero_values():
    for chart in every_chart("one", 0.0):
        svg_of(parse(chart))
    one_bar = parse(bar_chart([("only", 0)], title="t"))
    rect = svg_of(one_bar).find(f"{SVG}rect")
    assert float(rect.get("height")) == 0 and float(rect.get("width")) > 0
    one_day = parse(line_chart({"a": [(date(2026, 1, 1), 5)]}, title="t"))
    marker = svg_of(one_day).find(f".//{SVG}circle")
    assert marker is not None and 0 < float(marker.get("cx")) < 640
    one_point = parse(scatter([{"label": "solo", "x": 5, "y": 1.0}], title="t", x_label="x", y_label="y"))
    assert "solo" in texts(one_point)


def test_bars_are_proportional_and_labelled():
    svg = svg_of(parse(bar_chart([("w1", 10), ("w2", 5), ("w3", 0)], title="Earnings", unit="€",
                                 value_format=lambda v: f"{v:.2f}")))
    rects = svg.findall(f"{SVG}rect")
    heights = [float(r.get("height")) for r in rects]
    assert heights[0] == pytest.approx(2 * heights[1], abs=0.2) and heights[2] == 0
    assert [r.find(f"{SVG}title").text for r in rects] == ["w1: 10.00 €", "w2: 5.00 €", "w3: 0.00 €"]
    assert {"10.00", "5.00", "w1", "w3"} <= set(texts(svg))


def test_every_chart_carries_its_numbers_in_a_table():
    figure = parse(bar_chart([("w1", 10), ("w2", 5)], title="Earnings"))
    rows = [[td.text for td in tr] for tr in figure.iter("tr")][1:]
    assert rows == [["w1", "10"], ["w2", "5"]]
    matrix = parse(heatmap(["spam", "ham"], ["spam", "ham"], [[8, 2], [1, 9]], title="Confusion"))
    cells = [t for t in texts(matrix) if t.endswith("of the row)")]
    assert "consensus spam, given ham: 2 (20% of the row)" in cells
    assert [[td.text for td in tr] for tr in matrix.iter("tr")][1:] == [["spam", "8", "2"], ["ham", "1", "9"]]


def test_lines_have_distinct_markers_names_and_a_dashed_projection():
    d = [date(2026, 1, i) for i in range(1, 4)]
    svg = svg_of(parse(line_chart({"q1": [(d[0], 0.2), (d[1], None), (d[2], 0.6)],
                                   "q2": [(x, 0.5) for x in d]},
                                  projected={"q2": [(date(2026, 1, 10), 0.9)]}, title="Agreement")))
    groups = svg.findall(f"{SVG}g")
    assert [g.find(f"{SVG}title").text for g in groups] == ["q1", "q2"]
    assert groups[0].findall(f"{SVG}circle") and groups[1].findall(f"{SVG}rect")  # shapes, not colour alone
    assert not groups[0].findall(f"{SVG}polyline")  # a gap leaves two single points, no line across it
    assert groups[1].find(f"{SVG}polyline[@class='line projected']") is not None
    assert "2026-01-10" in texts(svg)


def test_flagged_points_say_why():
    svg = svg_of(parse(scatter([{"label": "ann", "x": 0.8, "y": 0.35, "flag": "too fast"},
                                {"label": "bob", "x": 12, "y": 0.9, "flag": None}],
                               title="Speed and accuracy", x_label="s per item", y_label="gold accuracy")))
    assert any("ann ⚑ too fast" == t for t in texts(svg))
    assert svg.find(f"{SVG}path[@class='marker flagged stroke']") is not None


def test_throughput_chart_has_one_bar_per_minute():
    svg = svg_of(parse(throughput_chart([0] * 59 + [4])))
    rects = svg.findall(f"{SVG}rect[@class='bar']")
    assert len(rects) == 60 and rects[-1].find(f"{SVG}title").text == "1 min ago: 4 annotations"
