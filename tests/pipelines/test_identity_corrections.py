"""Identity is append-only and audited: manifests that re-map an accession are refused, a
correction manifest re-files the rows that used it, and names resolved by the sample-name
pattern take their DNA input and dates from the manifest entry of their patient and timepoint.

Ingests real-format files (QuantStudio text, FCS 3.1 from the demo's writers) into a temporary
lab home through the engine, as `cartflow ingest` does.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from pipelines.demo.flow_files import FORTESSA, Tube, bcell_counts, tcell_counts, write_tube
from pipelines.demo.qpcr_files import write_quantstudio_text
from pipelines.demo.qpcr_plates import GOOD_CURVES, build_plate
from pipelines.demo.trial import Sample
from pipelines.home import LabHome
from pipelines.ingest import INGESTED, QUARANTINED, Processor
from pipelines.ledger import Ledger
from pipelines.warehouse import connect

HEADER = "accession,patient_id,timepoint,collection_date,infusion_date,dna_input_ng"
FIRST = (
    f"{HEADER}\n"
    "S26-0100,P001,D14,2026-03-16,2026-03-02,150\n"
    "S26-0101,P001,D28,2026-03-30,2026-03-02,150\n"
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _plate(path: Path, names: list[str], run_id: str) -> Path:
    """A 96-well QuantStudio export with one sample (triplicate, CAR and RNase P) per name."""
    truth = Sample("x", "P001", "D14", date(2026, 3, 16), 150.0)
    plate = build_plate(
        instrument_format="quantstudio-text", run_id=run_id, instrument="QuantStudio 7 Flex",
        run_started=datetime(2026, 5, 1, 9), samples=[(n, truth) for n in names],
        curves=GOOD_CURVES, rng=np.random.default_rng(0), wells_per_plate=96, cq_noise_sd=0.0,
    )  # fmt: skip
    write_quantstudio_text(path, plate)
    return path


def _tube(folder: Path, accession: str, panel: str) -> Path:
    """The demo cytometer's T-cell or B-cell tube of one draw, `$SRC` the accession."""
    counts = tcell_counts(20.0, 1.5) if panel == "tcell" else bcell_counts(40.0)
    tube = Tube(accession, "P001", "D14", panel, date(2026, 3, 16), FORTESSA, counts)
    return write_tube(folder / tube.file_name, tube, np.random.default_rng(1))


@pytest.fixture()
def lab(tmp_path: Path) -> LabHome:
    return LabHome(tmp_path / "lab").ensure()


def _rows_by_patient(home: LabHome, table: str, where: str) -> dict[str, int]:
    query = f"SELECT patient_id, count(*) FROM {table} WHERE {where} GROUP BY 1 ORDER BY 1"
    return dict(connect(home.warehouse).execute(query).fetchall())


# -- append-only --------------------------------------------------------------------------


def test_a_manifest_that_re_maps_a_known_accession_is_refused_naming_both_mappings(lab, tmp_path):
    processor = Processor(lab)
    assert processor.process(_write(tmp_path / "manifest_june.csv", FIRST)).status == INGESTED
    remap = _write(
        tmp_path / "manifest_july.csv",
        f"{HEADER}\nS26-0100,P999,D14,2026-03-16,2026-03-02,150\n"
        "S26-0102,P002,D7,2026-04-09,2026-04-02,120\n",
    )
    outcome = processor.process(remap)
    assert outcome.status == QUARANTINED
    assert (
        "S26-0100 is P001 D14 (collected 2026-03-16, infused 2026-03-02, 150 ng DNA) from "
        "manifest_june.csv, this manifest says P999 D14" in outcome.reason
    )
    assert "submit it as a correction manifest" in outcome.reason
    assert "correction_reason and corrected_by" in outcome.reason
    ledger = Ledger(lab.ledger_path)
    mapping = {row[0]: row[1] for row in ledger.manifest_rows()}
    assert mapping == {"S26-0100": "P001", "S26-0101": "P001"}  # nothing of it taken, not S26-0102
    assert ledger.corrections() == []


def test_a_changed_dna_input_is_a_re_mapping_too(lab, tmp_path):
    processor = Processor(lab)
    processor.process(_write(tmp_path / "m1.csv", FIRST))
    changed = _write(tmp_path / "m2.csv", f"{HEADER}\nS26-0101,P001,D28,2026-03-30,2026-03-02,90\n")
    outcome = processor.process(changed)
    assert outcome.status == QUARANTINED
    assert "S26-0101 is P001 D28 (collected 2026-03-30, infused 2026-03-02, 150 ng DNA)" in (
        outcome.reason
    )
    assert "this manifest says P001 D28 (collected 2026-03-30, infused 2026-03-02, 90 ng DNA)" in (
        outcome.reason
    )


def test_identical_rows_listed_again_are_taken_and_new_accessions_appended(lab, tmp_path):
    processor = Processor(lab)
    processor.process(_write(tmp_path / "m1.csv", FIRST))
    again = _write(
        tmp_path / "m2.csv",
        # the same two entries, columns in another order and spelt as another lab writes them
        "Sample ID,Subject,Visit,Collection Date,Infusion Date,DNA ng\n"
        "S26-0101,P001,Day 28,2026-03-30,2026-03-02,150\n"
        "S26-0100,P001,Day 14,2026-03-16,2026-03-02,150.0\n"
        "S26-0102,P002,Day 7,2026-04-09,2026-04-02,120\n",
    )
    assert processor.process(again).status == INGESTED
    ledger = Ledger(lab.ledger_path)
    sources = {a: name for a, (_, name) in ledger.manifest_sources().items()}
    assert sources == {"S26-0100": "m1.csv", "S26-0101": "m1.csv", "S26-0102": "m2.csv"}


def test_a_correction_row_without_who_and_why_is_refused(lab, tmp_path):
    processor = Processor(lab)
    processor.process(_write(tmp_path / "m1.csv", FIRST))
    correction = _write(
        tmp_path / "fix.csv",
        f"{HEADER},correction_reason,corrected_by\nS26-0100,P002,D14,2026-03-16,2026-03-02,150,,\n",
    )
    outcome = processor.process(correction)
    assert outcome.status == QUARANTINED
    assert "changes S26-0100 without saying why and by whom" in outcome.reason
    assert {row[0]: row[1] for row in Ledger(lab.ledger_path).manifest_rows()}["S26-0100"] == "P001"


# -- corrections --------------------------------------------------------------------------


CORRECTION = (
    f"{HEADER},correction_reason,corrected_by\n"
    "S26-0100,P999,D14,2026-03-16,2026-03-02,150,tube label swapped at draw (CAPA-12),A. Tech\n"
    "S26-0101,P001,D28,2026-03-30,2026-03-02,150,,\n"
)


@pytest.fixture()
def taken(lab: LabHome, tmp_path: Path) -> dict[str, Path]:
    """A lab home holding the manifest, the T-cell and B-cell tubes of draw S26-0100, and a
    qPCR plate of draws S26-0100 and S26-0101."""
    processor = Processor(lab)
    files = {
        "manifest": _write(tmp_path / "manifest_june.csv", FIRST),
        "tcell": _tube(tmp_path, "S26-0100", "tcell"),
        "bcell": _tube(tmp_path, "S26-0100", "bcell"),
        "plate": _plate(tmp_path / "plate.txt", ["S26-0100", "S26-0101"], "RUN-1"),
    }
    for path in files.values():
        outcome = processor.process(path)
        assert outcome.status == INGESTED, outcome.reason
    Ledger(lab.ledger_path).derived(None)
    return files


def _assert_corrected(home: LabHome, before: dict[str, int]) -> None:
    """S26-0100's rows are P999's, once each; S26-0101's stay P001's; nothing else moved."""
    for table in ("flow_samples", "flow_populations", "flow_mfi"):
        assert _rows_by_patient(home, table, "true") == {"P999": before[table]}, table
    copies = _rows_by_patient(home, "car_copies", "sample_name = 'S26-0100'")
    assert copies == {"P999": 1}  # its one row, now under P999 only
    assert _rows_by_patient(home, "car_copies", "sample_name = 'S26-0101'") == {"P001": 1}
    wells = _rows_by_patient(home, "qpcr_wells", "sample_name = 'S26-0100'")
    assert wells == {"P999": 6}  # triplicate x two targets
    duplicates = connect(home.warehouse).execute(
        "SELECT count(*) FROM (SELECT run_id, sample_name, target FROM car_copies "
        "GROUP BY ALL HAVING count(*) > 1)"
    )
    assert duplicates.fetchone() == (0,)


def test_a_correction_re_files_the_tubes_and_the_plate_rows_under_the_new_patient(
    lab, taken, tmp_path
):
    before = {
        table: sum(_rows_by_patient(lab, table, "true").values())
        for table in ("flow_samples", "flow_populations", "flow_mfi")
    }
    assert _rows_by_patient(lab, "flow_populations", "true").keys() == {"P001"}

    outcome = Processor(lab).process(_write(tmp_path / "correction.csv", CORRECTION))

    assert outcome.status == INGESTED, outcome.reason
    _assert_corrected(lab, before)
    assert {p for p, _ in outcome.partitions} == {"P001", "P999"}
    assert any("corrected S26-0100: P001 D14" in w and "-> P999 D14" in w for w in outcome.warnings)
    ledger = Ledger(lab.ledger_path)
    [audit] = ledger.corrections()
    assert (audit["accession"], audit["old_patient_id"], audit["new_patient_id"]) == (
        "S26-0100", "P001", "P999",
    )  # fmt: skip
    assert audit["reason"] == "tube label swapped at draw (CAPA-12)"
    assert audit["corrected_by"] == "A. Tech"
    assert audit["manifest_sha256"] == outcome.sha256
    assert audit["old_source_sha256"] == next(
        r.sha256 for r in ledger.records() if r.original_name == "manifest_june.csv"
    )
    assert audit["corrected_at"].startswith(str(date.today().year))
    assert sorted(ledger.pending_derive()) == ["P001", "P999"]
    assert ledger.pending_refiles() == {}
    statuses = {r.original_name: r.status for r in ledger.records()}
    assert set(statuses.values()) == {INGESTED}
    # the ledger lists exactly the files in the warehouse: the old outputs are gone
    listed = {o.path for _, o in ledger.all_outputs()}
    on_disk = {
        p.relative_to(lab.warehouse).as_posix()
        for p in lab.warehouse.rglob("*.parquet")
        if not p.name.startswith(".") and p.parent.name != "ingest_log"
    }
    assert on_disk == listed


def test_a_correction_with_nothing_changed_corrects_nothing(lab, taken, tmp_path):
    unchanged = CORRECTION.replace("S26-0100,P999", "S26-0100,P001")
    outcome = Processor(lab).process(_write(tmp_path / "correction.csv", unchanged))
    assert outcome.status == INGESTED
    assert outcome.partitions == []
    assert Ledger(lab.ledger_path).corrections() == []


def test_each_ingested_file_records_the_accessions_its_rows_used(lab, taken):
    ledger = Ledger(lab.ledger_path)
    used = {r.original_name: ledger.accessions_of(r.sha256) for r in ledger.records()}
    assert used == {
        "manifest_june.csv": None,
        "S26-0100_TCELL.fcs": ["S26-0100"],
        "S26-0100_BCELL.fcs": ["S26-0100"],
        "plate.txt": ["S26-0100", "S26-0101"],
    }


# -- names resolved by the pattern ----------------------------------------------------------


def test_a_pattern_named_sample_takes_dna_input_and_dates_from_its_manifest_entry(lab, tmp_path):
    processor = Processor(lab)
    manifest = f"{HEADER}\nS26-0300,P003,D14,2026-04-17,2026-04-02,100\n"
    processor.process(_write(tmp_path / "manifest.csv", manifest))
    outcome = processor.process(_plate(tmp_path / "plate4.txt", ["P003_D14", "P003_D7"], "RUN-4"))
    assert outcome.status == INGESTED, outcome.reason

    rows = (
        connect(lab.warehouse)
        .execute(
            "SELECT sample_name, dna_input_ng, copies_per_reaction, copies_per_ug, study_day, "
            "collection_date FROM car_copies WHERE target = 'CAR' ORDER BY sample_name"
        )
        .fetchall()
    )
    by_name = {r[0]: r[1:] for r in rows}
    dna, per_reaction, per_ug, day, collected = by_name["P003_D14"]
    assert dna == 100.0
    assert per_ug == pytest.approx(per_reaction * 1000.0 / 100.0)
    assert (day, collected) == (15, date(2026, 4, 17))  # from the dates, not the nominal 14
    assert by_name["P003_D7"][0] is None and by_name["P003_D7"][3] == 7  # no entry: nominal
    assert outcome.warnings == [
        "P003_D7: named by pattern, no manifest entry for that patient and timepoint; nominal "
        "study day, DNA input from the export or the settings"
    ]
    ledger = Ledger(lab.ledger_path)
    plate = next(r for r in ledger.records() if r.original_name == "plate4.txt")
    assert ledger.accessions_of(plate.sha256) == ["S26-0300"]


def test_a_pattern_named_sample_with_two_manifest_entries_takes_neither(lab, tmp_path):
    processor = Processor(lab)
    manifest = (
        f"{HEADER}\nS26-0300,P003,D14,2026-04-17,2026-04-02,100\n"
        "S26-0309,P003,D14,2026-04-16,2026-04-02,300\n"
    )
    processor.process(_write(tmp_path / "manifest.csv", manifest))
    outcome = processor.process(_plate(tmp_path / "plate4.txt", ["P003_D14"], "RUN-4"))
    assert outcome.status == INGESTED, outcome.reason
    dna = (
        connect(lab.warehouse)
        .execute("SELECT DISTINCT dna_input_ng, study_day FROM car_copies")
        .fetchall()
    )
    assert dna == [(None, 14)]
    assert outcome.warnings == [
        "P003_D14: named by pattern, 2 manifest entries for P003 D14 (S26-0300, S26-0309): which "
        "draw it is cannot be told, name it by accession; nominal study day, DNA input from the "
        "export or the settings"
    ]
