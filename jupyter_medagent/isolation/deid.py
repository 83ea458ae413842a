"""The de-identified view of a data folder that sandboxed kernels read instead of the original DICOM.

A mirror of the data folder is kept on the host (under ``cache_root()``, hidden from every sandbox):
DICOM files are de-identified by dicognito (names, IDs, addresses, institutions and physicians
replaced, dates shifted, UIDs re-mapped consistently: the same UID gets the same new UID in every
file, so a SEG still references its series) and have their private tags removed; every other file is a
hard link to the original (or, across filesystems, bound read-only over an empty placeholder); a DICOM
file that cannot be read is left out of the view. The
sandbox binds the mirror read-only in place of the data folder, so model-written code never holds an
identifying DICOM value. The mapping from each de-identified file to the original's identifying values
stays in the cache, on the host.

The mirror is built once and refreshed file by file, keyed by each file's mtime and size; a data folder
without DICOM files has no mirror and is bound as it is.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

MIRROR_VERSION = 2  # bump when the de-identification changes: every cached mirror is rebuilt


def cache_root() -> Path:
    """Where mirrors and mappings live: ``$MEDAGENT_DEID_CACHE``, else ``$XDG_CACHE_HOME/medagent/deid``."""
    if os.environ.get("MEDAGENT_DEID_CACHE"):
        return Path(os.environ["MEDAGENT_DEID_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medagent" / "deid"


@dataclass
class DeidView:
    """A de-identified mirror of ``data_dir`` at ``root``; ``binds`` are (original, placeholder in the
    mirror) pairs for the files that could not be hard-linked."""

    data_dir: str
    root: str
    binds: list[tuple[str, str]] = field(default_factory=list)
    dicom_files: int = 0
    passthrough: list[str] = field(default_factory=list)  # relative folders shown as they are

    def bwrap_args(self) -> list[str]:
        """bubblewrap's arguments showing this view at the data folder's own path, read-only."""
        argv = ["--ro-bind", self.root, self.data_dir]
        for original, placeholder in self.binds:
            argv += ["--ro-bind", original, os.path.join(self.data_dir, os.path.relpath(placeholder, self.root))]
        for rel in self.passthrough:
            argv += ["--ro-bind", os.path.join(self.data_dir, rel), os.path.join(self.data_dir, rel)]
        return argv


def _seed(root: Path) -> str:
    """This host's secret seed: the same original UID maps to the same new UID in every run."""
    path = root / "seed"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def _deidentify(source: Path, target: Path, anonymizer) -> dict[str, str]:
    """Write the de-identified copy of ``source`` to ``target``; returns the original identifying values."""
    import pydicom

    from jupyter_medagent.imaging.dicom import IDENTIFYING_TAGS

    ds = pydicom.dcmread(str(source), force=True)  # raw data sets too: _is_dicom has judged the content
    original = {k: str(ds.get(k)) for k in (*IDENTIFYING_TAGS, "StudyInstanceUID", "SeriesInstanceUID",
                                             "SOPInstanceUID") if ds.get(k) not in (None, "")}
    ds.remove_private_tags()
    anonymizer.anonymize(ds)
    tmp = target.with_name(target.name + ".part")
    ds.save_as(str(tmp), enforce_file_format=False)
    os.replace(tmp, target)
    return original


# Identifying attributes of the patient module: a file pydicom reads only with ``force`` (no preamble) counts
# as DICOM when it carries one of them.
PATIENT_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "OtherPatientIDs", "PatientAddress")
# The group of a raw data set's first element (no preamble, no "DICM"): file meta, identifying, patient.
FIRST_GROUPS = (0x0002, 0x0008, 0x0010)


def _is_dicom(path: Path) -> bool:
    """Whether the regular file ``path`` is DICOM, by its content: the DICM preamble, or a raw data set
    (a PACS export without preamble or extension) that pydicom reads with ``force`` and that carries
    patient-module attributes; a name ending in .dcm alone is not enough."""
    import pydicom

    from jupyter_medagent.imaging.dicom import is_dicom

    with open(path, "rb") as handle:
        head = handle.read(132)
    if head[128:132] == b"DICM":
        return True
    if len(head) < 8 or (int.from_bytes(head[:2], "little") not in FIRST_GROUPS and not is_dicom(path)):
        return False
    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
        return any(ds.get(k) not in (None, "") for k in PATIENT_TAGS)
    except Exception:  # pydicom raises many types for files that are not DICOM
        return False


def _files(data: Path, passthrough: set[str], hidden: list[str]):
    """(relative path, path, stat) of every regular file under ``data``, through symlinked folders and files
    (their targets' content, wherever it lies; each folder once), and the relative folders to create;
    ``passthrough`` folders are not entered. Links that lead nowhere or into ``hidden`` places (what the
    sandbox hides), devices and pipes are left out."""
    folders, files, seen = [], [], set()
    stack = [(data, ".")]
    while stack:
        folder, rel_dir = stack.pop()
        try:
            st = os.stat(folder)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        folders.append(rel_dir)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            rel = os.path.normpath(os.path.join(rel_dir, entry.name))
            if rel in passthrough:
                folders.append(rel)
                continue
            try:
                st = os.stat(entry.path)  # followed: a link shows what it leads to
            except OSError:
                continue
            if entry.is_symlink() and any(_inside(os.path.realpath(entry.path), Path(h), itself=True) for h in hidden):
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append((Path(entry.path), rel))
            elif stat.S_ISREG(st.st_mode):
                files.append((rel, Path(entry.path), st))
    return folders, files


def deidentified_view(data_dir: str | os.PathLike, passthrough: list[str] = (),
                      hidden: list[str] = ()) -> DeidView | None:
    """The de-identified view of ``data_dir`` (built or refreshed now, file by file, keyed by path, mtime,
    size and inode), or None when it holds no DICOM file. ``passthrough``: folders inside it shown as they
    are (not mirrored; an output folder bound writable over the view, this Python's own packages);
    ``hidden``: files and folders a link in the data may not bring into the view (the cache is one)."""
    from dicognito.anonymizer import Anonymizer

    data = Path(os.path.realpath(data_dir))
    inside = {os.path.relpath(os.path.realpath(p), data) for p in passthrough if _inside(os.path.realpath(p), data)}
    root = cache_root()
    folder = root / hashlib.sha256(str(data).encode()).hexdigest()[:24]
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        index_path, mapping_path, mirror = folder / "index.json", folder / "mapping.json", folder / "tree"
        index = json.loads(index_path.read_text()) if index_path.exists() else {}
        if index.get("version") != MIRROR_VERSION or index.get("data_dir") != str(data):
            shutil.rmtree(mirror, ignore_errors=True)
            index = {"version": MIRROR_VERSION, "data_dir": str(data), "files": {}}
        mapping = json.loads(mapping_path.read_text()) if mapping_path.exists() and index["files"] else {}
        anonymizer = None
        seen, binds, dicom_files = set(), [], 0
        folders, files = _files(data, inside, [*map(os.path.realpath, hidden), os.path.realpath(root)])
        for rel_dir in folders:
            target = mirror / rel_dir
            if target.is_symlink() or target.is_file():  # was a file or link in an older build
                target.unlink()
            target.mkdir(parents=True, exist_ok=True)
        for rel, source, st in files:
            target = mirror / rel
            seen.add(rel)
            stamp = [st.st_mtime_ns, st.st_size, st.st_ino]
            entry = index["files"].get(rel)
            if entry and entry["stamp"] == stamp and (target.exists() or entry["kind"] == "unreadable"):
                dicom_files += entry["kind"] == "dicom"
                if entry["kind"] == "bind":
                    binds.append((str(source), str(target)))
                continue
            if target.exists() or target.is_symlink():
                target.unlink()
            if _is_dicom(source):
                if anonymizer is None:
                    anonymizer = Anonymizer(seed=_seed(root))
                try:
                    mapping[rel] = _deidentify(source, target, anonymizer)
                    kind = "dicom"
                    dicom_files += 1
                except Exception:  # unreadable: left out of the view rather than shown as it is
                    kind = "unreadable"
            else:
                try:
                    os.link(os.path.realpath(source), target)
                    kind = "hardlink"
                except OSError:  # another filesystem: an empty placeholder the original is bound over
                    target.touch()
                    kind = "bind"
                    binds.append((str(source), str(target)))
            index["files"][rel] = {"stamp": stamp, "kind": kind}
        for rel in set(index["files"]) - seen:  # removed from the data folder since the last build
            index["files"].pop(rel)
            mapping.pop(rel, None)
            stale = mirror / rel
            if stale.is_file() or stale.is_symlink():
                stale.unlink()
        index_path.write_text(json.dumps(index))
        fd = os.open(mapping_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(mapping, handle)
    if not dicom_files:
        return None
    return DeidView(str(data), str(mirror), binds, dicom_files, sorted(inside))


def _inside(path: str, folder: Path, itself: bool = False) -> bool:
    return (itself and path == str(folder)) or path.startswith(str(folder).rstrip("/") + "/")
