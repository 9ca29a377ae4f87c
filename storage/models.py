"""Database models. Two clocks are kept apart everywhere: what a device says, and when we received it.

No ``from __future__ import annotations`` here, unlike elsewhere: SQLAlchemy reads each ``Mapped[...]`` when
the class is made, and string annotations make it parse and evaluate every one of them again (~8 ms of CPU in
every process, of ~65 ms mapping the models). A model named before it is defined is written as a string.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.basics import utcnow
from storage.types import UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Unit(Base):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(256))


class Station(Base):
    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(256))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Device(Base):
    """A recording device, known from the first file or action that names it."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(128), unique=True)
    model: Mapped[str | None] = mapped_column(String(128))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    clock_offset_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Officer(Base):
    __tablename__ = "officers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(256))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    # None: not known yet. False: auxiliary staff (协管人员), who may not carry out enforcement alone.
    certified: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeviceAssignment(Base):
    """Who carried which device when; ``valid_to`` None means still assigned."""

    __tablename__ = "device_assignments"
    __table_args__ = (Index("ix_assignment_officer", "officer_id", "valid_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id"))
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime | None]


class Recording(Base):
    """One stored, verified object with what the device and the probe say about it."""

    __tablename__ = "recordings"
    __table_args__ = (
        Index("ix_recordings_device_start", "device_id", "started_at"),
        Index("ix_recordings_started", "started_at"),  # reports: a period's recordings across all devices
        Index("ix_recordings_received", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    sm3: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    object_key: Mapped[str] = mapped_column(String(512))
    object_version: Mapped[str | None] = mapped_column(String(256))
    retention_until: Mapped[datetime | None]
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)

    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    officer_code: Mapped[str | None] = mapped_column(String(128))
    original_name: Mapped[str] = mapped_column(String(1024))
    source_path: Mapped[str | None] = mapped_column(Text)
    sequence: Mapped[int | None] = mapped_column(Integer)

    # the device's clock (raw, before any clock offset) ...
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    time_source: Mapped[str | None] = mapped_column(String(16))  # filename | metadata | mtime
    # ... and ours
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    verified_at: Mapped[datetime | None]

    duration_seconds: Mapped[float | None] = mapped_column(Float)
    has_video: Mapped[bool] = mapped_column(Boolean, default=False)
    has_audio: Mapped[bool] = mapped_column(Boolean, default=False)
    media_kind: Mapped[str | None] = mapped_column(String(16))  # video | audio | photo
    container: Mapped[str | None] = mapped_column(String(64))
    video_codec: Mapped[str | None] = mapped_column(String(64))
    audio_codec: Mapped[str | None] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    creation_time: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="ok")  # ok | unplayable
    probe_error: Mapped[str | None] = mapped_column(Text)
    # fixity: None never checked, True passed, False failed
    fixity_ok: Mapped[bool | None] = mapped_column(Boolean)
    fixity_checked_at: Mapped[datetime | None]

    device: Mapped[Device | None] = relationship(lazy="joined")
    station: Mapped[Station | None] = relationship(lazy="joined")
    sidecars: Mapped[list["Sidecar"]] = relationship(back_populates="recording")


class Sighting(Base):
    """Every time bytes were seen at a path, including the first; duplicates only add a sighting."""

    __tablename__ = "sightings"
    __table_args__ = (Index("ix_sightings_path", "station_id", "path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"))
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    # what happened to the source afterwards: kept | moved | deleted | None (not yet done)
    after_ingest: Mapped[str | None] = mapped_column(String(16))


class Sidecar(Base):
    """A metadata file with the same stem as a recording (GPS track, XML, subtitles)."""

    __tablename__ = "sidecars"
    __table_args__ = (UniqueConstraint("recording_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    object_key: Mapped[str] = mapped_column(String(512))
    object_version: Mapped[str | None] = mapped_column(String(256))
    original_name: Mapped[str] = mapped_column(String(1024))
    source_path: Mapped[str | None] = mapped_column(Text)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # fixity: None never checked, True passed, False failed
    fixity_ok: Mapped[bool | None] = mapped_column(Boolean)
    fixity_checked_at: Mapped[datetime | None]

    recording: Mapped[Recording | None] = relationship(back_populates="sidecars")


class IngestFailure(Base):
    """A file that could not be stored yet: it stays where it is and is retried with back-off."""

    __tablename__ = "ingest_failures"
    __table_args__ = (UniqueConstraint("station_id", "path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    path: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(64))
    last_error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    first_failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]


class AuditEvent(Base):
    """Append-only event; ``seq`` is gap-free so that the Merkle tree over events has no holes."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_subject", "subject"),)

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(512))
    details: Mapped[str] = mapped_column(Text)  # canonical JSON, exactly the bytes that are hashed
    leaf_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed tree head of the audit log: the C2SP checkpoint note is the truth, size and root its index."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), unique=True)
    root_hash: Mapped[str] = mapped_column(String(64))  # hex
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


TREE_STEP = 6  # every TREE_STEP-th level of the audit tree is stored (``audit.tree``)
TREE_BLOCK = 1 << TREE_STEP  # hashes a block row holds


class AuditTreeBlock(Base):
    """64 consecutive perfect-subtree hashes of one stored level (6, 12, 18, ...: ``audit.tree``) of the Merkle
    tree at the latest checkpoint; the levels between are hashed again from these when a proof needs them.

    ``hashes`` is their concatenation (the last block of a level may be short). Level 0, the leaf hashes, is
    not stored here: it is ``audit_events.leaf_hash`` (read by ``seq``, the primary key), so that no append
    writes every leaf hash twice (migration 0010).
    """

    __tablename__ = "audit_tree_blocks"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    block: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    hashes: Mapped[bytes] = mapped_column(LargeBinary)


class AuditBlockRoot(Base):
    """The root of one whole block of 64 leaves (node ``(6, block)`` of the audit tree), written by the bulk
    append that appended all 64 of them (``storage.events.append_events``), ahead of the checkpoints.

    A checkpoint reads these, 32 bytes per 64 events, instead of the leaves; a block without its root (single
    appends, a block two transactions share) is hashed from the events' leaf hashes.
    """

    __tablename__ = "audit_block_roots"

    block: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    root: Mapped[bytes] = mapped_column(LargeBinary)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))  # admin | station | reviewer | auditor
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class TokenUnit(Base):
    """A unit whose evidence a reviewer token may read (SPEC §15); admin and auditor tokens need none."""

    __tablename__ = "token_units"

    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(128), primary_key=True)


class AccessGrant(Base):
    """An approval (SPEC §15): the token holder ``holder`` may read case ``case_number`` until ``expires_at``."""

    __tablename__ = "access_grants"
    __table_args__ = (Index("ix_access_grants_holder", "holder", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    holder: Mapped[str] = mapped_column(String(256))  # a token's name: the person behind it
    case_number: Mapped[str] = mapped_column(String(128))
    approver: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    granted_by: Mapped[str] = mapped_column(String(256))
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(256))


class Action(Base):
    """An enforcement action (执法行动) with its stored coverage verdict."""

    __tablename__ = "actions"
    __table_args__ = (
        Index("ix_actions_started", "started_at"),
        Index("ix_actions_case", "case_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[str] = mapped_column(String(128), unique=True)
    case_number: Mapped[str | None] = mapped_column(String(128))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    location: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    verdict: Mapped[str | None] = mapped_column(String(16))  # complete | pending | incomplete
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    coverage_computed_at: Mapped[datetime | None]
    # when a pending verdict turns incomplete by the clock alone: end + upload_grace_hours
    pending_until: Mapped[datetime | None]

    unit: Mapped[Unit | None] = relationship(lazy="joined")


class ActionOfficer(Base):
    __tablename__ = "action_officers"
    __table_args__ = (Index("ix_action_officers_officer", "officer_id"),)

    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id"), primary_key=True)


class ActionDevice(Base):
    """A device on an action: named by the action, or resolved from an officer through assignments."""

    __tablename__ = "action_devices"
    __table_args__ = (Index("ix_action_devices_device", "device_id"),)

    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), default="named")  # named | assignment


class ActionRecording(Base):
    """A link between an action and a recording; ``manual`` links survive recomputation."""

    __tablename__ = "action_recordings"
    __table_args__ = (Index("ix_action_recordings_recording", "recording_id"),)

    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), primary_key=True)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)


class ManualUnlink(Base):
    """A reviewer took this recording off this action by hand: no recompute links it again (SPEC §6)."""

    __tablename__ = "manual_unlinks"

    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), primary_key=True)
    unlinked_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(256))


class CaseHold(Base):
    """A legal hold on a case (SPEC §5): its recordings are kept until the hold is released."""

    __tablename__ = "case_holds"
    __table_args__ = (Index("ix_case_holds_case", "case_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_number: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    held_at: Mapped[datetime]
    held_by: Mapped[str] = mapped_column(String(256))
    released_at: Mapped[datetime | None]  # None: the hold is in force
    released_by: Mapped[str | None] = mapped_column(String(256))
    release_reason: Mapped[str | None] = mapped_column(Text)


class Finding(Base):
    """A problem on the rectification ledger (SPEC §13): owned, given a deadline, crossed off only when fixed.

    ``automatic`` findings are opened and closed by their cause (a verdict's reason, a late upload, ...);
    ``cause_present`` remembers whether that cause was there at the last look, so that a finding reopens only
    when its cause *returns*, not because a person closed it while the cause was still there.
    """

    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_subject_kind", "subject", "kind"),
        Index("ix_findings_status_due", "status", "due_at"),
        Index("ix_findings_opened", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))  # a reason code, late_upload, sequence_hole, ..., manual
    subject: Mapped[str] = mapped_column(String(512))  # action:A9 | recording:12 | device:D | officer:P | unit:U
    # the subject's unit when the finding opened, copied from a row whose own unit the database checks; no
    # foreign key of its own: that per-row check was most of the cost of opening findings in bulk (0008)
    unit_id: Mapped[int | None] = mapped_column(Integer)
    category: Mapped[str | None] = mapped_column(String(128))  # a person's finding: uniform, language, ...
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | rectifying | closed | waived
    owner: Mapped[str | None] = mapped_column(String(256))
    automatic: Mapped[bool] = mapped_column(Boolean, default=True)
    cause_present: Mapped[bool] = mapped_column(Boolean, default=True)
    opened_at: Mapped[datetime]
    due_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    unit: Mapped[Unit | None] = relationship(primaryjoin="foreign(Finding.unit_id) == Unit.id", lazy="joined")


class UploadSession(Base):
    """A resumable upload from a station (tus): what it claims, how far its bytes got, and how it ended.

    The bytes live in ``BWC_HOME/uploads/<id>.part``; ``offset`` is the durable part of them (fsynced before it
    is written here), so a crash of the service never claims bytes the disk may not hold.
    """

    __tablename__ = "upload_sessions"
    __table_args__ = (Index("ix_upload_sessions_expires", "expires_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    station_code: Mapped[str] = mapped_column(String(128))
    actor: Mapped[str] = mapped_column(String(256))
    relpath: Mapped[str] = mapped_column(Text)
    device: Mapped[str | None] = mapped_column(String(128))
    claimed_sha256: Mapped[str] = mapped_column(String(64))
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    # set once the bytes are stored and committed: stored | duplicate, and what they became
    outcome: Mapped[str | None] = mapped_column(String(16))
    stored_sha256: Mapped[str | None] = mapped_column(String(64))
    recording_id: Mapped[int | None] = mapped_column(Integer)
    sidecar_id: Mapped[int | None] = mapped_column(Integer)


class WebSession(Base):
    """A signed-in browser (SPEC §11): its cookie holds a random key of which only the SHA-256 is kept here.

    The API token stays out of the browser; signing out or revoking the token ends the session at once.
    """

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_token", "token_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"))
    csrf: Mapped[str] = mapped_column(String(64))  # the per-session token every state-changing form carries
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class WebViewing(Base):
    """One person watching one recording: its first byte read is the audit event, not every Range request."""

    __tablename__ = "web_viewings"
    __table_args__ = (Index("ix_web_viewings_session_recording", "session_id", "recording_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("web_sessions.id"))
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]  # when its evidence.read event was written
    last_read_at: Mapped[datetime | None]


class LoginFailure(Base):
    """A refused sign-in, counted per client address and per token name to throttle guessing."""

    __tablename__ = "web_login_failures"
    __table_args__ = (
        Index("ix_web_login_failures_client", "client", "at"),
        Index("ix_web_login_failures_name", "token_name", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    client: Mapped[str] = mapped_column(String(64))
    token_name: Mapped[str | None] = mapped_column(String(256))
