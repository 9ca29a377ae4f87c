"""The period report's words in English and Simplified Chinese, shared by the XLSX, the PDF and the page."""

from __future__ import annotations

from audit.labels import LANGS

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Periodic report on body-worn camera use",
        "period": "Period",
        "previous": "Previous period",
        "unit": "Unit",
        "all_units": "all units",
        "no_unit": "(no unit)",
        "total": "Total",
        "timezone": "Time zone",
        "generated": "Generated (UTC)",
        "per_unit": "Per unit: actions and full-process coverage",
        "actions": "Actions",
        "complete": "Complete",
        "pending": "Pending upload",
        "incomplete": "Incomplete",
        "unjudged": "Not evaluated",
        "rate": "Coverage rate",
        "prev_actions": "Actions (previous)",
        "prev_rate": "Coverage rate (previous)",
        "change": "Change (points)",
        "trend": "Trend: coverage rate against the previous period",
        "this_period": "This period",
        "reasons": "Most frequent reasons",
        "reason": "Reason",
        "count": "Actions",
        "uploads": "Late uploads",
        "recordings": "Recordings",
        "late": "Late",
        "late_rate": "Late-upload rate",
        "attribution": (
            "{late} late upload(s) came from devices without a unit: {action} attributed through an action, "
            "{assignment} through the officer who carried the device, {none} could not be attributed."
        ),
        "findings": "Findings",
        "opened": "Opened",
        "closed_in_time": "Closed in time",
        "closed_late": "Closed late",
        "overdue": "Overdue",
        "no_findings": "No findings data: the findings ledger gave no figures for this report.",
        "devices": "Per device",
        "device": "Device",
        "officers": "Per officer (who carried the cameras)",
        "officer": "Officer",
        "no_assignment": "(no assignment)",
        "no_device": "(no device)",
        "drill": "Actions by unit",
        "action_id": "Action ID",
        "started": "Started",
        "verdict": "Verdict",
        "carriers": "Carried by",
        "location": "Location",
        "summary": "Summary",
        "none": "None.",
        "drill_hint": "Choose a unit (click its name above) to list its actions.",
        "week": "This week",
        "month": "This month",
        "half_year": "This half-year",
    },
    "zh": {
        "title": "执法记录仪使用情况书面报告",
        "period": "统计期间",
        "previous": "上一期间",
        "unit": "单位",
        "all_units": "全部单位",
        "no_unit": "（无单位）",
        "total": "合计",
        "timezone": "时区",
        "generated": "生成时间 (UTC)",
        "per_unit": "各单位执法行动及全过程记录情况",
        "actions": "行动数",
        "complete": "完整",
        "pending": "待上传",
        "incomplete": "不完整",
        "unjudged": "未评估",
        "rate": "全过程记录率",
        "prev_actions": "上期行动数",
        "prev_rate": "上期全过程记录率",
        "change": "变化（百分点）",
        "trend": "趋势：与上一期间全过程记录率对比",
        "this_period": "本期",
        "reasons": "主要问题原因",
        "reason": "原因",
        "count": "行动数",
        "uploads": "超时上传",
        "recordings": "录像数",
        "late": "超时",
        "late_rate": "超时上传率",
        "attribution": (
            "有 {late} 条超时上传来自未归属单位的设备：{action} 条按执法行动归属，{assignment} 条按佩戴民警归属，"
            "{none} 条无法归属。"
        ),
        "findings": "问题整改",
        "opened": "新增问题",
        "closed_in_time": "按期销号",
        "closed_late": "逾期销号",
        "overdue": "逾期未改",
        "no_findings": "无问题清单数据：问题台账未提供本报告的数据。",
        "devices": "按执法记录仪统计",
        "device": "执法记录仪",
        "officers": "按佩戴人员统计",
        "officer": "执法人员",
        "no_assignment": "（无领用记录）",
        "no_device": "（无设备）",
        "drill": "各单位执法行动明细",
        "action_id": "行动编号",
        "started": "开始时间",
        "verdict": "结论",
        "carriers": "佩戴人员",
        "location": "地点",
        "summary": "概览",
        "none": "无。",
        "drill_hint": "点击上方单位名称查看其执法行动明细。",
        "week": "本周",
        "month": "本月",
        "half_year": "本半年",
    },
}

assert all(set(WORDS[lang]) == set(WORDS["en"]) for lang in LANGS)


def words(lang: str) -> dict[str, str]:
    return WORDS[lang if lang in WORDS else "en"]


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def points(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f}"
