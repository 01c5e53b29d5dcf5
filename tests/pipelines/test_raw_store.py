"""The raw store: what each received file's bytes are kept as, and that nothing done to the
processed or quarantined file afterwards can change them."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

import pytest

from pipelines.home import LabHome
from pipelines.ingest import Processor

BAD_PLATE = b"this is not an instrument export\n" * 20


@pytest.fixture
def processor(tmp_path) -> Processor:
    return Processor(LabHome(tmp_path / "lab").ensure())


def _arrive(folder: Path, name: str, content: bytes) -> tuple[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


def _read_only(path: Path) -> bool:
    return not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_an_inbox_file_is_kept_under_a_second_name_not_copied(processor):
    path, sha256 = _arrive(processor.home.inbox, "plate.txt", BAD_PLATE)
    stored = processor.store_raw(path, sha256)
    assert stored == processor.home.raw / sha256[:2] / f"{sha256}.txt"
    assert os.path.samefile(stored, path) and _read_only(stored)
    assert processor.store_raw(path, sha256) == stored  # kept once


def test_a_file_from_elsewhere_is_copied_and_left_as_it_was(processor, tmp_path):
    path, sha256 = _arrive(tmp_path / "desktop", "plate.txt", BAD_PLATE)
    stored = processor.store_raw(path, sha256)
    assert not os.path.samefile(stored, path)
    assert stored.read_bytes() == BAD_PLATE and _read_only(stored)
    assert not _read_only(path)


def test_an_inbox_on_another_filesystem_is_copied(processor, monkeypatch):
    path, sha256 = _arrive(processor.home.inbox, "plate.txt", BAD_PLATE)

    def cross_device(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    stored = processor.store_raw(path, sha256)
    assert not os.path.samefile(stored, path) and stored.read_bytes() == BAD_PLATE


def test_fixing_a_quarantined_file_in_place_leaves_the_raw_store_alone(processor):
    """A refused inbox file reaches quarantine as a writable copy of its own; its inbox name,
    shared with the raw store, is gone."""
    path, _ = _arrive(processor.home.inbox, "plate.txt", BAD_PLATE)
    outcome = processor.process(path)
    assert outcome.status == "quarantined"
    quarantined = processor.home.quarantine / "plate.txt"
    stored = next(p for p in processor.home.raw.rglob("*.txt"))
    assert not path.exists() and not os.path.samefile(quarantined, stored)
    with quarantined.open("r+b") as handle:  # the technician's fix, written in place
        handle.write(b"Block Type,96-well\n")
    assert stored.read_bytes() == BAD_PLATE
    assert stored.stat().st_nlink == 1
