"""One template renders product names and reads metadata back from delivered names."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from proseo.missions.filenames import (
    TemplateError,
    compile_template,
    read_name,
    render,
    template_fields,
    template_time_formats,
)

S5P = (
    "S5P_{mode}_{product_type}_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_{orbit:05d}_"
    "{collection:02d}_{generation:%Y%m%dT%H%M%S}.nc"
)


def test_render_then_read_back_gives_the_same_metadata() -> None:
    values = {
        "mode": "OFFL",
        "product_type": "L2__NO2___",
        "start": datetime(2025, 3, 1, 0, 0, tzinfo=UTC),
        "stop": datetime(2025, 3, 1, 1, 41, tzinfo=UTC),
        "orbit": 37845,
        "collection": 3,
        "generation": datetime(2025, 3, 1, 2, 0, 5, tzinfo=UTC),
    }
    name = render(S5P, values)
    assert name == "S5P_OFFL_L2__NO2____20250301T000000_20250301T014100_37845_03_20250301T020005.nc"
    pattern = compile_template(
        S5P, product_type="L2__NO2___", mission="S5P", file_classes=["OPER"], modes=["NRTI", "OFFL", "RPRO"]
    )
    meta = read_name(pattern, name, time_formats=template_time_formats(S5P))
    assert meta is not None
    assert (meta.start, meta.stop, meta.generation) == (values["start"], values["stop"], values["generation"])
    assert (meta.orbit, meta.mode, meta.parameters) == (37845, "OFFL", {"collection": "03"})


def test_names_of_other_classes_or_modes_do_not_match() -> None:
    pattern = compile_template(
        S5P, product_type="L2__NO2___", mission="S5P", file_classes=["OPER"], modes=["OFFL"]
    )
    other_class = "S5P_OFFL_L2__O3_____20250301T000000_20250301T014100_37845_03_20250301T020005.nc"
    other_mode = "S5P_NRTI_L2__NO2____20250301T000000_20250301T014100_37845_03_20250301T020005.nc"
    assert pattern.match(other_class) is None
    assert pattern.match(other_mode) is None


def test_a_matching_name_with_an_impossible_date_is_a_clear_error() -> None:
    pattern = compile_template(
        S5P, product_type="L2__NO2___", mission="S5P", file_classes=["OPER"], modes=["OFFL"]
    )
    with pytest.raises(ValueError, match="start '20251301T000000' does not match format"):
        read_name(
            pattern,
            "S5P_OFFL_L2__NO2____20251301T000000_20250301T014100_37845_03_20250301T020005.nc",
            time_formats=template_time_formats(S5P),
        )


def test_repeated_field_must_repeat_the_same_value() -> None:
    pattern = compile_template(
        "{product_type}_{start:%Y%m%d}_{start:%Y%m%d}.x",
        product_type="A",
        mission="M",
        file_classes=[],
        modes=[],
    )
    assert pattern.match("A_20250101_20250101.x")
    assert not pattern.match("A_20250101_20250102.x")


def test_explicit_regex_patterns_read_the_same_way() -> None:
    pattern = re.compile(r"^RAW_(?P<start>\d{8})_(?P<orbit>\d+)_(?P<detector>[A-D])\.bin$")
    meta = read_name(pattern, "RAW_20250102_77_C.bin", time_formats={"start": "%Y%m%d"})
    assert meta is not None
    assert meta.start == datetime(2025, 1, 2, tzinfo=UTC)
    assert (meta.orbit, meta.parameters) == (77, {"detector": "C"})
    assert read_name(pattern, "RAW_x.bin", time_formats={}) is None


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{start}", "needs a format"),
        ("{start!r:%Y}", "conversions"),
        ("{a-b}", "plain name"),
        ("{unclosed", "malformed"),
    ],
)
def test_malformed_templates(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        template_fields(template)


def test_render_names_missing_fields() -> None:
    with pytest.raises(TemplateError, match="orbit"):
        render("{product_type}_{orbit:05d}", {"product_type": "X"})
