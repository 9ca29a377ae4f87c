"""``bwc init``'s policy step and ``bwc coverage recompute`` (api/cli/cmd_coverage.py), on both databases."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import select

from audit.policy import recorded_policy
from storage.models import AuditEvent
from storage.runtime import Runtime
from tests.fixtures.audit_data import event_kinds, one_device_action, verdicts
from tests.fixtures.cli import Invoke


@pytest.fixture
def bwc(cli: Invoke, runtime: Runtime) -> Callable[..., str]:
    """``bwc …`` that must succeed, giving its stdout."""

    def run(*args: str) -> str:
        result = cli(*args)
        assert result.exit_code == 0, result.output
        return result.stdout

    return run


def test_init_recomputes_when_the_policy_changes(
    runtime: Runtime, bwc: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = runtime
    one_device_action(rt)
    assert "coverage policy: changed" in bwc("init")  # the first policy over existing actions is recorded
    assert verdicts(rt) == {"SOLO": "incomplete", "DUO": "incomplete"}
    assert event_kinds(rt).count("policy.changed") == 1

    monkeypatch.setenv("BWC_MIN_DEVICES", "1")
    assert "coverage policy: changed, 2 actions recomputed" in bwc("init")
    assert verdicts(rt) == {"SOLO": "complete", "DUO": "complete"}
    with rt.sessions() as s:
        changes = [
            json.loads(d) for d in s.scalars(select(AuditEvent.details).where(AuditEvent.kind == "policy.changed"))
        ]
        assert recorded_policy(s) == changes[-1]["to"]
    assert changes[-1]["from"]["min_devices"] == 2 and changes[-1]["to"]["min_devices"] == 1
    assert {k for k, v in changes[-1]["to"].items() if changes[-1]["from"][k] != v} == {"min_devices"}
    kinds = event_kinds(rt)
    coverage_kinds = [k for k in kinds if not k.startswith("finding.")]  # findings follow verdicts (SPEC §13)
    assert coverage_kinds[-4:] == ["policy.changed", "coverage.changed", "coverage.changed", "policy.applied"]

    # the same policy again: nothing recomputed, no event
    assert "coverage policy: up to date" in bwc("init")
    assert event_kinds(rt) == kinds
    assert verdicts(rt) == {"SOLO": "complete", "DUO": "complete"}


def test_coverage_recompute_command(runtime: Runtime, bwc: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    rt = runtime
    one_device_action(rt)
    first = json.loads(bwc("coverage", "recompute", "--format", "json"))
    # the fixtures stored "complete"; both actions lack a second device's footage
    assert first == {"actions": 2, "verdicts_changed": 2, "policy_changed": True}
    assert json.loads(bwc("coverage", "recompute", "--format", "json")) == {
        "actions": 2,
        "verdicts_changed": 0,
        "policy_changed": False,
    }
    monkeypatch.setenv("BWC_MIN_DEVICES", "1")
    assert "2 actions recomputed, 2 verdicts changed (policy change recorded)" in bwc("coverage", "recompute")
    assert verdicts(rt) == {"SOLO": "complete", "DUO": "complete"}
