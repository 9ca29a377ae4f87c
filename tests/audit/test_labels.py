"""One table of words for reasons and verdicts: every code coverage can give is worded in every language."""

from __future__ import annotations

from audit.coverage import BLOCKING, COMPLETE, INCOMPLETE, PENDING, REASON_CODES, WAITABLE
from audit.findings_rules import KINDS, STATUSES
from audit.labels import (
    FINDING_STATUSES,
    LANGS,
    REASONS,
    VERDICTS,
    finding_kind_words,
    finding_status_words,
    reason_label,
    reason_words,
)


def test_every_reason_code_has_a_label_and_a_sentence_in_both_languages() -> None:
    assert set(REASON_CODES) >= BLOCKING | WAITABLE
    for lang in LANGS:
        assert set(REASON_CODES) | {"unknown"} == set(REASONS[lang]), lang
        for code in REASON_CODES:
            text = REASONS[lang][code]
            assert text.label.strip() and text.sentence.strip(), (lang, code)
    labels = {reason_label(code, "zh") for code in REASON_CODES}
    assert len(labels) == len(REASON_CODES)  # no two codes read the same in a spreadsheet


def test_every_verdict_is_worded_in_both_languages() -> None:
    for lang in LANGS:
        assert set(VERDICTS[lang]) == {COMPLETE, PENDING, INCOMPLETE, None}


def test_no_video_reads_as_a_missing_picture() -> None:
    reason = {"code": "no_video", "device": "D-1", "recording": 7}
    assert reason_label("no_video", "zh") == "录像无图像"
    assert reason_words(reason, "en", str) == "Recording 7 of device D-1 has no picture."
    assert reason_label("made_up", "en") == "other reason"


def test_every_finding_kind_and_status_is_worded_in_both_languages() -> None:
    for lang in LANGS:
        worded = {finding_kind_words(kind, lang) for kind in KINDS}
        assert len(worded) == len(KINDS) and not worded & set(KINDS), lang  # distinct words, never a bare code
        assert set(FINDING_STATUSES[lang]) == set(STATUSES), lang
    assert finding_kind_words("late_upload", "zh") == "超时上传"
    assert finding_kind_words("shortfall", "en") == reason_label("shortfall", "en")  # one word for one cause
    assert finding_status_words("closed", "zh") == "已销号"
