"""The DICOM reader against corrupted files: one bad file never takes a scan down.

A corpus of damaged copies of small valid files written by ``write_dicom_series`` (and one
enhanced MR file): truncations at many offsets, flipped and random bytes, a corrupted VR
in every header element, missing tags, absurd sizes, bad transfer syntaxes, wrong element
lengths, non-DICOM files, symlink loops, unreadable files and folders. Each damaged copy
gets its own SeriesInstanceUID (same length, patched in its bytes), so it can only form a
series of its own. The scan must return; every damaged file is skipped with a one-line
reason or forms a series that loads or is refused with a ``CMRError``; the valid series
next to them load with their shapes and no loss recorded.
"""
from __future__ import annotations

import os
import re
import struct
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import UID, ImplicitVRLittleEndian

from cmrlib import Image
from cmrlib.errors import CMRError, DicomError
from cmrlib.io import StudyInfo, load_series, scan_folder, write_dicom_series
from conftest import MOLLI_533_ACQ
from test_io_dicom import write_enhanced_mr

VALID = {"MOLLI native": (8, 16, 12), "cine SAX": (6, 2, 16, 12), "LGE SAX": (3, 16, 12)}
_LONG = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}


@dataclass
class Case:
    path: Path
    damage: str
    must_skip: bool = False
    reason: str = ""  # regular expression the skip reason must match (with must_skip)


# ---- building blocks ---------------------------------------------------------------------
def write_valid_study(root: Path, seed: int = 7) -> None:
    """MOLLI 5(3)3 (8 frames), a 2-slice cine (6 phases) and a 3-slice LGE, 16x12 pixels."""
    rng = np.random.default_rng(seed)
    study = StudyInfo.new("corrupt")
    molli = Image(rng.uniform(0, 900, (8, 16, 12)).round(), (1.5, 1.4, 8.0), is_sequence=True,
                  frame_meta=[{"InversionTime": t} for t in MOLLI_533_ACQ])
    write_dicom_series(molli, root / "molli", description="MOLLI native", series_number=2, study=study)
    cine = Image(rng.uniform(0, 400, (6, 2, 16, 12)).round(), (1.5, 1.4, 8.0), is_sequence=True,
                 frame_meta=[{"TriggerTime": 50.0 * k} for k in range(6)])
    write_dicom_series(cine, root / "cine", description="cine SAX", series_number=3, study=study)
    lge = Image(rng.uniform(0, 900, (3, 16, 12)).round(), (1.5, 1.4, 8.0))
    write_dicom_series(lge, root / "lge", description="LGE SAX", series_number=4, study=study,
                       extra={"InversionTime": 300.0})


def elements(raw: bytes) -> list[tuple[int, bytes, int, int, int]]:
    """Top-level elements of an explicit VR little endian file without sequences:
    (tag, VR, start, value offset, value length)."""
    out, at = [], 132
    while at + 8 <= len(raw):
        group, elem = struct.unpack_from("<HH", raw, at)
        vr = raw[at + 4:at + 6]
        if vr in _LONG:
            length, value = struct.unpack_from("<L", raw, at + 8)[0], at + 12
        else:
            length, value = struct.unpack_from("<H", raw, at + 6)[0], at + 8
        out.append(((group << 16) | elem, vr, at, value, length))
        at = value + length
    return out


def element(raw: bytes, tag: int) -> tuple[int, bytes, int, int, int]:
    return next(e for e in elements(raw) if e[0] == tag)


def patch(raw: bytes, at: int, data: bytes) -> bytes:
    return raw[:at] + data + raw[at + len(data):]


def set_us(raw: bytes, tag: int, value: int) -> bytes:
    return patch(raw, element(raw, tag)[3], struct.pack("<H", value))


def cut(raw: bytes, tag: int) -> bytes:
    """``raw`` without element ``tag`` (file meta group length left as it was)."""
    _, _, start, value, length = element(raw, tag)
    return raw[:start] + raw[value + length:]


def set_string(raw: bytes, tag: int, text: str) -> bytes:
    """Element ``tag`` (2-byte length VR) with a new value; the file meta group length is
    fixed up when ``tag`` is in group 0002."""
    _, vr, start, value, length = element(raw, tag)
    data = text.encode("latin-1")
    data += b"\0" if len(data) % 2 else b""
    out = raw[:start] + raw[start:start + 6] + struct.pack("<H", len(data)) + data + raw[value + length:]
    if tag >> 16 == 2:
        gl = element(out, 0x00020000)[3]
        out = patch(out, gl, struct.pack("<L", struct.unpack_from("<L", out, gl)[0] + len(data) - length))
    return out


def no_decoder(uid: str) -> bool:
    try:
        return not get_decoder(UID(uid)).is_available
    except NotImplementedError:
        return True


class Corpus:
    """Damaged copies of donor files; copy ``k`` gets its own SeriesInstanceUID."""

    def __init__(self, root: Path, donors: dict[str, Path]) -> None:
        self.root, self.cases = root, []
        self.donors = {name: p.read_bytes() for name, p in donors.items()}
        self.uids = {name: str(pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID).encode()
                     for name, p in donors.items()}
        root.mkdir(parents=True, exist_ok=True)

    def add(self, donor: str, damage: str, data: bytes, must_skip: bool = False, reason: str = "",
            name: str | None = None) -> Path:
        k = len(self.cases)
        uid = self.uids[donor]
        data = data.replace(uid, uid[:-6] + b"%06d" % k)
        path = Path(os.path.normpath(self.root / (name or f"{k:05d}.dcm")))
        path.write_bytes(data)
        self.cases.append(Case(path, damage, must_skip, reason))
        return path


def build_corpus(root: Path, rng: np.random.Generator, donors: dict[str, Path]) -> Corpus:
    with warnings.catch_warnings():  # pydicom warns when told to write the odd values below
        warnings.simplefilter("ignore")
        return _build_corpus(root, rng, donors)


def _build_corpus(root: Path, rng: np.random.Generator, donors: dict[str, Path]) -> Corpus:
    c = Corpus(root / "damaged", donors)
    raw = c.donors["classic"]
    pixel_at = element(raw, 0x7FE00010)[2]

    # truncations at many offsets: every cut-short file is skipped
    for name, step in (("classic", 5), ("implicit", 11), ("enhanced", 13)):
        data = c.donors[name]
        for n in range(0, len(data), step):
            c.add(name, f"{name} truncated at {n}", data[:n], must_skip=True,
                  reason=r"truncated|empty file|not a DICOM file|unreadable DICOM header")
    # flipped bytes (header or pixel data) and random runs, seeded
    for k in range(60):
        data = bytearray(raw)
        lo, hi = (0, pixel_at) if k < 45 else (pixel_at, len(raw))
        for at in rng.integers(lo, hi, rng.integers(1, 4)):
            data[at] ^= int(rng.integers(1, 256))
        c.add("classic", "flipped bytes", bytes(data))
    for k in range(30):
        data = bytearray(raw)
        n = int(rng.integers(2, 33))
        at = int(rng.integers(0, len(raw) - n))
        data[at:at + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        c.add("classic", "random bytes", bytes(data))
    # one corrupted byte in the VR of every element (pydicom: NotImplementedError on access)
    for tag, vr, start, _, _ in elements(raw):
        c.add("classic", f"VR of ({tag >> 16:04X},{tag & 0xFFFF:04X}) made unknown",
              patch(raw, start + 4, b"Z"), must_skip=tag == 0x00080016, reason=r"\(0008,0016\)")
    # missing required tags
    for tag, must in ((0x00280010, True), (0x00280011, True), (0x0020000E, True), (0x00020010, True),
                      (0x00280100, False), (0x00280101, False), (0x00280103, False), (0x00280002, False),
                      (0x00280004, False), (0x00080016, False), (0x00080018, False), (0x00200032, False),
                      (0x00200037, False), (0x00280030, False), (0x00200013, False), (0x00020000, False)):
        c.add("classic", f"missing ({tag >> 16:04X},{tag & 0xFFFF:04X})", cut(raw, tag), must_skip=must)
    c.add("classic", "no pixel data", raw[:pixel_at], must_skip=True, reason="ends before its pixel data")
    # absurd sizes and bit depths
    for tag, values, must in (
            (0x00280010, (0, 1, 9999, 65535), True), (0x00280011, (0, 1, 9999, 65535), True),
            (0x00280100, (0, 1, 7, 12, 24, 32, 64), True), (0x00280101, (0, 17, 40), False),
            (0x00280102, (99,), False), (0x00280103, (7,), False), (0x00280002, (0, 3, 9999), False)):
        for v in values:
            c.add("classic", f"({tag >> 16:04X},{tag & 0xFFFF:04X}) = {v}", set_us(raw, tag, v), must_skip=must)
    ds = pydicom.dcmread(donors["classic"])
    for keyword, value, must in (
            ("NumberOfFrames", "1000000000", True), ("NumberOfFrames", "-1", True), ("NumberOfFrames", "0", False),
            ("NumberOfFrames", "x", True), ("NumberOfFrames", "2", True), ("SeriesNumber", "x", False),
            ("InstanceNumber", "x", False), ("PixelSpacing", ["0", "0"], False), ("PixelSpacing", ["-1", "1"], False),
            ("PixelSpacing", ["nan", "nan"], False), ("ImagePositionPatient", ["nan", "0", "0"], False),
            ("ImagePositionPatient", ["inf", "0", "0"], False), ("ImageOrientationPatient", ["0"] * 6, False),
            ("RescaleSlope", "nan", False), ("RescaleSlope", "0", False), ("RescaleIntercept", "1e400", False),
            ("PhotometricInterpretation", "RGB", False), ("PhotometricInterpretation", "GARBAGE", False)):
        bad = ds.copy()
        setattr(bad, keyword, "7" if value == "x" else value)  # pydicom refuses to write "x" as IS
        path = c.root / "tmp.dcm"
        bad.save_as(path, enforce_file_format=True)
        data = path.read_bytes()
        if value == "x":
            data = set_string(data, pydicom.datadict.tag_for_keyword(keyword), value)
        c.add("classic", f"{keyword} = {value}", data, must_skip=must)
    path.unlink()
    enh = pydicom.dcmread(donors["enhanced"])
    for frames, must in (("1000000000", True), ("8", True), ("6", True), ("0", False)):
        bad = enh.copy()
        bad.NumberOfFrames = frames
        bad.save_as(c.root / "tmp.dcm", enforce_file_format=True)
        c.add("enhanced", f"enhanced NumberOfFrames = {frames}", (c.root / "tmp.dcm").read_bytes(), must_skip=must)
    (c.root / "tmp.dcm").unlink()
    # transfer syntaxes: unknown, invalid, empty, compressed without a decoder, and wrong ones
    for uid in ("1.2.3.4", "garbage!", "", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.201",
                "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5",
                "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99"):
        must = uid in ("1.2.3.4", "garbage!", "") or no_decoder(uid)
        c.add("classic", f"TransferSyntaxUID {uid!r}", set_string(raw, 0x00020010, uid), must_skip=must,
              reason=r"transfer syntax|TransferSyntaxUID|decoder|unreadable DICOM header")
    # zero-length and huge declared element lengths
    for length in (0, 2, 0xFFFFFFFE, 0xFFFFFFFF, 0x7FFFFFFF):
        c.add("classic", f"pixel data length {length:#x}", patch(raw, pixel_at + 8, struct.pack("<L", length)),
              must_skip=True, reason=r"pixel data|truncated")
    for tag in (0x0008103E, 0x00100010, 0x00280030, 0x00080016, 0x00200013):  # 2-byte lengths
        _, _, start, _, _ = element(raw, tag)
        for length in (0, 1, 0xFFFF):
            c.add("classic", f"length of ({tag >> 16:04X},{tag & 0xFFFF:04X}) = {length}",
                  patch(raw, start + 6, struct.pack("<H", length)))
    for tag in (0x00020001,):  # FileMetaInformationVersion, OB: 4-byte length
        _, _, start, _, _ = element(raw, tag)
        for length in (0, 0xFFFFFFF0, 0xFFFFFFFF):
            c.add("classic", f"length of (0002,0001) = {length:#x}", patch(raw, start + 8, struct.pack("<L", length)))
    for value in (0, 0xFFFFFFFF):
        c.add("classic", f"file meta group length {value:#x}", patch(raw, element(raw, 0x00020000)[3], struct.pack("<L", value)))
    # a header nested deeper than Python's recursion limit
    meta_end = 132 + 12 + struct.unpack_from("<L", raw, element(raw, 0x00020000)[3])[0]
    nested = (struct.pack("<HH", 0x0008, 0x1140) + b"SQ\0\0\xff\xff\xff\xff"
              + struct.pack("<HH", 0xFFFE, 0xE000) + b"\xff\xff\xff\xff") * 3000
    c.add("classic", "sequences nested 3000 deep", raw[:meta_end] + nested + raw[meta_end:])
    # not DICOM at all, with a .dcm suffix
    for label, data in (("text", b"hello, not an image\n" * 10), ("random", rng.bytes(3000)),
                        ("png", b"\x89PNG\r\n\x1a\n" + rng.bytes(200)), ("zip", b"PK\x03\x04" + rng.bytes(200)),
                        ("preamble only", b"\0" * 128 + b"DICM"), ("DICM then junk", b"\0" * 128 + b"DICM" + rng.bytes(500)),
                        ("json", b'{"Rows": 16, "Columns": 12}')):
        c.add("classic", f"non-DICOM: {label}", data, must_skip=True)
    return c


def add_filesystem_damage(root: Path, corpus: Corpus) -> dict[str, tuple[Path, str]]:
    """Symlink loops, a broken link, a FIFO, folders named .dcm, unreadable file and folder.
    Returns {name: (path, reason pattern)} of what must be listed as skipped."""
    fs = root / "fs"
    fs.mkdir()
    out = {}
    os.symlink(root, fs / "back")
    out["folder loop"] = (fs / "back", "loop")
    os.symlink(fs / "self.dcm", fs / "self.dcm")
    out["self link"] = (fs / "self.dcm", "loop")
    os.symlink(fs / "b.dcm", fs / "a.dcm")
    os.symlink(fs / "a.dcm", fs / "b.dcm")
    out["link pair"] = (fs / "a.dcm", "loop")
    os.symlink(fs / "missing.dcm", fs / "broken.dcm")
    out["broken link"] = (fs / "broken.dcm", "broken")
    os.mkfifo(fs / "fifo.dcm")
    out["fifo"] = (fs / "fifo.dcm", "not a regular file")
    (fs / "empty.dcm").mkdir()
    (fs / "folder.dcm").mkdir()
    corpus.add("classic", "valid file in a folder named .dcm", corpus.donors["classic"], name="../fs/folder.dcm/x.dcm")
    locked = corpus.add("classic", "unreadable permissions", corpus.donors["classic"], name="../fs/locked.dcm")
    locked.chmod(0)
    (fs / "locked_dir").mkdir()
    corpus.add("classic", "valid file in an unreadable folder", corpus.donors["classic"], name="../fs/locked_dir/x.dcm")
    (fs / "locked_dir").chmod(0)
    if os.geteuid() != 0:  # root reads everything: then these two are ordinary files
        corpus.cases[-2].must_skip, corpus.cases[-2].reason = True, "Permission denied"
        corpus.cases.pop()  # never seen: its folder is listed instead
        out["locked folder"] = (fs / "locked_dir", "cannot list folder")
    return out


@pytest.fixture(scope="module")
def donors(tmp_path_factory) -> dict[str, Path]:
    """One-image donor files: explicit VR (the writer's), implicit VR, enhanced multi-frame."""
    root = tmp_path_factory.mktemp("donors")
    img = Image(np.random.default_rng(3).uniform(0, 900, (1, 16, 12)).round(), (1.5, 1.4, 8.0))
    classic = write_dicom_series(img, root / "classic", description="donor", series_number=90,
                                 extra={"InversionTime": 300.0})[0]
    ds = pydicom.dcmread(classic)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(root / "implicit.dcm", enforce_file_format=True)
    write_enhanced_mr(root / "enhanced.dcm", [100.0, 180.0, 260.0, 1100.0, 1180.0, 2100.0, 3100.0])
    for p in (classic, root / "implicit.dcm", root / "enhanced.dcm"):  # each donor is valid
        assert load_series(scan_folder(p).series[0]).array.size
    return {"classic": classic, "implicit": root / "implicit.dcm", "enhanced": root / "enhanced.dcm"}


def check_scan(root: Path, cases: list[Case], must_skip: dict[str, tuple[Path, str]] | None = None) -> dict:
    """Scan ``root`` and check the contract; returns counts by outcome."""
    scan = scan_folder(root)
    skipped = {k.path: k.reason for k in scan.skipped}
    assert all(r and "\n" not in r and len(r) < 400 for r in skipped.values()), "one-line reasons"
    in_series = {i.path: s for s in scan.series for i in s.instances}
    outcome = {"skipped": 0, "loaded": 0, "refused": 0}
    for case in cases:
        if case.must_skip:
            assert case.path in skipped, f"{case.damage}: not skipped ({case.path.name})"
            assert re.search(case.reason, skipped[case.path]) if case.reason else True, \
                f"{case.damage}: reason {skipped[case.path]!r}"
        else:
            assert case.path in skipped or case.path in in_series, f"{case.damage}: neither skipped nor found"
    for name, (path, reason) in (must_skip or {}).items():
        assert path in skipped and re.search(reason, skipped[path]), f"{name}: {skipped.get(path)!r}"
    damaged = {c.path for c in cases}
    by_desc = {s.description: s for s in scan.series}
    for desc, shape in VALID.items():  # the good series are untouched by their neighbours
        s = by_desc[desc]
        assert not s.problems and not s.warnings and not s.unreadable_files, desc
        image = load_series(s)
        assert image.array.shape == shape and image.meta["unreadable_files"] == []
    for s in scan.series:
        if s.description in VALID:
            continue
        assert {i.path for i in s.instances} <= damaged
        try:
            image = load_series(s)  # anything but a CMRError fails the test
        except CMRError as exc:
            assert str(exc) and "\n" not in str(exc)
            outcome["refused"] += 1
        else:
            assert image.array.shape[-2:] == (s.rows, s.cols)
            outcome["loaded"] += 1
    outcome["skipped"] = sum(c.path in skipped for c in cases)
    return outcome


# ---- the corpus ----------------------------------------------------------------------------
@pytest.mark.filterwarnings("error::UserWarning")  # nothing of pydicom's reaches the user: reasons do
def test_corrupted_corpus(tmp_path, donors):
    start = time.perf_counter()
    write_valid_study(tmp_path)
    corpus = build_corpus(tmp_path, np.random.default_rng(2026), donors)
    fs_skips = add_filesystem_damage(tmp_path, corpus)
    try:
        outcome = check_scan(tmp_path, corpus.cases, fs_skips)
    finally:
        for p in (tmp_path / "fs" / "locked_dir", tmp_path / "fs" / "locked.dcm"):
            p.chmod(0o700)
    assert len(corpus.cases) > 400
    assert outcome["skipped"] > 300 and outcome["loaded"] > 20 and outcome["refused"] > 5, outcome
    assert time.perf_counter() - start < 30


@pytest.mark.slow
@pytest.mark.filterwarnings("error::UserWarning")
def test_random_fuzz(tmp_path, donors):
    """1,000 seeded random damages (truncation, flips, random runs, length fields, sliced
    and duplicated spans) of the three donors, next to a valid study."""
    rng = np.random.default_rng(12345)
    write_valid_study(tmp_path)
    corpus = Corpus(tmp_path / "fuzz", donors)
    names = list(corpus.donors)
    for k in range(1000):
        name = names[k % len(names)]
        data = bytearray(corpus.donors[name])
        for _ in range(int(rng.integers(1, 4))):
            how = int(rng.integers(0, 6))
            at = int(rng.integers(0, len(data)))
            if how == 0:
                del data[at:]
            elif how == 1:
                data[at] ^= int(rng.integers(1, 256))
            elif how == 2:
                n = int(rng.integers(1, 64))
                data[at:at + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
            elif how == 3:  # a length-like field: 0, small, or huge
                data[at:at + 4] = struct.pack("<L", int(rng.choice([0, 1, 0xFFFF, 0xFFFFFFFE, 0xFFFFFFFF])))
            elif how == 4:
                del data[at:at + int(rng.integers(1, 32))]
            else:
                n = int(rng.integers(1, 64))
                data[at:at] = data[at:at + n]
            if not data:
                break
        corpus.add(name, "fuzz", bytes(data))
    outcome = check_scan(tmp_path, corpus.cases)
    assert outcome["skipped"] > 100, outcome


# ---- lost frames are said -------------------------------------------------------------------
def _molli(tmp_path: Path) -> list[Path]:
    write_valid_study(tmp_path)
    return sorted((tmp_path / "molli").iterdir())


def _molli_series(scan):
    return next(s for s in scan.series if s.description == "MOLLI native")


def test_truncated_file_costs_one_frame_and_says_so(tmp_path):
    paths = _molli(tmp_path)
    raw = paths[3].read_bytes()
    paths[3].write_bytes(raw[:-40])  # pixel data cut short
    scan = scan_folder(tmp_path)
    assert [k.path for k in scan.skipped] == [paths[3]] and "truncated" in scan.skipped[0].reason
    s = _molli_series(scan)
    assert s.n_frames == 7 and s.loadable
    assert [k.path for k in s.unreadable_files] == [paths[3]]
    assert s.warnings == [f"1 file of this series unreadable: {paths[3].name} ({scan.skipped[0].reason})"]
    assert "1 file of this series unreadable" in s.summary()
    assert s.to_dict()["unreadable_files"] == [{"path": str(paths[3]), "reason": scan.skipped[0].reason}]
    image = load_series(s)
    assert image.array.shape == (7, 16, 12)
    assert image.meta["unreadable_files"] == [{"path": str(paths[3]), "reason": scan.skipped[0].reason}]
    assert s.warnings[0] in image.meta["warnings"]
    lost_ti = MOLLI_533_ACQ[3]
    assert image.frame_values("InversionTime") == sorted(t for t in MOLLI_533_ACQ if t != lost_ti)
    for other in scan.series:  # the other series lost nothing
        if other is not s:
            assert not other.unreadable_files and load_series(other).meta["unreadable_files"] == []


def test_unknown_vr_in_sop_class_is_listed_and_tied_to_its_series(tmp_path, capsys):
    paths = _molli(tmp_path)
    raw = paths[0].read_bytes()
    paths[0].write_bytes(patch(raw, element(raw, 0x00080016)[2] + 4, b"ZZ"))
    scan = scan_folder(tmp_path)
    reason = {k.path: k.reason for k in scan.skipped}[paths[0]]
    assert "Unknown Value Representation" in reason and "(0008,0016)" in reason
    assert [k.path for k in _molli_series(scan).unreadable_files] == [paths[0]]
    from cmrlib.cli import main
    assert main(["info", str(tmp_path)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if str(paths[0]) in x)  # listed as skipped
    assert "unreadable DICOM header" in line and "(0008,0016)" in line


def test_file_without_readable_header_is_tied_by_its_series_uid(tmp_path):
    """A file whose preamble and file meta were overwritten: the UID is still in its bytes."""
    paths = _molli(tmp_path)
    raw = paths[5].read_bytes()
    paths[5].write_bytes(b"\xff" * 200 + raw[200:])
    scan = scan_folder(tmp_path)
    assert "not a DICOM file" in {k.path: k.reason for k in scan.skipped}[paths[5]]
    s = _molli_series(scan)
    assert [k.path for k in s.unreadable_files] == [paths[5]]
    assert len(s.warnings) == 1  # the lost file explains the short MOLLI: nothing suspected
    assert load_series(s).array.shape == (7, 16, 12)


def test_missing_file_is_suspected_from_numbering_and_scheme(tmp_path):
    paths = _molli(tmp_path)
    paths[3].unlink()  # InstanceNumber 4 is gone without a trace
    s = _molli_series(scan_folder(tmp_path))
    assert not s.unreadable_files and s.loadable and s.n_frames == 7
    assert any("InstanceNumber 4 missing between 1 and 8" in w for w in s.warnings), s.warnings
    assert any("MOLLI 5(3)3 expects 8 frames, found 7" in w for w in s.warnings), s.warnings
    image = load_series(s)
    assert image.array.shape == (7, 16, 12) and image.meta["unreadable_files"] == []
    assert set(s.warnings) <= set(image.meta["warnings"])
    paths[7].unlink()  # the last one as well: no gap, but the scheme is still short (of 2)
    s = _molli_series(scan_folder(tmp_path))
    assert any("2 frame(s) may be lost" in w for w in s.warnings), s.warnings


def test_complete_series_suspects_nothing(tmp_path):
    _molli(tmp_path)
    scan = scan_folder(tmp_path)
    assert all(not s.warnings and not s.unreadable_files for s in scan.series)


def _undecodable(path: Path) -> None:
    """Declare RLE compression for native pixel data: the header scans, decoding fails."""
    path.write_bytes(set_string(path.read_bytes(), 0x00020010, "1.2.840.10008.1.2.5"))


def test_file_that_fails_only_at_load_is_dropped_and_recorded(tmp_path):
    paths = _molli(tmp_path)
    _undecodable(paths[2])
    s = _molli_series(scan_folder(tmp_path))
    assert s.n_frames == 8 and not s.unreadable_files  # the header is fine
    image = load_series(s)
    assert image.array.shape == (7, 16, 12)
    [lost] = image.meta["unreadable_files"]
    assert lost["path"] == str(paths[2]) and "cannot decode pixel data" in lost["reason"]
    assert any("could not be decoded when loading" in w for w in image.meta["warnings"])


def test_file_gone_since_the_scan_is_dropped_and_recorded(tmp_path):
    paths = _molli(tmp_path)
    s = _molli_series(scan_folder(tmp_path))
    paths[6].unlink()
    image = load_series(s)
    assert image.array.shape == (7, 16, 12)
    assert image.meta["unreadable_files"] == [{"path": str(paths[6]), "reason": "cannot read since the scan "
                                                                              "(No such file or directory)"}]


def test_load_refuses_a_series_left_incomplete(tmp_path):
    """Without one frame a 2-slice cine has 5 phases at one slice and 6 at the other."""
    write_valid_study(tmp_path)
    paths = sorted((tmp_path / "cine").iterdir())
    raw = paths[4].read_bytes()
    _undecodable(paths[4])
    s = next(s for s in scan_folder(tmp_path).series if s.description == "cine SAX")
    with pytest.raises(DicomError, match=rf"{paths[4].name}: cannot decode pixel data.*5 or 6 frame\(s\) per slice"):
        load_series(s)
    paths[4].write_bytes(raw[:-10])  # lost at scan time: refused, naming it
    s = next(s for s in scan_folder(tmp_path).series if s.description == "cine SAX")
    with pytest.raises(DicomError, match=rf"different numbers of frames.*{paths[4].name}"):
        load_series(s)


def test_lost_file_of_a_split_series_is_tied_to_its_own_part(tmp_path):
    """One vendor series holding magnitude and PSIR images: a truncated PSIR file is lost by
    the PSIR part only."""
    img = Image(np.random.default_rng(5).uniform(0, 500, (3, 8, 8)).round(), (1.5, 1.5, 8.0))
    uid = "1.2.826.0.1.3680043.8.498.1"
    write_dicom_series(img, tmp_path / "a", description="LGE SAX", series_uid=uid,
                       image_type=("ORIGINAL", "PRIMARY", "M", "NONE"), extra={"InversionTime": 300.0})
    psir = write_dicom_series(img, tmp_path / "b", description="LGE SAX", series_uid=uid, series_number=1,
                              image_type=("ORIGINAL", "PRIMARY", "R", "PSIR"), rescale_intercept=-4096,
                              extra={"InversionTime": 300.0})
    psir[1].write_bytes(psir[1].read_bytes()[:-7])
    parts = {s.description: s for s in scan_folder(tmp_path).series}
    assert [k.path for k in parts["LGE SAX [PSIR]"].unreadable_files] == [psir[1]]
    assert not parts["LGE SAX [magnitude]"].unreadable_files and not parts["LGE SAX [magnitude]"].warnings
    image = load_series(parts["LGE SAX [PSIR]"])  # the 2 slices left, at their true positions
    assert image.array.shape == (2, 8, 8) and [d["path"] for d in image.meta["unreadable_files"]] == [str(psir[1])]
    assert np.allclose(image.meta["SliceLocations"], [0.0, 16.0])
    assert load_series(parts["LGE SAX [magnitude]"]).meta["unreadable_files"] == []
