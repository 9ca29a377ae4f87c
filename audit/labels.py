"""Words for coverage verdicts and reason codes (SPEC §6) in English and Simplified Chinese: the one table
the web pages, the reports' CSV/XLSX columns and the CLI all read, so that no copy can lack a code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

LANGS = ("en", "zh")


class ReasonText(NamedTuple):
    label: str  # a few words, for a spreadsheet column
    sentence: str  # a template over the reason's fields; ``{from}``/``{to}`` arrive in local time


VERDICTS: dict[str, dict[str | None, str]] = {
    "en": {
        "complete": "complete",
        "pending": "pending upload",
        "incomplete": "incomplete",
        None: "not evaluated",
    },
    "zh": {
        "complete": "完整",
        "pending": "待上传",
        "incomplete": "不完整",
        None: "未评估",
    },
}

# Every code of audit/coverage.py REASON_CODES, plus "unknown" for a code this version does not know.
REASONS: dict[str, dict[str, ReasonText]] = {
    "en": {
        "too_few_devices": ReasonText(
            "too few devices",
            "Only {devices} recording device(s) on the action; the rule asks for {min_devices} or more.",
        ),
        "no_footage": ReasonText("no usable footage", "No usable recording at all."),
        "shortfall": ReasonText(
            "footage does not cover the whole process",
            "From {from} to {to} fewer devices than required were recording (throughout: {devices_recording}).",
        ),
        "no_audio": ReasonText("recording without sound", "Recording {recording} of device {device} has no sound."),
        "no_video": ReasonText("recording without picture", "Recording {recording} of device {device} has no picture."),
        "unplayable": ReasonText(
            "recording cannot be played", "Recording {recording} of device {device} cannot be played."
        ),
        "uncertified": ReasonText(
            "no certified officer",
            "No certified officer among the participants: auxiliary staff may not enforce alone.",
        ),
        "integrity": ReasonText(
            "recording failed a fixity check", "Recording {recording} of device {device} failed a fixity check."
        ),
        "unknown": ReasonText("other reason", "Reason {code}."),
    },
    "zh": {
        "too_few_devices": ReasonText(
            "执法记录设备少于规定数量", "本次行动仅有 {devices} 部执法记录设备，规定至少 {min_devices} 部。"
        ),
        "no_footage": ReasonText("无可用录像", "没有任何可用录像。"),
        "shortfall": ReasonText(
            "录像未覆盖全过程", "{from} 至 {to} 期间在录设备不足（全程在录：{devices_recording}）。"
        ),
        "no_audio": ReasonText("录像无声音", "设备 {device} 的录像 {recording} 没有声音。"),
        "no_video": ReasonText("录像无图像", "设备 {device} 的录像 {recording} 没有图像。"),
        "unplayable": ReasonText("录像无法播放", "设备 {device} 的录像 {recording} 无法播放。"),
        "uncertified": ReasonText("无持证执法人员", "参与人员中没有持证执法人员：协管人员不得单独执法。"),
        "integrity": ReasonText("录像完整性校验失败", "设备 {device} 的录像 {recording} 完整性校验失败。"),
        "unknown": ReasonText("其他原因", "原因 {code}。"),
    },
}
NOBODY = {"en": "none", "zh": "无"}

# Finding kinds (SPEC §13) that are not coverage reason codes; a reason code's kind reads as its label.
FINDING_KINDS: dict[str, dict[str, str]] = {
    "en": {
        "late_upload": "late upload",
        "fixity_failed": "failed fixity check",
        "sequence_hole": "missing file (hole in the sequence)",
        "duplicate_conflict": "same bytes under another camera or time",
        "manual": "found by an auditor",
    },
    "zh": {
        "late_upload": "超时上传",
        "fixity_failed": "完整性校验失败",
        "sequence_hole": "文件缺失（序号断档）",
        "duplicate_conflict": "同一文件冒用其他设备或时间",
        "manual": "人工发现",
    },
}
# A finding's status (open → rectifying → closed, or waived), as the ledger's spreadsheets also write it.
FINDING_STATUSES: dict[str, dict[str, str]] = {
    "en": {"open": "open", "rectifying": "being rectified", "closed": "closed", "waived": "waived"},
    "zh": {"open": "待整改", "rectifying": "整改中", "closed": "已销号", "waived": "免于整改"},
}


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def verdict_words(verdict: str | None, lang: str) -> str:
    return VERDICTS[lang].get(verdict, verdict or VERDICTS[lang][None])


def reason_label(code: str | None, lang: str) -> str:
    """A reason code in a few words (a spreadsheet cell)."""
    return REASONS[lang].get(code or "", REASONS[lang]["unknown"]).label


def finding_kind_words(kind: str | None, lang: str) -> str:
    """A finding's kind in a few words: a coverage reason's label, else the ledger's own words, else the code."""
    if kind in REASONS[lang]:
        return REASONS[lang][kind].label
    return FINDING_KINDS[lang].get(kind or "", kind or "")


def finding_status_words(status: str | None, lang: str) -> str:
    return FINDING_STATUSES[lang].get(status or "", status or "")


def reason_words(reason: Mapping[str, Any], lang: str, when: Callable[[str | None], str]) -> str:
    """One coverage reason (SPEC §6) as a sentence; ``when`` turns an ISO time into local words."""
    code = str(reason.get("code", ""))
    template = REASONS[lang].get(code, REASONS[lang]["unknown"]).sentence
    fields = _Fields(reason)
    for key in ("from", "to"):
        if reason.get(key):
            fields[key] = when(reason[key])
    if "devices_recording" in reason:
        fields["devices_recording"] = ", ".join(reason["devices_recording"] or []) or NOBODY[lang]
    return template.format_map(fields)
