"""Paths inside the watched folder, with real symlinks: nothing outside it is ever taken."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.errors import BadInput
from ingest.paths import UnsafePath, relative_inside


@pytest.fixture
def root(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    (inbox / "DSJ-A001" / "执法 2024").mkdir(parents=True)
    (inbox / "DSJ-A001" / "执法 2024" / "clip 1.mp4").write_bytes(b"x")
    return inbox


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.mp4").write_bytes(b"s")
    return elsewhere


def test_relative_path_with_slashes_and_unicode(root: Path) -> None:
    assert relative_inside(root, root / "DSJ-A001" / "执法 2024" / "clip 1.mp4") == "DSJ-A001/执法 2024/clip 1.mp4"


def test_relative_argument_is_taken_inside_root(root: Path) -> None:
    assert relative_inside(root, Path("DSJ-A001/执法 2024/clip 1.mp4")) == "DSJ-A001/执法 2024/clip 1.mp4"


def test_dot_dot_is_refused_even_when_it_lands_inside(root: Path) -> None:
    sneaky = root / "DSJ-A001" / ".." / "DSJ-A001" / "执法 2024" / "clip 1.mp4"
    with pytest.raises(UnsafePath) as caught:
        relative_inside(root, sneaky)
    assert caught.value.code == "unsafe_path"
    assert isinstance(caught.value, BadInput)


def test_dot_dot_escaping_is_refused(root: Path, outside: Path) -> None:
    with pytest.raises(UnsafePath):
        relative_inside(root, root / ".." / "elsewhere" / "secret.mp4")
    with pytest.raises(UnsafePath):
        relative_inside(root, Path("../elsewhere/secret.mp4"))


def test_path_outside_root_is_refused(root: Path, outside: Path) -> None:
    with pytest.raises(UnsafePath):
        relative_inside(root, outside / "secret.mp4")


def test_root_itself_is_not_a_file_in_it(root: Path) -> None:
    with pytest.raises(UnsafePath):
        relative_inside(root, root)


def test_symlinked_file_pointing_outside_is_refused(root: Path, outside: Path) -> None:
    link = root / "DSJ-A001" / "evil.mp4"
    link.symlink_to(outside / "secret.mp4")
    with pytest.raises(UnsafePath):
        relative_inside(root, link)


def test_dangling_symlink_pointing_outside_is_refused(root: Path, outside: Path) -> None:
    link = root / "gone.mp4"
    link.symlink_to(outside / "not-there.mp4")
    with pytest.raises(UnsafePath):
        relative_inside(root, link)


def test_file_under_symlinked_folder_pointing_outside_is_refused(root: Path, outside: Path) -> None:
    (root / "DSJ-B002").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath):
        relative_inside(root, root / "DSJ-B002" / "secret.mp4")


def test_symlink_staying_inside_keeps_its_own_name(root: Path) -> None:
    link = root / "alias.mp4"
    link.symlink_to(root / "DSJ-A001" / "执法 2024" / "clip 1.mp4")
    assert relative_inside(root, link) == "alias.mp4"
    folder_link = root / "DSJ-A001-alias"
    folder_link.symlink_to(root / "DSJ-A001", target_is_directory=True)
    assert relative_inside(root, folder_link / "执法 2024" / "clip 1.mp4") == "DSJ-A001-alias/执法 2024/clip 1.mp4"


def test_symlink_to_the_root_itself_is_refused(root: Path) -> None:
    (root / "loop-to-root").symlink_to(root, target_is_directory=True)
    with pytest.raises(UnsafePath):
        relative_inside(root, root / "loop-to-root")


def test_symlink_loop_is_refused(root: Path) -> None:
    (root / "a.mp4").symlink_to(root / "b.mp4")
    (root / "b.mp4").symlink_to(root / "a.mp4")
    with pytest.raises(UnsafePath):
        relative_inside(root, root / "a.mp4")


def test_root_named_through_a_symlink(tmp_path: Path, root: Path) -> None:
    via = tmp_path / "via"
    via.symlink_to(root, target_is_directory=True)
    real_file = root / "DSJ-A001" / "执法 2024" / "clip 1.mp4"
    assert relative_inside(via, real_file) == "DSJ-A001/执法 2024/clip 1.mp4"
    assert relative_inside(root, via / "DSJ-A001" / "执法 2024" / "clip 1.mp4") == "DSJ-A001/执法 2024/clip 1.mp4"
    assert relative_inside(via, via / "DSJ-A001" / "执法 2024" / "clip 1.mp4") == "DSJ-A001/执法 2024/clip 1.mp4"


def test_relative_root_spelling(tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert os.path.exists("inbox")
    assert relative_inside(Path("inbox"), root / "DSJ-A001" / "执法 2024" / "clip 1.mp4") == (
        "DSJ-A001/执法 2024/clip 1.mp4"
    )
    assert relative_inside(Path("inbox"), Path("inbox/DSJ-A001/x.mp4")) == "DSJ-A001/x.mp4"
