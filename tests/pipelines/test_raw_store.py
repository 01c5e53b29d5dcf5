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
from tests.plates import qpcr_plate

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


def test_an_inbox_file_is_kept_as_a_read_only_copy_of_its_own(processor):
    path, sha256 = _arrive(processor.home.inbox, "plate.txt", BAD_PLATE)
    stored, hashed = processor.store_raw(path)
    assert hashed == sha256
    assert stored == processor.home.raw / sha256[:2] / f"{sha256}.txt"
    assert not os.path.samefile(stored, path) and _read_only(stored)
    assert stored.read_bytes() == BAD_PLATE and stored.stat().st_nlink == 1
    assert processor.store_raw(path) == (stored, sha256)  # kept once
    assert not list(processor.home.raw.rglob(".*"))  # no temporary left


def test_a_file_from_elsewhere_is_copied_and_left_as_it_was(processor, tmp_path):
    path, sha256 = _arrive(tmp_path / "desktop", "plate.txt", BAD_PLATE)
    stored, _ = processor.store_raw(path)
    assert not os.path.samefile(stored, path)
    assert stored.read_bytes() == BAD_PLATE and _read_only(stored)
    assert not _read_only(path)


def test_where_cloning_is_refused_the_bytes_are_copied(processor, monkeypatch):
    """ext4 and tmpfs have no copy-on-write clones: the bytes are written while hashed."""
    from pipelines.ingest import processor as processor_module

    path, sha256 = _arrive(processor.home.inbox, "plate.txt", BAD_PLATE)
    refused = []

    def no_clone(fd, request, arg):
        refused.append(request)
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(processor_module.fcntl, "ioctl", no_clone)
    stored, hashed = processor.store_raw(path)
    assert refused == [processor_module.FICLONE]
    assert hashed == sha256 and stored.read_bytes() == BAD_PLATE


def test_writing_into_a_processed_file_leaves_the_raw_store_alone(processor):
    """processed/ holds the inbox original; the raw store's bytes are not shared with it."""
    path = qpcr_plate(processor.home.inbox / "plate.txt", "P001", "RAW-1")
    (processor.home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
    processor = Processor(processor.home)
    outcome = processor.process(path)
    assert outcome.status == "ingested", outcome.reason
    processed = processor.home.processed / path.name
    stored = next(p for p in processor.home.raw.rglob("*.txt"))
    before = stored.read_bytes()
    os.chmod(processed, 0o644)
    with processed.open("r+b") as handle:
        handle.write(b"tampered")
    assert stored.read_bytes() == before


def test_fixing_a_quarantined_file_in_place_leaves_the_raw_store_alone(processor):
    """A refused inbox file reaches quarantine as a writable copy of its own; its inbox name,
    shared with the raw store, is gone."""
    path, _ = _arrive(processor.home.inbox, "plate.txt", BAD_PLATE)
    outcome = processor.process(path)
    assert outcome.status == "quarantined"
    quarantined = processor.home.quarantine / "plate.txt"
    stored = next(p for p in processor.home.raw.rglob("*.txt"))
    assert not path.exists() and not os.path.samefile(quarantined, stored)
    assert (processor.home.quarantine / "plate.txt.reason.txt").exists()
    with quarantined.open("r+b") as handle:  # the technician's fix, written in place
        handle.write(b"Block Type,96-well\n")
    assert stored.read_bytes() == BAD_PLATE
    assert stored.stat().st_nlink == 1
