"""``bwc audit verify`` over a log longer than one page of reads (``log_verify.PAGE``): the bulk leaf check and the
page-by-page tree building must name the same first bad seq as they do within one page, on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from audit.log_verify import PAGE, Report, verify_log
from audit.notes import Signer
from storage.db import transaction
from storage.runtime import Runtime
from tests.fixtures.audit_log import drop_guards, fill, new_signer, restore_guards, sql

SIZES = [PAGE + 100, 2 * PAGE + 50]  # a checkpoint inside page 2 and one inside page 3
TAIL = 10


@pytest.fixture(scope="module")
def signer() -> Signer:
    return new_signer()


@pytest.fixture
def log(runtime: Runtime, signer: Signer) -> Iterator[Runtime]:
    fill(runtime, signer, SIZES, tail=TAIL)
    drop_guards(runtime.engine)
    yield runtime
    restore_guards(runtime.engine)


def _verify(rt: Runtime, signer: Signer) -> Report:
    with transaction(rt.sessions) as s:
        return verify_log(s, signer.verifier)


def test_an_untouched_long_log_verifies(log: Runtime, signer: Signer) -> None:
    report = _verify(log, signer)
    assert report.ok, report.finding
    assert (report.events, report.checkpoints) == (SIZES[-1] + TAIL, 2)


@pytest.mark.parametrize("seq", [PAGE + 7, 2 * PAGE + 3, SIZES[-1] + TAIL - 1])
def test_an_edit_in_a_later_page_names_its_seq(log: Runtime, signer: Signer, seq: int) -> None:
    sql(log.engine, "UPDATE audit_events SET details = :d WHERE seq = :s", d='{"n":-1}', s=seq)
    report = _verify(log, signer)
    assert report.finding is not None and report.finding.seq == seq, report.finding


def test_a_deleted_event_at_a_page_boundary_is_named(log: Runtime, signer: Signer) -> None:
    sql(log.engine, "DELETE FROM audit_events WHERE seq = :s", s=PAGE + 1)
    report = _verify(log, signer)
    assert report.finding is not None and report.finding.seq == PAGE + 1, report.finding
