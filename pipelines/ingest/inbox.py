"""The inbox's rules: which files are exports waiting to be taken, and in which order.

Imported by the watcher, which must not import Prefect to filter files.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.assays import is_manifest
from pipelines.home import LabHome

IGNORED_PREFIXES = (".", "~$", "~")
IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", ".swp", ".reason.txt")


def is_candidate(path: Path) -> bool:
    """A complete-looking export: not hidden, not an editor's or a copy's temporary file."""
    name = path.name
    try:
        regular = path.is_file()
    except OSError:  # a name the filesystem cannot stat (too long, a dangling share)
        return False
    return (
        regular
        and not name.startswith(IGNORED_PREFIXES)
        and not name.lower().endswith(IGNORED_SUFFIXES)
    )


def looks_like_manifest(path: Path) -> bool:
    """Whether `path` is a sample manifest; False for a file that cannot be read or is gone
    (another run took it, or it is damaged: the file's own processing says so)."""
    try:
        return is_manifest(path)
    except Exception:  # noqa: BLE001 - sorting must never stop a sweep
        return False


def manifests_first(files: list[Path]) -> list[Path]:
    """Manifests before everything else, so the samples they name resolve."""
    return sorted(files, key=lambda p: (not looks_like_manifest(p), str(p)))


def inbox_files(home: LabHome) -> list[Path]:
    """Files waiting in the inbox, manifests first."""
    return manifests_first([p for p in home.inbox.rglob("*") if is_candidate(p)])
