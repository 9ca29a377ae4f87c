"""One table of words for reasons, verdicts and audit event kinds: every code the service can give is worded in
every language."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from audit.coverage import BLOCKING, COMPLETE, INCOMPLETE, PENDING, REASON_CODES, WAITABLE
from audit.findings_rules import KINDS, STATUSES
from audit.labels import (
    EVENTS,
    FINDING_STATUSES,
    LANGS,
    REASONS,
    VERDICTS,
    action_kind_words,
    detail_words,
    event_words,
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


KIND = re.compile(r"^[a-z_]+\.[a-z_]+$")
SOURCES = ("api", "audit", "ingest", "storage", "config")


def _constant(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and KIND.match(node.value):
        return node.value
    return None


def kinds_written() -> set[str]:
    """Every audit event kind the code writes, read from its source: ``append_event(s, "kind", …)``, the
    ``(kind, subject, details)`` tuples of batched writes, ``EVENT_KIND = "…"``, and the ledger's
    ``finding.<change>`` (its steps and its changes by hand)."""
    root = Path(__file__).resolve().parents[2]
    found: set[str] = set()
    changes: set[str] = set()
    for folder in SOURCES:
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                    if name.startswith("append_event"):
                        found |= {k for a in node.args[:2] if (k := _constant(a))}
                    if name == "Step" and node.args and isinstance(node.args[0], ast.Constant):
                        changes.add(str(node.args[0].value))
                elif isinstance(node, ast.Tuple) and len(node.elts) == 3 and (k := _constant(node.elts[0])):
                    found.add(k)
                elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "EVENT_KIND" for t in node.targets):
                    found |= {k for k in [_constant(node.value)] if k}
                elif isinstance(node, ast.FunctionDef) and node.name == "by_hand":
                    changes |= {
                        str(k.value)
                        for d in ast.walk(node)
                        if isinstance(d, ast.Dict)
                        for k in d.keys
                        if isinstance(k, ast.Constant)
                    }
    return found | {f"finding.{c}" for c in changes}


def test_every_event_kind_the_code_writes_has_words_in_both_languages() -> None:
    kinds = kinds_written()
    # the scan itself works: kinds written in each of its ways are among those found
    assert {"evidence.read", "coverage.changed", "fixity.checked", "case.exported", "finding.waive"} <= kinds
    for lang in LANGS:
        assert kinds <= set(EVENTS[lang]), (lang, sorted(kinds - set(EVENTS[lang])))
        assert set(EVENTS[lang]) == set(EVENTS["en"]), lang
    for kind in kinds:
        zh = event_words(kind, "zh")
        assert not re.search(r"[A-Za-z]", zh), (kind, zh)  # no English left on a Chinese trail
        assert event_words(kind, "en") != kind
    assert event_words("made.up", "zh") == "made.up"  # an unknown kind shows its code, never nothing
    assert detail_words("mismatch", "zh") == "内容不一致" and detail_words("42", "en") == "42"


def test_common_action_kinds_read_in_chinese_and_others_stay_as_imported() -> None:
    assert action_kind_words("Traffic stop", "zh") == "交通拦查"
    assert action_kind_words("arrest", "en") == "arrest"
    assert action_kind_words("夜间巡查", "zh") == "夜间巡查" and action_kind_words(None, "zh") == ""
