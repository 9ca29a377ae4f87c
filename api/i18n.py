"""The web pages' words in English and Simplified Chinese (SPEC §11); ``?lang=zh`` picks Chinese."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

LANGS = ("en", "zh")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "BWC Evidence",
        "login": "Sign in",
        "logout": "Sign out",
        "token": "API token",
        "token_help": "Paste a reviewer or auditor token from `bwc token create`.",
        "bad_token": "That token is unknown or revoked.",
        "forbidden": "This token's role may not view these pages.",
        "signed_in_as": "Signed in as",
        "recent": "Recent recordings",
        "failures": "Ingest failures waiting for retry",
        "none": "None.",
        "id": "ID",
        "device": "Device",
        "station": "Station",
        "officer": "Officer",
        "name": "File",
        "started": "Started",
        "ended": "Ended",
        "duration": "Seconds",
        "status": "Status",
        "received": "Received",
        "path": "Path",
        "reason": "Reason",
        "error": "Last error",
        "attempts": "Attempts",
        "next": "Next attempt",
        "play": "Play",
        "other_lang": "中文",
        "nav_cases": "Cases",
        "nav_report": "Missing-recording report",
        "nav_recordings": "Recordings",
        "search": "Search",
        "search_label": "Case number or action ID (beginning)",
        "search_results": "Matching actions",
        "latest_actions": "Latest actions",
        "no_match": "No action matches.",
        "more_results": "Only the first {n} are shown; type more of the number.",
        "action": "Action",
        "action_id": "Action ID",
        "case": "Case",
        "case_number": "Case number",
        "unit": "Unit",
        "window": "Window",
        "location": "Location",
        "kind": "Kind",
        "officers": "Officers",
        "devices": "Devices",
        "verdict": "Verdict",
        "reasons": "Reasons",
        "no_reasons": "Full-process footage from enough devices.",
        "timeline": "Timeline",
        "timeline_note": "Device clocks corrected by their offsets; the dashed frame is the action's window.",
        "legend_usable": "recording",
        "legend_unusable": "does not count",
        "legend_shortfall": "too few devices recording",
        "recordings": "Recordings",
        "video": "Video",
        "audio": "Audio",
        "yes": "yes",
        "no": "no",
        "no_devices": "No device is on this action.",
        "no_device": "(no device)",
        "times_in": "Times in",
        "not_found": "Not found",
        "no_action": "There is no action {id}.",
        "no_case": "There is no action for case {id}.",
        "no_recording": "There is no recording {id}.",
        "back": "Back",
        "report_from": "From",
        "report_to": "To",
        "all_units": "All units",
        "show": "Show",
        "download_csv": "Download CSV",
        "download_xlsx": "Download XLSX",
        "period": "Period",
        "open_end": "open",
        "per_unit": "Per unit",
        "total": "Total",
        "n_actions": "Actions",
        "rate": "Share complete",
        "lacking": "Actions without full-process footage",
        "late_uploads": "Late uploads",
        "hours_late": "Hours late",
        "missing_files": "Missing files (gaps in a device's file numbers)",
        "from_sequence": "First missing",
        "to_sequence": "Last missing",
        "count": "Count",
        "after_recording": "After recording",
        "before_recording": "Before recording",
        "unclaimed": "Recordings no action claims",
        "sequence": "No.",
    },
    "zh": {
        "title": "执法记录仪证据管理",
        "login": "登录",
        "logout": "退出",
        "token": "访问令牌",
        "token_help": "粘贴由 `bwc token create` 生成的审查员或审计员令牌。",
        "bad_token": "令牌无效或已被吊销。",
        "forbidden": "该令牌的角色无权查看此页面。",
        "signed_in_as": "当前用户",
        "recent": "最近的录像",
        "failures": "等待重试的入库失败文件",
        "none": "无。",
        "id": "编号",
        "device": "设备",
        "station": "采集站",
        "officer": "执法人员",
        "name": "文件",
        "started": "开始时间",
        "ended": "结束时间",
        "duration": "时长（秒）",
        "status": "状态",
        "received": "接收时间",
        "path": "路径",
        "reason": "原因",
        "error": "最近错误",
        "attempts": "尝试次数",
        "next": "下次尝试",
        "play": "播放",
        "other_lang": "English",
        "nav_cases": "案件查询",
        "nav_report": "缺失录像报告",
        "nav_recordings": "录像",
        "search": "查询",
        "search_label": "案件编号或行动编号（开头部分）",
        "search_results": "匹配的执法行动",
        "latest_actions": "最近的执法行动",
        "no_match": "没有匹配的执法行动。",
        "more_results": "仅显示前 {n} 条；请输入更完整的编号。",
        "action": "执法行动",
        "action_id": "行动编号",
        "case": "案件",
        "case_number": "案件编号",
        "unit": "单位",
        "window": "起止时间",
        "location": "地点",
        "kind": "类型",
        "officers": "执法人员",
        "devices": "执法记录设备",
        "verdict": "结论",
        "reasons": "原因",
        "no_reasons": "已由足够的设备记录执法全过程。",
        "timeline": "时间轴",
        "timeline_note": "设备时钟已按偏差校正；虚线框为执法行动的起止时段。",
        "legend_usable": "录像",
        "legend_unusable": "不计入覆盖",
        "legend_shortfall": "在录设备不足",
        "recordings": "录像",
        "video": "图像",
        "audio": "声音",
        "yes": "有",
        "no": "无",
        "no_devices": "此执法行动没有执法记录设备。",
        "no_device": "（无设备）",
        "times_in": "时区",
        "not_found": "未找到",
        "no_action": "不存在执法行动 {id}。",
        "no_case": "案件 {id} 没有执法行动。",
        "no_recording": "不存在录像 {id}。",
        "back": "返回",
        "report_from": "起始日期",
        "report_to": "截止日期",
        "all_units": "全部单位",
        "show": "查询",
        "download_csv": "下载 CSV",
        "download_xlsx": "下载 Excel",
        "period": "期间",
        "open_end": "不限",
        "per_unit": "按单位统计",
        "total": "合计",
        "n_actions": "行动数",
        "rate": "完整率",
        "lacking": "未完整记录全过程的执法行动",
        "late_uploads": "超时上传",
        "hours_late": "超时小时数",
        "missing_files": "缺失文件（设备文件序号中断）",
        "from_sequence": "缺失起始序号",
        "to_sequence": "缺失结束序号",
        "count": "缺失数",
        "after_recording": "前一录像",
        "before_recording": "后一录像",
        "unclaimed": "未关联执法行动的录像",
        "sequence": "序号",
    },
}

VERDICTS: dict[str, dict[str | None, str]] = {
    "en": {"complete": "complete", "pending": "pending upload", "incomplete": "incomplete", None: "not evaluated"},
    "zh": {"complete": "完整", "pending": "待上传", "incomplete": "不完整", None: "未评估"},
}

# A reason in words; ``{from}``/``{to}`` arrive already in local time, missing fields read as "?".
REASONS: dict[str, dict[str, str]] = {
    "en": {
        "too_few_devices": "Only {devices} recording device(s) on the action; the rule asks for {min_devices} or more.",
        "no_footage": "No usable recording at all.",
        "shortfall": (
            "From {from} to {to} fewer devices than required were recording (throughout: {devices_recording})."
        ),
        "no_audio": "Recording {recording} of device {device} has no sound.",
        "no_video": "Recording {recording} of device {device} has no picture.",
        "unplayable": "Recording {recording} of device {device} cannot be played.",
        "uncertified": "No certified officer among the participants: auxiliary staff may not enforce alone.",
        "integrity": "Recording {recording} of device {device} failed a fixity check.",
        "unknown": "Reason {code}.",
    },
    "zh": {
        "too_few_devices": "本次行动仅有 {devices} 部执法记录设备，规定至少 {min_devices} 部。",
        "no_footage": "没有任何可用录像。",
        "shortfall": "{from} 至 {to} 期间在录设备不足（全程在录：{devices_recording}）。",
        "no_audio": "设备 {device} 的录像 {recording} 没有声音。",
        "no_video": "设备 {device} 的录像 {recording} 没有图像。",
        "unplayable": "设备 {device} 的录像 {recording} 无法播放。",
        "uncertified": "参与人员中没有持证执法人员：协管人员不得单独执法。",
        "integrity": "设备 {device} 的录像 {recording} 完整性校验失败。",
        "unknown": "原因 {code}。",
    },
}
NOBODY = {"en": "none", "zh": "无"}


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def pick_lang(value: str | None) -> str:
    return value if value in LANGS else "en"


def verdict_words(verdict: str | None, lang: str) -> str:
    return VERDICTS[lang].get(verdict, verdict or VERDICTS[lang][None])


def reason_words(reason: Mapping[str, Any], lang: str, when: Callable[[str | None], str]) -> str:
    """One coverage reason (SPEC §6) as a sentence; ``when`` turns an ISO time into local words."""
    code = str(reason.get("code", ""))
    template = REASONS[lang].get(code, REASONS[lang]["unknown"])
    fields = _Fields(reason)
    for key in ("from", "to"):
        if reason.get(key):
            fields[key] = when(reason[key])
    if "devices_recording" in reason:
        fields["devices_recording"] = ", ".join(reason["devices_recording"] or []) or NOBODY[lang]
    return template.format_map(fields)
