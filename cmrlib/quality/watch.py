"""`cmr quality watch FOLDER`: classify each new LGE series as its files arrive — the way a
scanner-side workstation receiving DICOM (e.g. a storescp folder) would use the classifiers.

Polling, debounced, never reading a half-written file (:class:`SeriesWatcher`):

* every ``interval_s`` the folder tree is listed and each file's (size, mtime) compared with the
  last poll; a file is **stable** once unchanged for ``settle_s`` seconds;
* stable files are scanned (headers only, :func:`cmrlib.io.scan_files`) and grouped into series;
* a series is **ready** when all its files are stable and no file still arriving could belong to
  it: a file in flight whose header can already be read names its series and blocks only that
  one; one whose header cannot be read yet blocks every series of its folder;
* a ready LGE series not yet classified — or one that received more files since — is loaded,
  classified (:func:`cmrlib.quality.pipeline.classify_stack`, slice level then certainty) and
  its verdict printed and appended to the log (JSON lines, with the latency from the series'
  last file to the verdict); with ``out`` its result folder is written too. Non-LGE series are
  logged once as skipped, with the reason.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .pipeline import LGE_KINDS, WRONG_KINDS


@dataclass
class Verdict:
    series: str
    series_uid: str
    kind: str
    n_files: int
    sentence: str
    flagged: list[int]
    non_lv: list[int]
    latency_s: float  # last file's arrival (mtime) to the verdict
    seconds: float  # classification alone
    out: str | None = None
    updated: bool = False  # the series had been classified with fewer files
    skipped: str = ""  # why a non-LGE series was not classified
    notes: list[str] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)  # name, version, notice ("phantom-trained …")

    def line(self) -> str:
        if self.skipped:
            return f"{self.series}: skipped ({self.skipped})"
        flag = "EQUIVOCAL " if self.flagged else ""
        upd = " (updated: more files)" if self.updated else ""
        return f"{flag}{self.series}{upd}: {self.sentence} [{self.latency_s:.1f} s after its last file]"

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict
        return asdict(self)


def _series_uid_of(path: Path) -> str | None:
    """SeriesInstanceUID from the start of a file that may still be being written (None: not yet readable)."""
    import pydicom
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"], force=True)
        uid = getattr(ds, "SeriesInstanceUID", None)
        return str(uid) if uid else None
    except Exception:  # half-written or not DICOM: unknown yet
        return None


class SeriesWatcher:
    """The polling state of one watched folder (module docstring). ``clock`` is injectable for tests."""

    def __init__(self, folder: str | Path, *, settle_s: float = 2.0, out: str | Path | None = None,
                 threshold: float | None = None, networks: dict | None = None, device=None,
                 clock: Callable[[], float] = time.time) -> None:
        from ..errors import InputError
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"watch: {self.folder} is not a folder")
        self.settle_s, self.threshold, self.device = float(settle_s), threshold, device
        self.out = Path(out) if out else None
        self.networks = networks
        self.clock = clock
        self._seen: dict[Path, tuple[int, int]] = {}
        self._changed: dict[Path, float] = {}
        self._done: dict[str, int] = {}  # series key -> files when classified / skipped
        self._stable_scanned: frozenset = frozenset()

    def _list(self) -> dict[Path, tuple[int, int]]:
        found = {}
        for dirpath, _, names in os.walk(self.folder):
            for name in names:
                p = Path(dirpath) / name
                try:
                    st = p.stat()
                except OSError:
                    continue  # removed or renamed while listing
                found[p] = (st.st_size, st.st_mtime_ns)
        return found

    def poll(self) -> list[Verdict]:
        """One poll: the verdicts of the series that became ready."""
        from ..errors import CMRError
        from ..io import scan_files
        now = self.clock()
        listing = self._list()
        for p, sig in listing.items():
            if self._seen.get(p) != sig:
                self._changed[p] = now
        for p in list(self._changed):
            if p not in listing:
                self._changed.pop(p)
        self._seen = listing
        stable = sorted(p for p, t in self._changed.items() if now - t >= self.settle_s and listing[p][0] > 0)
        in_flight = [p for p in listing if p not in set(stable)]
        if not stable or (frozenset(stable) == self._stable_scanned and not in_flight):
            return []
        try:
            scan = scan_files(stable, self.folder)
        except CMRError:  # nothing usable yet (no DICOM image among the stable files)
            return []
        self._stable_scanned = frozenset(stable)
        blocked_uids, blocked_dirs = set(), set()
        for p in in_flight:
            uid = _series_uid_of(p)
            if uid:
                blocked_uids.add(uid)
            else:
                blocked_dirs.add(p.parent)
        verdicts = []
        for s in scan.series:
            files = sorted({i.path for i in s.instances})
            key = f"{s.series_uid}|{s.description}"
            if s.series_uid in blocked_uids or any(Path(f).parent in blocked_dirs for f in files):
                continue
            if self._done.get(key, 0) >= len(files):
                continue
            updated = key in self._done
            self._done[key] = len(files)
            last = max(self._seen[Path(f)][1] for f in files) / 1e9
            if s.kind not in LGE_KINDS:
                why = WRONG_KINDS.get(s.kind, f"kind {s.kind}")
                verdicts.append(Verdict(s.description, s.series_uid, s.kind, len(files), "", [], [], now - last, 0.0,
                                        skipped=f"{why}, not LGE"))
                continue
            verdicts.append(self._classify(s, len(files), last, updated))
        return verdicts

    def _classify(self, series, n_files: int, last_mtime: float, updated: bool) -> Verdict:
        from ..atomic import staged_folder
        from ..errors import CMRError
        from ..io import load_series
        from .outputs import write_result
        from .pipeline import classify_stack
        try:
            img = load_series(series)
            result = classify_stack(img, series=series.description, kind=series.kind, threshold=self.threshold,
                                    networks=self.networks, device=self.device)
        except CMRError as exc:
            return Verdict(series.description, series.series_uid, series.kind, n_files, "", [], [],
                           self.clock() - last_mtime, 0.0, skipped=f"could not be classified: {exc}")
        out = None
        if self.out is not None:
            slug = re.sub(r"[^A-Za-z0-9]+", "_", f"{series.series_number or 0:03d}_{series.description}").strip("_")
            folder = self.out / slug
            with staged_folder(folder) as stage:
                write_result(result, stage)
            out = str(folder)
        return Verdict(series.description, series.series_uid, series.kind, n_files, result.sentence, result.flagged,
                       result.non_lv, self.clock() - last_mtime, result.seconds, out, updated, notes=result.notes,
                       models=result.models)


def preload_networks(device=None) -> dict:
    """The installed slice-level and certainty networks as :func:`classify_stack` takes them."""
    import torch

    from ..device import pick_device
    from ..models.zoo import load_installed
    from .pipeline import CERTAINTY_MODEL, SLICE_LEVEL_MODEL
    dev = device if isinstance(device, torch.device) else pick_device(device)
    return {"slice-level": load_installed(SLICE_LEVEL_MODEL, dev, "slice-level"),
            "certainty": load_installed(CERTAINTY_MODEL, dev, "lge-certainty")}


def watch(folder: str | Path, *, settle_s: float = 2.0, interval_s: float = 0.5, out: str | Path | None = None,
          log: str | Path | None = None, threshold: float | None = None, max_seconds: float | None = None,
          max_verdicts: int | None = None, device=None, echo: Callable[[str], None] | None = None) -> list[Verdict]:
    """Poll ``folder`` until interrupted (Ctrl-C), ``max_seconds`` or ``max_verdicts``; returns the verdicts."""
    from ..atomic import check_output_folder
    if echo is None:
        def echo(line: str) -> None:  # flushed: a verdict must reach a pipe or a log viewer at once
            print(line, flush=True)
    if out is not None:
        check_output_folder(folder, out)
    # the networks are loaded before the first series arrives: a verdict then costs the settle
    # time and the classification, not torch's start-up and the weights' checksum
    watcher = SeriesWatcher(folder, settle_s=settle_s, out=out, threshold=threshold, device=device)
    watcher.networks = preload_networks(device)
    log_path = Path(log) if log else None
    start = time.time()
    verdicts: list[Verdict] = []
    echo(f"watching {folder} (new files settle for {settle_s:g} s; Ctrl-C stops)")  # ready: networks loaded
    told: set[str] = set()
    try:
        while True:
            for v in watcher.poll():
                verdicts.append(v)
                for m in v.models:  # once per model: what the verdicts rest on
                    if m["name"] not in told:
                        told.add(m["name"])
                        echo(f"  {m['name']} {m['version']}: {m['notice']}")
                echo(v.line())
                if log_path is not None:
                    with log_path.open("a") as fh:
                        fh.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **v.to_dict()}) + "\n")
            if max_verdicts is not None and len(verdicts) >= max_verdicts:
                break
            if max_seconds is not None and time.time() - start >= max_seconds:
                break
            time.sleep(interval_s)
    except KeyboardInterrupt:
        echo("stopped")
    return verdicts
