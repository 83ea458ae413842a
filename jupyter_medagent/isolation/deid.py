"""The de-identified view of a data folder that sandboxed kernels read instead of the original DICOM.

A mirror of the data folder is kept on the host (under ``cache_root()``, hidden from every sandbox):
DICOM files are de-identified by dicognito (names, IDs, addresses, institutions and physicians
replaced, dates shifted, UIDs re-mapped consistently: the same UID gets the same new UID in every
file, so a SEG still references its series) and have their private tags removed; every other file is a
hard link to the original (or, across filesystems, bound read-only over an empty placeholder); a DICOM
file that cannot be read is left out of the view. Free-text attributes that the basic profile of PS3.15
removes and dicognito keeps (StudyDescription, ImageComments, PatientComments, ...) are removed, at any depth;
SeriesDescription and ProtocolName, which tell a series' kind (cine, short axis), stay with the patient's name parts replaced.
Folder and file names that hold a PatientID, AccessionNumber or a part of the PatientName of a DICOM file in
the data (as PACS exports name them) show a pseudonym in their place, the same for the same value in every
build. Archives (zip, tar, 7z, compressed tars or DICOM) are left out, with a note in their place saying to
unpack them first: what they hold cannot be de-identified as files. The
sandbox binds the mirror read-only in place of the data folder, so model-written code never holds an
identifying DICOM value. The mapping from each de-identified file to the original's identifying values
stays in the cache, on the host.

The mirror is built once and refreshed file by file, keyed by each file's mtime and size; a data folder
without DICOM files has no mirror and is bound as it is.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import stat
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MIRROR_VERSION = 3  # bump when the de-identification changes: every cached mirror is rebuilt


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
    left_out: list[str] = field(default_factory=list)  # relative paths of archives not shown, with a note instead

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


# Free text the basic application level confidentiality profile (PS3.15 E.1-1) removes ("X") and dicognito keeps.
FREE_TEXT_TAGS = ("StudyDescription", "ImageComments", "PatientComments", "RequestedProcedureDescription",
                  "AdditionalPatientHistory", "StudyComments", "ReasonForStudy", "RequestingService",
                  "PerformedProcedureStepDescription", "ScheduledProcedureStepDescription",
                  "AdmittingDiagnosesDescription", "DerivationDescription", "Occupation", "MedicalAlerts",
                  "Allergies", "PatientState", "AcquisitionComments", "ReasonForTheRequestedProcedure",
                  "RequestedProcedureComments", "ImagingServiceRequestComments", "InterpretationText",
                  "TextValue", "CommentsOnThePerformedProcedureStep", "VisitComments",
                  "DischargeDiagnosisDescription", "ServiceEpisodeDescription")
# Free text that tells a series' kind (cine, short axis): kept with the patient's name parts replaced.
SCRUBBED_TAGS = ("SeriesDescription", "ProtocolName")
# Where a PACS export names folders and files by the patient.
NAMING_TAGS = ("PatientID", "AccessionNumber", "PatientName", "OtherPatientIDs")
LEFT_OUT_SUFFIX = ".medagent-left-out.txt"  # the note shown in place of an archive
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"7z\xbc\xaf\x27\x1c", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd",
                  b"Rar!")


def identifying_terms(original: dict[str, str]) -> set[str]:
    """What a name may not show of one DICOM file: its IDs and accession number, each part of its names."""
    terms = set()
    for keyword in NAMING_TAGS:
        for value in re.split(r"\\|', '", original.get(keyword, "").strip("[]'")):  # a MultiValue's str() too
            parts = re.split(r"[\^\s,.=]+", value) if keyword == "PatientName" else [value]
            terms.update(part.strip().lower() for part in parts if len(part.strip()) >= 2)
    return terms


def replace_terms(text: str, terms: set[str], pseudonym) -> str:
    """``text`` with every term replaced by ``pseudonym(term)``: as a substring from 4 characters on, as a
    whole word below (a 3-letter name would otherwise match inside ordinary words)."""
    for term in sorted(terms, key=len, reverse=True):
        pattern = re.escape(term) if len(term) >= 4 else rf"(?<![A-Za-z0-9]){re.escape(term)}(?![A-Za-z0-9])"
        replacement = pseudonym(term).replace("\\", "\\\\")  # a literal, not a template
        text = re.sub(pattern, replacement, text, flags=re.I)
    return text


def _scrub_free_text(ds, terms: set[str]) -> None:
    for keyword in FREE_TEXT_TAGS:
        if keyword in ds:
            delattr(ds, keyword)
    for keyword in SCRUBBED_TAGS:
        if ds.get(keyword) not in (None, ""):
            setattr(ds, keyword, replace_terms(str(ds.get(keyword)), terms, lambda _term: "anon"))
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                _scrub_free_text(item, terms)


def _is_archive(path: Path) -> bool:
    """A zip, tar, 7z, rar, bzip2/xz/zstd stream, or gzip of a tar or of DICOM, by content (a .nii.gz is kept)."""
    import tarfile

    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(_ARCHIVE_MAGIC):
        return True
    if head.startswith(b"\x1f\x8b"):
        with open(path, "rb") as handle:
            try:  # what the start of the stream holds, even where the rest is cut off
                inner = zlib.decompressobj(wbits=31).decompress(handle.read(1 << 16), 512)
            except zlib.error:
                return False  # not a gzip stream after all: nothing unpacks it
        return (inner[128:132] == b"DICM" or inner[257:262] == b"ustar"
                or (len(inner) >= 8 and int.from_bytes(inner[:2], "little") in FIRST_GROUPS))
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _deidentify(source: Path, target: Path, anonymizer) -> dict[str, str]:
    """Write the de-identified copy of ``source`` to ``target``; returns the original identifying values."""
    import pydicom

    from jupyter_medagent.imaging.dicom import IDENTIFYING_TAGS

    ds = pydicom.dcmread(str(source), force=True)  # raw data sets too: _is_dicom has judged the content
    original = {k: str(ds.get(k)) for k in (*IDENTIFYING_TAGS, "StudyInstanceUID", "SeriesInstanceUID",
                                             "SOPInstanceUID") if ds.get(k) not in (None, "")}
    ds.remove_private_tags()
    _scrub_free_text(ds, identifying_terms(original))
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
        seen, binds, dicom_files, left_out = set(), [], 0, []
        folders, files = _files(data, inside, [*map(os.path.realpath, hidden), os.path.realpath(root)])
        view_path = _view_paths(files, index, mapping, inside, _seed(root))
        for rel_dir in folders:
            target = mirror / view_path(rel_dir)
            if target.is_symlink() or target.is_file():  # was a file or link in an older build
                target.unlink()
            target.mkdir(parents=True, exist_ok=True)
        for rel, source, st in files:
            view = view_path(rel)
            seen.add(rel)
            stamp = [st.st_mtime_ns, st.st_size, st.st_ino]
            entry = index["files"].get(rel)
            if entry and entry["stamp"] == stamp and entry.get("view") in (view, view + LEFT_OUT_SUFFIX) and (
                    (mirror / entry["view"]).exists() or entry["kind"] == "unreadable"):
                dicom_files += entry["kind"] == "dicom"
                if entry["kind"] == "bind":
                    binds.append((str(source), str(mirror / view)))
                if entry["kind"] == "archive":
                    left_out.append(rel)
                continue
            for stale in {mirror / view, *([mirror / entry["view"]] if entry and entry.get("view") else [])}:
                if stale.is_file() or stale.is_symlink():
                    stale.unlink()
            target = mirror / view
            if _is_dicom(source):
                if anonymizer is None:
                    anonymizer = Anonymizer(seed=_seed(root))
                try:
                    mapping[rel] = _deidentify(source, target, anonymizer)
                    kind = "dicom"
                    dicom_files += 1
                except Exception:  # unreadable: left out of the view rather than shown as it is
                    kind = "unreadable"
            elif _is_archive(source):
                view += LEFT_OUT_SUFFIX
                (mirror / view).write_text(
                    f"{os.path.basename(view_path(rel))} is an archive: medagent cannot de-identify what it holds, "
                    "so the sandbox does not show it. Unpack it into the data folder first; DICOM files there "
                    "are shown de-identified.\n")
                kind = "archive"
                left_out.append(rel)
            else:
                try:
                    os.link(os.path.realpath(source), target)
                    kind = "hardlink"
                except OSError:  # another filesystem: an empty placeholder the original is bound over
                    target.touch()
                    kind = "bind"
                    binds.append((str(source), str(target)))
            index["files"][rel] = {"stamp": stamp, "kind": kind, "view": view}
        for rel in set(index["files"]) - seen:  # removed from the data folder since the last build
            entry = index["files"].pop(rel)
            mapping.pop(rel, None)
            stale = mirror / entry.get("view", rel)
            if stale.is_file() or stale.is_symlink():
                stale.unlink()
        shown = {view_path(rel_dir) for rel_dir in folders}  # each folder's parents are among them
        for dirpath, _dirs, _names in os.walk(mirror, topdown=False):  # folders gone, or shown under a new name
            if os.path.relpath(dirpath, mirror) not in shown:
                shutil.rmtree(dirpath, ignore_errors=True)
        index_path.write_text(json.dumps(index))
        fd = os.open(mapping_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(mapping, handle)
    if not dicom_files and not left_out:
        return None
    return DeidView(str(data), str(mirror), binds, dicom_files, sorted(inside), sorted(left_out))


def _view_paths(files, index: dict, mapping: dict, inside: set[str], seed: str):
    """The function giving each relative path its name in the view: every folder or file name part that
    holds an identifying term of a DICOM file in the data replaced by that term's pseudonym."""
    import pydicom

    terms: set[str] = set()
    for rel, source, st in files:
        entry = index["files"].get(rel)
        if entry and entry["stamp"] == [st.st_mtime_ns, st.st_size, st.st_ino]:
            terms |= identifying_terms(mapping.get(rel, {}))
        elif _is_dicom(source):
            try:
                ds = pydicom.dcmread(str(source), stop_before_pixels=True, force=True)
            except Exception:  # unreadable: _deidentify leaves it out
                continue
            terms |= identifying_terms({k: str(ds.get(k)) for k in NAMING_TAGS if ds.get(k) not in (None, "")})

    def pseudonym(term: str) -> str:
        return "anon-" + hmac.new(seed.encode(), term.encode(), "sha256").hexdigest()[:10]

    def view_path(rel: str) -> str:
        if rel in inside or not terms:
            return rel
        return os.path.normpath("/".join(replace_terms(part, terms, pseudonym) for part in rel.split("/")))

    return view_path


def _inside(path: str, folder: Path, itself: bool = False) -> bool:
    return (itself and path == str(folder)) or path.startswith(str(folder).rstrip("/") + "/")
