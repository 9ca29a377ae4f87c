"""The web pages' words in English and Simplified Chinese (SPEC §11); ``?lang=zh`` picks Chinese."""

from __future__ import annotations

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
    },
}


def pick_lang(value: str | None) -> str:
    return value if value in LANGS else "en"
