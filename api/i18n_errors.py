"""Refusals of forms and CSV rows in the page's language (issue 10: a Chinese page shows no English sentence and
no command-line flag). The refusals are raised in English by the code that knows them (``audit/``, ``api/auth``)
and shared by the command line and the API; the pages translate them here, by their shape, at the edge.
A sentence of a shape not listed keeps its detail, in brackets after a Chinese lead, flags removed."""

from __future__ import annotations

import re

from api.i18n import TEXT, field_words

_FIELDS_ZH = {
    "serial": "设备编号",
    "model": "型号",
    "code": "编号",
    "name": "名称",
    "certified": "持证",
    "clock_offset_seconds": "时钟偏差（秒）",
    "action_id": "行动编号",
    "started_at": "开始时间",
    "ended_at": "结束时间",
    "officers": "执法人员",
    "devices": "设备",
    "location": "地点",
    "kind": "类别",
    "valid_from": "起始日期",
    "valid_to": "截止日期",
}

# (shape of the English sentence, its Chinese words); groups named ``field`` are field names, the rest are values
_SHAPES_ZH: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), words)
    for pattern, words in (
        (r"^(?P<field>\w+): required$", "{field}：必填"),
        (r"^(?P<field>\w+): longer than (?P<n>\d+) characters$", "{field}：超过 {n} 个字符"),
        (r"^(?P<field>\w+): (?P<v>'.*') is not a (?:finite )?number$", "{field}：{v} 不是有效数字"),
        (
            r"^(?P<field>\w+): cannot read time (?P<v>'.*') \(.*\)$",
            "{field}：无法识别时间 {v}（格式 YYYY-MM-DD HH:MM[:SS]）",
        ),
        (r"^(?P<field>\w+): impossible time (?P<v>'.*'):.*$", "{field}：不存在的时间 {v}"),
        (r"^(?P<field>\w+): cannot read (?P<v>'.*') as true/false .*$", "{field}：{v} 应为 是/否"),
        (r"^(?P<field>\w+): contains a NUL character$", "{field}：含有空字符（NUL）"),
        (r"^(?P<field>\w+): bytes that are not valid (?P<v>\S+) text$", "{field}：含有不是 {v} 编码的字节"),
        (r"^clock_offset_seconds: more than a year; check the value$", "时钟偏差超过一年，请核对"),
        (r"^to: must be after from$", "截止日期须晚于起始日期"),
        (r"^ended_at \((?P<a>.*)\) must be after started_at \((?P<b>.*)\)$", "结束时间（{a}）须晚于开始时间（{b}）"),
        (
            r"^action_id (?P<v>'.*') repeats line (?P<n>\d+); one row per action$",
            "行动编号 {v} 与第 {n} 行重复；每个行动一行",
        ),
        (r"^expected (?P<n>\d+) fields, found (?P<m>\d+)$", "应有 {n} 个字段，实有 {m} 个"),
        (r"^unknown role (?P<v>'.*'); use one of .*$", "未知角色 {v}"),
        (r"^a token needs a name$", "令牌需要名称"),
        (r"^--station applies to station tokens only$", "只有采集站令牌可以指定采集站"),
        (r"^--unit applies to reviewer tokens only .*$", "只有审看人员令牌按单位限定范围"),
        (r"^unit code (?P<v>'.*') must be 1 to (?P<n>\d+) characters$", "单位编号 {v} 须为 1 到 {n} 个字符"),
        (r"^a live token named (?P<v>'.*') exists; revoke it first$", "已有名为 {v} 的有效令牌，请先撤销"),
        (r"^no live token named or numbered (?P<v>'.*')$", "没有名称或编号为 {v} 的有效令牌"),
        (r"^(?P<v>'.*') matches several tokens; give the id$", "{v} 对应多个令牌，请填写编号"),
        (r"^unknown unit (?P<v>'.*')$", "未知单位 {v}"),
        (r"^file is empty; expected a header line$", "文件为空：应有表头行"),
        (r"^line 1: bad header: .*\(expected (?P<v>.*)\)$", "第 1 行表头有误（应为 {v}）"),
    )
)


def refusal_words(message: str, lang: str) -> str:
    """One refusal (a form's or a CSV row's) in ``lang``; English keeps its sentence, without flags' dashes."""
    if lang == "en":
        return message.replace("--", "")
    text = message.strip()
    whole = _one_zh(text)
    if whole is not None:
        return whole
    parts = [p.strip() for p in text.split("; ") if p.strip()]
    each = [_one_zh(p) for p in parts]
    if len(parts) > 1 and all(w is not None for w in each):
        return "；".join(w for w in each if w is not None)
    return f"{TEXT[lang]['bad_input']}（{text.replace('--', '')}）"


def _one_zh(sentence: str) -> str | None:
    for pattern, words in _SHAPES_ZH:
        m = pattern.match(sentence)
        if m is not None:
            values = m.groupdict()
            if "field" in values:
                values["field"] = _FIELDS_ZH.get(values["field"], field_words(values["field"], "zh"))
            return words.format(**values)
    return None
