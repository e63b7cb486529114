"""report.html from `cmr demo`: the numbers shown are those in the results, every image exists,
nothing is fetched from outside, and skipped steps and provenance are on the page."""
from __future__ import annotations

import contextlib
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cmrlib.cli import main


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: list[tuple[dict, str]] = []  # (attributes of a finding's cell, its text)
        self.images: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self._cell: dict | None = None
        self._buf: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and a.get("class") == "value" and "data-step" in a:
            self._cell, self._buf = a, []
        if tag == "img":
            self.images.append(a["src"])
        for key in ("href", "src"):
            if key in a and tag != "img":
                self.links.append(a[key])

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.values.append((self._cell, "".join(self._buf).strip()))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._buf.append(data)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["demo", "--out", str(out), "--quiet"]) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def demo(demo_run):
    return demo_run[0] / "results"


def test_demo_prints_the_report_path(demo_run):
    """`cmr demo` ends with the path of a report that exists; no temporary folder is left."""
    out, printed = demo_run
    last = printed.strip().splitlines()[-1]
    assert last == f"report: {out / 'results' / 'report.html'}" and Path(last.split(": ", 1)[1]).is_file()
    assert not list(out.glob(".*partial*")) and not list((out / "results").glob(".*partial*"))


def test_numbers_on_the_page_are_the_results(demo):
    page = _Page()
    page.feed((demo / "report.html").read_text())
    run = json.loads((demo / "run.json").read_text())
    series = run["steps"]["motion"]["result"]["series"]
    assert len(series) == 6
    shown = [(cell["data-step"], text) for cell, text in page.values if cell["data-step"] == "motion"]
    expected = []
    for r in series:
        expected.append(("motion", f"{r['t1_myocardium_ms']:.0f}"))
        expected.append(("motion", f"{r['r2_myocardium_mean']:.3f}"))
        if r.get("heart_rate_bpm") is not None:  # issue #11: heart rate, ShMOLLI samples, scanner map
            expected.append(("motion", f"{r['heart_rate_bpm']:.0f}"))
        if r.get("conditional_reconstruction"):
            used = r["conditional_reconstruction"]["pixels_by_samples"]
            expected.append(("motion", ", ".join(f"{k}: {v}" for k, v in sorted(used.items()))))
        for m in r.get("scanner_t1_maps", []):
            if m.get("median_difference_ms") is not None:
                expected.append(("motion", f"{m['median_difference_ms']:+.0f}"))
        if r.get("r2_myocardium_mean_before_correction") is not None:
            expected.append(("motion", f"{r['r2_myocardium_mean_before_correction']:.3f}"))
    assert shown == expected
    # myocardial T1 of the native MOLLI slices is in the native range, as the result says
    assert all(600 < r["t1_myocardium_ms"] < 1400 for r in series)
    # and equal to the result.json beside the maps
    for r in series:
        on_disk = json.loads((demo / r["out"] / "result.json").read_text())
        assert on_disk["t1_myocardium_ms"] == r["t1_myocardium_ms"]
    # the landmarks step's numbers are its results too: slices with landmarks, T1 per AHA segment
    landmarks = [text for cell, text in page.values if cell["data-step"] == "landmarks"]
    expected = []
    for r in run["steps"]["landmarks"]["result"]["series"]:
        expected.append(f"{r['n_with_landmarks']} / {r['n_slices']}")
        stats = [x for x in r["segment_stats"] if x["median"] is not None]
        if stats and r["kind"] == "t1map":
            expected.append(", ".join(f"{x['segment']}: {x['median']:.0f}" for x in stats))
    assert landmarks == expected and any("," in t for t in landmarks)


def test_every_image_exists_and_nothing_is_fetched(demo):
    page = _Page()
    page.feed((demo / "report.html").read_text())
    run = json.loads((demo / "run.json").read_text())
    landmark_figures = sum(len(r["figures"]) for r in run["steps"]["landmarks"]["result"]["series"])
    assert landmark_figures >= 2  # an overlay per series, a bull's-eye per T1 map with segments
    qcd_figures = sum(len(r["figures"]) for r in run["steps"]["segment"]["result"]["series"])
    assert qcd_figures >= 2  # contours per LGE / VNE / T1-map series
    stress_figures = sum(len(r["figures"]) for r in run["steps"]["stress"]["result"]["pairs"])
    assert stress_figures >= 3  # dT1 figure per rest / stress pair (basal, mid, apical), bull's-eyes with segments
    scar_figures = sum(len(r["figures"]) for r in run["steps"]["scar"]["result"]["series"])
    assert scar_figures >= 2  # scar over the LGE, the %scar bull's-eye (the landmarks step's AHA segments)
    quality_figures = sum(len(r["figures"]) for r in run["steps"]["quality"]["result"]["series"])
    assert quality_figures == 2  # the slice-level / certainty montage of the PSIR and the magnitude stack
    la_figures = sum(len(r["figures"]) for r in run["steps"]["la-quality"]["result"]["series"])
    assert la_figures == 2  # the LA 3-D LGE's saliency and its slice montage
    # + T1 map and R² before/after of six IRW series
    assert len(page.images) == 12 + landmark_figures + qcd_figures + stress_figures + scar_figures + quality_figures \
        + la_figures
    for src in page.images:
        path = demo / src
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", src
    assert not [u for u in page.images + page.links if "://" in u]


def test_page_names_weights_skips_and_provenance(demo):
    text = (demo / "report.html").read_text()
    assert "phantom-trained demonstration weights" in text and "moconet-compact" in text
    # every planned capability has landed: the report has no "Not in this version" line left
    from cmrlib.capabilities import PLANNED
    assert ("Not in this version" in text) == bool(PLANNED) and "SlicerCMR 0." in text
    assert "Provenance" in text and "device" in text
    run = json.loads((demo / "run.json").read_text())
    assert sorted(m["name"] for m in run["models"]) == ["dt1-swin-compact", "la-detector-compact",
                                                       "la-quality-compact", "landmarks-compact",
                                                       "landmarks-presence-compact", "lge-certainty-compact", "moconet-compact", "qcd-compact",
                                                       "scar-fusion-compact", "scar-lge-compact", "slice-level-compact"]
    assert "Stress T1 reactivity, dT1" in text and "dT1 per slice" in text
    assert "Left-atrial 3D LGE quality (CMRQuality)" in text and "slices voting diagnostic" in text
    assert "QC per slice" in text and "slices failing QC" in text
