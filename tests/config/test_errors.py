"""One error root: every error the service expects is a BwcError whose class carries its HTTP status and exit code."""

from __future__ import annotations

import pytest

from api.ranges import RangeNotSatisfiable
from audit.csv_rows import BadRow, FileError
from config.errors import EXIT_FINDING, EXIT_USAGE, BwcError, DatabaseUnavailable
from ingest.reader import FileChanged
from storage.events import AuditLogImmutable
from storage.objects import DigestMismatch, ObjectMissing, StoreError, StoreUnavailable, VerificationFailed


@pytest.mark.parametrize(
    ("error", "code", "status", "exit_code"),
    [
        (StoreError, "store_error", 500, EXIT_USAGE),
        (StoreUnavailable, "store_unavailable", 503, EXIT_USAGE),
        (DigestMismatch, "digest_mismatch", 422, EXIT_USAGE),
        (VerificationFailed, "verification_failed", 500, EXIT_FINDING),
        (ObjectMissing, "object_missing", 404, EXIT_FINDING),
        (BadRow, "bad_row", 422, EXIT_USAGE),
        (FileError, "bad_file", 422, EXIT_USAGE),
        (AuditLogImmutable, "audit_log_immutable", 409, EXIT_USAGE),
        (FileChanged, "changed_while_reading", 409, EXIT_USAGE),
        (RangeNotSatisfiable, "range_not_satisfiable", 416, EXIT_USAGE),
        (DatabaseUnavailable, "database_unavailable", 503, EXIT_USAGE),
    ],
)
def test_each_error_carries_its_code_status_and_exit_code(
    error: type[BwcError], code: str, status: int, exit_code: int
) -> None:
    exc = error("what went wrong")
    assert isinstance(exc, BwcError)
    assert (exc.code, exc.status, exc.exit_code, exc.message, str(exc)) == (
        code,
        status,
        exit_code,
        "what went wrong",
        "what went wrong",
    )


def test_store_errors_stay_store_errors() -> None:
    # Callers catch StoreError to retry a file; every store failure must still be one.
    for error in (StoreUnavailable, DigestMismatch, VerificationFailed, ObjectMissing):
        assert issubclass(error, StoreError)
