"""Charts drawn as SVG on the server: points land inside the plot, names are escaped, charts can be read aloud."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from hub import svg_charts
from hub.svg_charts import Series, bar_chart, hbar_chart, line_chart, nice_ceiling, plot_box, scale

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def coordinates(root: ET.Element) -> list[tuple[float, float]]:
    found = []
    for line in root.iter(f"{SVG}polyline"):
        for pair in line.attrib["points"].split():
            x, y = pair.split(",")
            found.append((float(x), float(y)))
    found += [(float(dot.attrib["cx"]), float(dot.attrib["cy"])) for dot in root.iter(f"{SVG}circle")]
    return found


def test_every_point_of_a_line_lies_inside_the_plot_even_past_the_axis_top() -> None:
    points = [(0.0, 0.0), (10.0, 3.0), (20.0, 250.0), (30.0, None), (40.0, 7.0), (50.0, 1.0), (99.0, 5.0)]
    root = parse(line_chart("servers", "Servers", "How many", [Series("running", points)], (0, 50), y_top=10))
    box = plot_box()
    found = coordinates(root)
    assert len(found) == 5  # the gap and the point after the range are left out
    for x, y in found:
        assert box.left <= x <= box.right and box.top <= y <= box.bottom, (x, y)
    assert min(x for x, _ in found) == box.left and max(x for x, _ in found) == box.right
    assert found[0][1] == box.bottom  # zero sits on the axis
    assert min(y for _, y in found) == box.top  # 250 is clamped to the top


def test_a_gap_breaks_the_line_in_two() -> None:
    points = [(0.0, 1.0), (1.0, 2.0), (2.0, None), (3.0, 2.0), (4.0, 1.0)]
    root = parse(line_chart("gap", "t", "d", [Series("a", points)], (0, 4)))
    assert len(list(root.iter(f"{SVG}polyline"))) == 2


def test_names_and_labels_are_escaped() -> None:
    hostile = '<script>alert("x")</script>&'
    charts = [
        line_chart("a", hostile, hostile, [Series(hostile, [(0, 1)]), Series("b", [(1, 2)])], (0, 1), [(0, hostile)]),
        bar_chart("b", hostile, hostile, [(hostile, 3.0)]),
        hbar_chart("c", hostile, hostile, [(hostile, 1.0, hostile)]),
    ]
    for chart in charts:
        root = parse(chart)  # well-formed: nothing broke out of its element
        assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
        assert "&lt;script&gt;" in str(chart) and "<script>" not in str(chart)
        assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}title").text == hostile  # type: ignore[union-attr]


def test_a_chart_is_named_for_screen_readers() -> None:
    root = parse(bar_chart("failures", "Failed starts", "2 of 9 starts failed.", [("10:00", 2.0), ("11:00", 0.0)]))
    assert root.attrib["role"] == "img"
    assert root.attrib["aria-labelledby"] == "failures-title failures-desc"
    assert root.find(f"{SVG}title").attrib["id"] == "failures-title"  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").text == "2 of 9 starts failed."  # type: ignore[union-attr]


def test_bars_grow_with_their_value_and_fit_the_plot() -> None:
    root = parse(bar_chart("bars", "t", "d", [("a", 1.0), ("b", 4.0), ("c", 0.0)]))
    heights = [float(rect.attrib["height"]) for rect in root.iter(f"{SVG}rect")]
    box = plot_box()
    assert heights[0] < heights[1] <= box.bottom - box.top and heights[2] == 0
    lying = parse(hbar_chart("h", "t", "d", [("big", 80.0, "80 %"), ("small", 20.0, "20 %")], top=100))
    widths = [float(rect.attrib["width"]) for rect in lying.iter(f"{SVG}rect")]
    assert widths[0] == pytest.approx(4 * widths[1], rel=0.01)


def test_no_data_says_so() -> None:
    for chart in (
        line_chart("x", "t", "d", [Series("a", [])], (0, 1)),
        bar_chart("y", "t", "d", []),
        hbar_chart("z", "t", "d", []),
    ):
        assert svg_charts.NO_DATA in chart


def test_axis_tops_are_round_and_scale_clamps() -> None:
    assert [nice_ceiling(value) for value in (0, 0.7, 1, 3, 7, 12, 26, 480)] == [1, 1, 1, 5, 10, 20, 50, 500]
    assert scale(5, 0, 10, 100, 200) == 150 and scale(-3, 0, 10, 100, 200) == 100 and scale(99, 0, 10, 0, 1) == 1
    assert scale(4, 4, 4, 0, 10) == 5


def test_a_chart_id_must_be_a_plain_name() -> None:
    with pytest.raises(ValueError, match="chart id"):
        bar_chart('x" onload="alert(1)', "t", "d", [("a", 1.0)])
