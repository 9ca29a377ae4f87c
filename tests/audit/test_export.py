"""``bwc export`` and ``bwc verify-package`` (SPEC §10): a BagIt ZIP the bagit validator, sha256sum and openssl accept,
and in which one flipped byte anywhere is found and named."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path

import bagit
import pytest
from sqlalchemy import select

from audit.export import plan_export
from audit.export_bag import stream_bag
from audit.export_text import RECIPE
from audit.package_verify import verify_package
from storage.basics import utcnow
from storage.db import transaction
from storage.models import AuditEvent
from tests.fixtures.audit_log import new_signer, pem
from tests.fixtures.evidence import CASE, Case, Invoke, cli_for

ROOT = f"bwc-export-{CASE}"


@pytest.fixture
def bwc(case: Case, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    key = case.rt.settings.signing_key_path
    assert key is not None
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text(pem(new_signer(case.rt.settings.audit_origin)))
    return cli_for(case.rt, monkeypatch)


@pytest.fixture
def exported(case: Case, bwc: Invoke, tmp_path: Path) -> Path:
    out = tmp_path / "export.zip"
    result = bwc("export", CASE, "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def _unzip(path: Path, where: Path) -> Path:
    with zipfile.ZipFile(path) as zf:
        zf.extractall(where)
    return where / ROOT


def _member_kinds(case: Case, zip_path: Path) -> list[str]:
    """One member of every kind the bag holds."""
    with zipfile.ZipFile(zip_path) as zf:
        names = [n[len(ROOT) + 1 :] for n in zf.namelist()]
    event = next(n for n in names if n.endswith(".json") and "/events/" in n)
    return [
        "bagit.txt", "bag-info.txt", "VERIFY.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt", "data/case.json",
        next(n for n in names if n.startswith(f"data/recordings/{case.recs['DEV-A'].id}-")),
        next(n for n in names if n.startswith("data/sidecars/")),
        event, event.replace(".json", ".tlog-proof"),
        "data/audit/checkpoint", "data/audit/checkpoint.body", "data/audit/checkpoint.sig",
        "data/audit/public-key.pem", "data/audit/verifier-key.txt",
    ]  # fmt: skip


def test_the_export_is_a_bag_the_bagit_validator_accepts(case: Case, exported: Path, tmp_path: Path) -> None:
    bag_dir = _unzip(exported, tmp_path / "unzipped")

    bag = bagit.Bag(str(bag_dir))
    bag.validate()  # the Library of Congress validator: manifests, Payload-Oxum, completeness

    assert bag.info["External-Identifier"] == CASE
    case_json = json.loads((bag_dir / "data" / "case.json").read_text())
    assert [a["action_id"] for a in case_json["actions"]] == ["A-1"]
    exported_ids = sorted(r["id"] for r in case_json["recordings"])
    assert exported_ids == sorted([case.recs["DEV-A"].id, case.recs["DEV-B"].id])  # DEV-C filmed another thing
    for rec in case_json["recordings"]:
        assert (bag_dir / rec["file"]).read_bytes() == case.object_bytes(rec["sha256"])
    assert [s["sha256"] for s in case_json["sidecars"]] == [case.sidecar.sha256]
    with case.rt.sessions() as s:
        [export_event] = s.scalars(select(AuditEvent).where(AuditEvent.kind == "case.exported"))
    # the export's own event travels in the bag with its proof
    own = bag_dir / "data" / "audit" / "events" / f"{export_event.seq:08d}.json"
    assert json.loads(own.read_bytes())["kind"] == "case.exported"
    assert own.with_suffix(".tlog-proof").read_text().startswith("c2sp.org/tlog-proof@v1\nindex ")


def test_verify_package_passes_an_untouched_export(exported: Path, bwc: Invoke) -> None:
    result = bwc("verify-package", str(exported), "--format", "json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["events"] > 5 and report["checkpoint"]["size"] >= report["events"]


def test_a_flipped_byte_in_the_zip_is_named(case: Case, exported: Path, bwc: Invoke, tmp_path: Path) -> None:
    for member in _member_kinds(case, exported):
        damaged = tmp_path / f"flip-{member.replace('/', '_')}.zip"
        shutil.copyfile(exported, damaged)
        with zipfile.ZipFile(damaged) as zf:
            info = zf.getinfo(f"{ROOT}/{member}")
        with open(damaged, "r+b") as f:  # the member's stored bytes start after its local header
            f.seek(info.header_offset + 26)
            header = f.read(4)
            start = (
                info.header_offset + 30 + int.from_bytes(header[:2], "little") + int.from_bytes(header[2:], "little")
            )
            f.seek(start + info.file_size // 2)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0x01]))

        result = bwc("verify-package", str(damaged))

        assert result.exit_code == 1, member
        assert f"FAILED {member}" in result.output, (member, result.output)


def test_a_member_rewritten_with_a_valid_zip_entry_is_named(
    case: Case, exported: Path, bwc: Invoke, tmp_path: Path
) -> None:
    """A careful forger rebuilds the ZIP (CRCs all right): the manifests, signature and proofs still catch it."""
    for member in _member_kinds(case, exported):
        forged = tmp_path / f"forged-{member.replace('/', '_')}.zip"
        with zipfile.ZipFile(exported) as src, zipfile.ZipFile(forged, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                if info.filename == f"{ROOT}/{member}":
                    data = data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 0x01]) + data[len(data) // 2 + 1 :]
                dst.writestr(info, data)

        report = verify_package(forged)

        assert not report.ok, member
        assert any(member in name or member in problem for name, problem in report.findings), (member, report)


def test_the_experts_recipe_works_with_common_tools(exported: Path, tmp_path: Path) -> None:
    bag_dir = _unzip(exported, tmp_path / "unzipped")
    text = (bag_dir / "VERIFY.txt").read_text()

    for command in RECIPE:
        assert command in text
        done = subprocess.run(command, shell=True, cwd=bag_dir, capture_output=True, text=True, check=False)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    assert "Signature Verified Successfully" in done.stdout

    recording = next((bag_dir / "data" / "recordings").iterdir())
    data = bytearray(recording.read_bytes())
    data[len(data) // 2] ^= 0x01
    recording.write_bytes(bytes(data))
    body = bag_dir / "data" / "audit" / "checkpoint.body"
    body.write_bytes(body.read_bytes().replace(b"\n", b"\n1", 1))  # the tree size, changed
    results = [subprocess.run(c, shell=True, cwd=bag_dir, capture_output=True, text=True, check=False) for c in RECIPE]
    assert [r.returncode != 0 for r in results] == [False, True, True]
    assert f"data/recordings/{recording.name}: FAILED" in results[1].stdout


def test_bad_exports_are_refused_and_write_nothing(case: Case, bwc: Invoke, tmp_path: Path) -> None:
    taken = tmp_path / "taken.zip"
    taken.write_bytes(b"someone's file")
    unknown = bwc("export", "NO-SUCH-CASE", "--out", str(tmp_path / "a.zip"))
    exists = bwc("export", CASE, "--out", str(taken))
    case.flip_byte(case.recs["DEV-B"].sha256)
    assert bwc("fixity", "--all").exit_code == 1
    damaged = bwc("export", CASE, "--out", str(tmp_path / "b.zip"))

    assert (unknown.exit_code, exists.exit_code, damaged.exit_code) == (2, 2, 2)
    assert "NO-SUCH-CASE" in unknown.output and "exists" in exists.output and "fixity" in damaged.output
    assert taken.read_bytes() == b"someone's file"
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".zip", ".part")) == ["taken.zip"]
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip at all")
    assert bwc("verify-package", str(garbage)).exit_code == 2


def test_a_streamed_export_stops_when_the_reader_goes(case: Case, bwc: Invoke) -> None:
    rt = case.rt
    with transaction(rt.sessions) as s:
        plan = plan_export(s, rt.settings, CASE, "test", utcnow())
    chunks = stream_bag(plan, rt.store)
    first = next(chunks)
    writer = next(t for t in threading.enumerate() if t.name == "bwc-export")

    chunks.close()  # the client went away

    writer.join(timeout=30)
    assert first.startswith(b"PK") and not writer.is_alive()
