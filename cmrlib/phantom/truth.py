"""Ground truth of a phantom study found beside its DICOM (``truth.json``), e.g. a series' label map."""
from __future__ import annotations

import json
from pathlib import Path

from ..io import SeriesInfo


def find_phantom_mask(series: SeriesInfo, folder: Path) -> Path | None:
    """The ground-truth label map of a phantom IRW series, if ``folder`` is (in) a phantom study.

    A phantom subject folder holds ``truth.json`` whose ``series`` entries name their
    description, series number and ``truth_files``; the labels file holds 1 = myocardium.
    """
    for root in (folder, *folder.parents[:2]):
        manifest = root / "truth.json"
        if not manifest.is_file():
            continue
        try:
            entries = json.loads(manifest.read_text()).get("series", {})
        except (OSError, ValueError):
            return None
        for entry in entries.values():
            if entry.get("description") == series.description and entry.get("series_number") == series.series_number:
                labels = (entry.get("truth_files") or {}).get("labels")
                return root / labels if labels and (root / labels).is_file() else None
        return None
    return None
