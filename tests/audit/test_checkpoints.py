"""Checkpoints over the stored tree on both databases: every proof they serve verifies, offline, by the RFC."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from audit import checkpoints, merkle, notes, tree
from audit.checkpointer import checkpoint_once
from audit.checkpoints import NoCheckpoint, make_checkpoint
from audit.log_verify import verify_log
from audit.signing import SigningKeyError, load_signer
from audit.tree import TreeIncomplete
from config.errors import NotFound
from config.settings import Settings
from storage.db import transaction
from storage.events import append_events
from storage.init import ensure_signing_key
from storage.models import AuditCheckpoint, AuditEvent, AuditTreeBlock
from storage.runtime import Runtime
from tests.fixtures.audit_log import ORIGIN, fill, new_signer, pem, round_trips, sql

GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"


def _leaf_hashes(rt: Runtime) -> list[bytes]:
    with transaction(rt.sessions) as s:
        return [bytes.fromhex(h) for h in s.scalars(select(AuditEvent.leaf_hash).order_by(AuditEvent.seq))]


def test_checkpoints_grow_with_the_log_and_every_proof_verifies(runtime: Runtime) -> None:
    signer = new_signer()
    sizes = [1, 2, 3, 7, 8, 9, 16, 17, 31, 33]
    fill(runtime, signer, sizes)
    hashes = _leaf_hashes(runtime)
    with transaction(runtime.sessions) as s:
        rows = s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)).all()
        assert [r.size for r in rows] == sizes
        for row in rows:  # each signed root is the RFC 9162 root of that many leaves
            assert notes.open_checkpoint(row.note, signer.verifier).root == merkle.tree_hash(hashes[: row.size])
        for seq in range(1, 34):
            proof = checkpoints.event_proof(s, seq)
            assert merkle.leaf_hash(proof.leaf) == hashes[seq - 1] and proof.index == seq - 1
            index, checkpoint = notes.verify_proof(proof.proof, proof.leaf, signer.verifier)
            assert (index, checkpoint.size) == (seq - 1, 33)
        for old in range(0, 34):
            for new in range(old, 34, 5):
                path = checkpoints.consistency(s, old, new)
                assert path == merkle.consistency_proof(old, new, hashes)
                roots = merkle.tree_hash(hashes[:old]), merkle.tree_hash(hashes[:new])
                merkle.verify_consistency(old, new, *roots, path)


def test_a_checkpoint_without_new_events_is_the_latest_one(runtime: Runtime) -> None:
    signer = new_signer()
    with transaction(runtime.sessions) as s:
        empty = make_checkpoint(s, signer)
        assert (empty.size, empty.root_hash) == (0, merkle.EMPTY_ROOT.hex())
    fill(runtime, signer, [5])
    with transaction(runtime.sessions) as s:
        again = make_checkpoint(s, signer)
        assert again.size == 5
        assert s.scalar(select(func.count()).select_from(AuditCheckpoint)) == 2


def test_proofs_need_an_event_and_a_checkpoint_covering_it(runtime: Runtime) -> None:
    signer = new_signer()
    with transaction(runtime.sessions) as s:
        with pytest.raises(NoCheckpoint):
            checkpoints.consistency(s, 0, 0)
        append_events(s, [("k", "x", {})] * 4)
    with transaction(runtime.sessions) as s, pytest.raises(NoCheckpoint, match="no audit checkpoint yet"):
        checkpoints.event_proof(s, 1)
    with transaction(runtime.sessions) as s:
        make_checkpoint(s, signer)
        append_events(s, [("k", "y", {})] * 2)
    with transaction(runtime.sessions) as s:
        with pytest.raises(NotFound):
            checkpoints.event_proof(s, 99)
        with pytest.raises(NoCheckpoint, match="newer than the latest checkpoint"):
            checkpoints.event_proof(s, 5)
        with pytest.raises(NoCheckpoint, match="beyond the latest checkpoint"):
            checkpoints.consistency(s, 1, 5)
        with pytest.raises(merkle.MerkleError):
            checkpoints.consistency(s, 3, 2)


def test_a_proof_is_one_round_trip_to_the_database(runtime: Runtime) -> None:
    signer = new_signer()
    fill(runtime, signer, [700])  # 10 levels, 11 blocks at level 0: sibling and right-edge blocks differ
    seqs = (1, 64, 65, 300, 640, 700, 2, 129, 513, 699)
    with transaction(runtime.sessions) as s:
        checkpoints.event_proof(s, 1)  # the transaction has begun
        with round_trips(s) as seen:
            for seq in seqs:
                p = checkpoints.event_proof(s, seq)
                assert notes.verify_proof(p.proof, p.leaf, signer.verifier)[0] == seq - 1
        assert len(seqs) <= len(seen) <= len(seqs) + 1, seen  # + psycopg preparing the statement once
        with round_trips(s) as seen, pytest.raises(NotFound):
            checkpoints.event_proof(s, 701)
        assert len(seen) == 1


def test_the_key_comes_from_the_secret_or_the_file_never_shown(tmp_path: Path) -> None:
    signer = new_signer()
    secret = Settings(home=tmp_path, signing_key=SecretStr(pem(signer)))
    assert load_signer(secret).verifier == signer.verifier
    path = tmp_path / "k.pem"
    path.write_text(pem(signer))
    assert load_signer(Settings(home=tmp_path, signing_key_path=path)).verifier == signer.verifier
    go = Settings(home=tmp_path, signing_key=SecretStr(GO_SKEY), audit_origin="PeterNeumann")
    assert str(load_signer(go).verifier) == "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    with pytest.raises(SigningKeyError, match="named 'PeterNeumann', not") as named:
        load_signer(Settings(home=tmp_path, signing_key=SecretStr(GO_SKEY)))
    assert "AYEKF" not in str(named.value)
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM") as bad:
        load_signer(Settings(home=tmp_path, signing_key=SecretStr("garbage-secret-value")))
    assert "garbage" not in str(bad.value)
    with pytest.raises(SigningKeyError, match="no audit signing key at"):
        load_signer(Settings(home=tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="without spaces"):
        Settings(home=tmp_path, audit_origin="two words")
    assert Settings(home=tmp_path, signing_key=SecretStr(pem(signer))).masked()["signing_key"] == "**********"


def test_init_makes_a_key_only_for_the_embedded_default(settings: Settings) -> None:
    line = ensure_signing_key(settings)
    path = settings.signing_key_path
    assert path is not None
    if settings.db_url.startswith("sqlite"):
        assert line.endswith("(created)") and load_signer(settings).name == ORIGIN
        assert ensure_signing_key(settings).endswith("(kept)")
    else:
        assert line.startswith("MISSING") and not path.exists()
    given = settings.model_copy(update={"signing_key": SecretStr(pem(new_signer()))})
    assert ensure_signing_key(given) == "from BWC_SIGNING_KEY"


def test_a_proof_names_the_exact_leaf_bytes(runtime: Runtime) -> None:
    signer = new_signer()
    fill(runtime, signer, [6])
    with transaction(runtime.sessions) as s:
        body = checkpoints.event_proof(s, 5).as_json()
    leaf = base64.b64decode(str(body["leaf"]))
    assert leaf.startswith(b'{"actor":') and b'"seq":5' in leaf
    assert notes.verify_proof(str(body["proof"]), leaf, signer.verifier)[0] == 4


def test_replicas_checkpointing_at_once_write_one_consistent_log(runtime: Runtime) -> None:
    # Every replica runs a checkpointer; the advisory lock (PostgreSQL) or the write lock (SQLite) lets one
    # extend the tree at a time, so none fails on the other's nodes and no size is signed twice.
    signer = new_signer()
    fill(runtime, signer, [3], tail=40)
    start = threading.Barrier(4)
    sizes: list[int | None] = []

    def replica() -> None:
        start.wait()
        sizes.append(checkpoint_once(runtime.sessions, signer))

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sizes == [43] * 4
    with transaction(runtime.sessions) as s:
        assert [r.size for r in s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id))] == [3, 43]
        assert verify_log(s, signer.verifier).ok


def test_the_stored_blocks_hold_every_node_across_block_boundaries(runtime: Runtime) -> None:
    signer = new_signer()
    sizes = [5, 63, 64, 65, 129, 300, 1000, 4097, 4200]  # short blocks completed, levels crossing 64 and 4096
    fill(runtime, signer, sizes)
    hashes = _leaf_hashes(runtime)
    with transaction(runtime.sessions) as s:
        for row in s.scalars(select(AuditCheckpoint)):
            assert row.root_hash == merkle.tree_hash(hashes[: row.size]).hex()
        for level in range(13):
            count = 4200 >> level
            stored = tree.fetch_nodes(s, [(level, i) for i in range(count + 1)])
            want = {(level, i): merkle.tree_hash(hashes[i << level : (i + 1) << level]) for i in range(count)}
            assert stored == want, level
        for seq in (1, 64, 65, 4096, 4097, 4200):
            p = checkpoints.event_proof(s, seq)
            assert notes.verify_proof(p.proof, p.leaf, signer.verifier)[1].size == 4200
        assert verify_log(s, signer.verifier).ok


def test_only_every_sixth_level_is_stored_and_the_levels_between_are_hashed_from_it(runtime: Runtime) -> None:
    signer = new_signer()
    fill(runtime, signer, [4200])
    hashes = _leaf_hashes(runtime)
    with transaction(runtime.sessions) as s:
        stored = s.execute(select(AuditTreeBlock.level, func.count()).group_by(AuditTreeBlock.level)).all()
        assert sorted(stored) == [(6, 2), (12, 1)]  # 65 nodes of level 6, one of level 12; the leaves are the events'
        for level in (6, 12):
            block = s.get(AuditTreeBlock, (level, 0))
            assert block is not None
            want = [merkle.tree_hash(hashes[i << level : (i + 1) << level]) for i in range(min(64, 4200 >> level))]
            assert block.hashes == b"".join(want)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda data: data[:32], "block 6/0 is damaged"),  # cut short
        (lambda data: data[:32] + bytes(32) + data[64:], "no longer matches checkpoint 300"),  # node 6/1 changed
    ],
)
def test_a_damaged_block_of_a_stored_upper_level_is_caught(
    runtime: Runtime, damage: Callable[[bytes], bytes], problem: str
) -> None:
    # 300 events: level 6 holds 4 nodes in its short block 0, from which levels 7 and 8 are hashed again; the
    # 40 events after complete a fifth, so the next checkpoint rewrites that block.
    signer = new_signer()
    fill(runtime, signer, [300], tail=40)
    with transaction(runtime.sessions) as s:
        block = s.get(AuditTreeBlock, (6, 0))
        assert block is not None and len(block.hashes) == 4 * 32
        damaged = damage(block.hashes)
    sql(runtime.engine, "UPDATE audit_tree_blocks SET hashes = :h WHERE level = 6 AND block = 0", h=damaged)
    with transaction(runtime.sessions) as s:
        if problem.startswith("block"):
            with pytest.raises(TreeIncomplete, match="lacks node 6/1"):
                checkpoints.event_proof(s, 1)  # its sibling at level 6
        else:
            p = checkpoints.event_proof(s, 1)
            with pytest.raises(merkle.MerkleError):
                notes.verify_proof(p.proof, p.leaf, signer.verifier)  # the served proof no longer leads to the root
    with pytest.raises(Exception, match=problem), transaction(runtime.sessions) as s:
        make_checkpoint(s, signer)
    with transaction(runtime.sessions) as s:
        assert s.scalars(select(AuditCheckpoint.size)).all() == [300]
