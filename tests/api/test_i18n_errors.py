"""Refusals raised in English read as Chinese on Chinese pages, by their shape; an unknown shape keeps its
detail behind a Chinese lead, and no page shows a command-line flag."""

from __future__ import annotations

import pytest

from api.i18n_errors import refusal_words


@pytest.mark.parametrize(
    ("english", "chinese"),
    [
        ("serial: required", "设备编号：必填"),
        ("location: longer than 512 characters", "地点：超过 512 个字符"),
        (
            "started_at: cannot read time 'soon' (use YYYY-MM-DD HH:MM[:SS], optionally with an offset)",
            "开始时间：无法识别时间 'soon'（格式 YYYY-MM-DD HH:MM[:SS]）",
        ),
        (
            "ended_at (2024-05-01 10:00) must be after started_at (2024-05-01 11:00)",
            "结束时间（2024-05-01 10:00）须晚于开始时间（2024-05-01 11:00）",
        ),
        ("action_id 'A-1' repeats line 4; one row per action", "行动编号 'A-1' 与第 4 行重复；每个行动一行"),
        ("officers: required; devices: required", "执法人员：必填；设备：必填"),
        ("location: contains a NUL character", "地点：含有空字符（NUL）"),
        ("unknown unit 'U9'", "未知单位 'U9'"),
    ],
)
def test_known_shapes_read_as_chinese(english: str, chinese: str) -> None:
    assert refusal_words(english, "zh") == chinese


def test_an_unknown_shape_keeps_its_detail_behind_a_chinese_lead_without_flags() -> None:
    words = refusal_words("--frobnicate wants a widget", "zh")
    assert words.startswith("输入的值无效。（") and "frobnicate wants a widget" in words and "--" not in words


def test_english_keeps_its_sentence_without_flag_dashes() -> None:
    assert refusal_words("--unit applies to reviewer tokens only", "en") == "unit applies to reviewer tokens only"
