"""Words for coverage verdicts and reason codes (SPEC §6), and for audit event kinds, in English and Simplified
Chinese: the one table the web pages, the reports' CSV/XLSX columns and the CLI all read, so that no copy can
lack a code."""

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


# Audit event kinds (``storage.events.append_event``) as a person reads them on a trail. A kind not listed here
# shows as its code; tests/audit/test_labels.py finds every kind the code writes and proves each has words.
EVENTS: dict[str, dict[str, str]] = {
    "en": {
        "access.grant_used": "access grant used",
        "access.granted": "access granted",
        "access.revoked": "access revoked",
        "action.created": "action created",
        "action.updated": "action updated",
        "assignment.created": "assignment created",
        "assignment.updated": "assignment updated",
        "case.exported": "case exported",
        "case.held": "case put on legal hold",
        "case.released": "case released from legal hold",
        "coverage.changed": "coverage verdict changed",
        "device.updated": "device updated",
        "evidence.read": "evidence viewed",
        "finding.opened": "finding opened",
        "finding.reopened": "finding reopened (its cause returned)",
        "finding.cause_returned": "finding's cause returned",
        "finding.closed": "finding closed (its cause went away)",
        "finding.cause_gone": "finding's cause went away",
        "finding.rectifying": "finding put under rectification",
        "finding.close": "finding closed by hand",
        "finding.waive": "finding waived",
        "fixity.checked": "fixity checked",
        "ingest.after": "later ingest step",
        "ingest.failed": "ingest failed",
        "link.added": "recording linked to the action",
        "link.removed": "link to the action removed",
        "officer.updated": "officer updated",
        "recording.duplicate": "same file received again",
        "recording.held": "recording put on legal hold",
        "recording.ingested": "recording taken in",
        "sidecar.linked": "side file linked",
        "sidecar.stored": "side file stored",
        "storage.leftovers_removed": "leftover uploads removed",
        "storage.unreferenced_object": "unreferenced object found in the store",
        "token.created": "token created",
        "token.revoked": "token revoked",
        "web.signed_in": "signed in",
        "web.signed_out": "signed out",
    },
    "zh": {
        "access.grant_used": "使用访问授权",
        "access.granted": "授予访问权限",
        "access.revoked": "撤销访问权限",
        "action.created": "新建执法行动",
        "action.updated": "修改执法行动",
        "assignment.created": "新建设备配发",
        "assignment.updated": "修改设备配发",
        "case.exported": "导出案件",
        "case.held": "案件证据保全",
        "case.released": "解除案件证据保全",
        "coverage.changed": "覆盖结论变更",
        "device.updated": "修改设备信息",
        "evidence.read": "查看证据",
        "finding.opened": "发现问题",
        "finding.reopened": "问题重新打开（原因再次出现）",
        "finding.cause_returned": "问题原因再次出现",
        "finding.closed": "问题关闭（原因已消除）",
        "finding.cause_gone": "问题原因已消除",
        "finding.rectifying": "问题进入整改",
        "finding.close": "人工关闭问题",
        "finding.waive": "问题免于整改",
        "fixity.checked": "完整性校验",
        "ingest.after": "入库后续处理",
        "ingest.failed": "入库失败",
        "link.added": "录像关联到执法行动",
        "link.removed": "解除与执法行动的关联",
        "officer.updated": "修改执法人员信息",
        "recording.duplicate": "重复接收同一文件",
        "recording.held": "录像证据保全",
        "recording.ingested": "录像入库",
        "sidecar.linked": "关联附属文件",
        "sidecar.stored": "存储附属文件",
        "storage.leftovers_removed": "清理残留上传",
        "storage.unreferenced_object": "发现存储中无记录的对象",
        "token.created": "创建访问令牌",
        "token.revoked": "吊销访问令牌",
        "web.signed_in": "登录",
        "web.signed_out": "退出登录",
    },
}
# Fixity results and other short detail values a trail shows beside the kind.
DETAIL_VALUES: dict[str, dict[str, str]] = {
    "en": {"ok": "intact", "mismatch": "bytes differ", "missing": "object missing", "accept_damaged": "played damaged"},
    "zh": {"ok": "完好", "mismatch": "内容不一致", "missing": "对象缺失", "accept_damaged": "仍播放受损录像"},
}


# Action kinds are free text from the action CSV; the common ones read in the page's language. Any other kind
# is shown as it was imported (a deployment that imports Chinese kinds shows them as they are).
ACTION_KINDS: dict[str, dict[str, str]] = {
    "en": {},
    "zh": {
        "arrest": "抓捕",
        "detention": "拘留",
        "inspection": "检查",
        "interview": "询问",
        "patrol": "巡逻",
        "search": "搜查",
        "seizure": "扣押",
        "summons": "传唤",
        "traffic stop": "交通拦查",
    },
}


def action_kind_words(kind: str | None, lang: str) -> str:
    """An action's kind in the page's language when it is a common one; else as imported."""
    text = (kind or "").strip()
    return ACTION_KINDS[lang].get(text.lower(), text)


def event_words(kind: str, lang: str) -> str:
    """An audit event kind in words (its code when this version has none, so nothing is hidden)."""
    return EVENTS[lang].get(kind, kind)


def detail_words(value: object, lang: str) -> str:
    """A short value from an event's details (a fixity result) in words; other values as they are."""
    return DETAIL_VALUES[lang].get(str(value), str(value))
