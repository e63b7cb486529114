"""The modules' help texts and capabilities lines come from the capability registry and say
exactly what each panel does in this version (no Slicer needed)."""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("CMRQuality", "CMRMotion", "CMRStressT1", "CMRSegmentation")
for _p in (ROOT, *(ROOT / m for m in MODULES)):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from cmrlib.capabilities import PLANNED, capabilities, for_panel  # noqa: E402

from CMRCommonLib import help_text  # noqa: E402


def _planned(module: str) -> list[str]:
    return [title for title, panel in PLANNED.values() if panel == module]


@pytest.mark.parametrize("module", MODULES)
def test_help_names_every_installed_and_planned_capability_of_the_panel(module):
    text = help_text.help_html(module)
    assert help_text.STUDY_LOADER_HELP in text
    for cap in for_panel(module):
        assert (cap.panel_help or cap.title) in text
    planned = _planned(module)
    if planned:
        tail = text.split("Planned for a later version (not in this one): ", 1)[1]
        assert all(title in tail for title in planned)
    else:
        assert "Planned" not in text


def test_stress_help_is_its_record_panel_help():
    (stress,) = for_panel("CMRStressT1")
    text = help_text.help_html("CMRStressT1")
    assert stress.command == "stress" and stress.panel_help in text and "only the study loader" not in text
    assert "Stress T1 reactivity" in stress.panel_help and "Apply" in stress.panel_help
    assert help_text.PHANTOM_NOTE in text  # the dT1 registration weights are phantom-trained
    assert "Planned" not in text
    assert help_text.summary_text("CMRStressT1").splitlines() == [help_text.STUDY_LOADER_SUMMARY,
                                                                   f"In this panel: {stress.title}."]


def test_quality_help_is_the_la_quality_labelling_sample_data_and_the_quality_records():
    la, label, phantom, quality = for_panel("CMRQuality")
    assert la.command == "la-quality" and la.step is not None and "<i>Assess</i>" in la.panel_help
    assert label.command == "label" and label.step is None and "cmr label create" in label.panel_help
    assert phantom.command == "phantom" and phantom.step is None and "Sample data" in phantom.panel_help
    assert quality.command == "quality" and "Watch for new LGE" in quality.panel_help
    text = help_text.help_html("CMRQuality")
    assert la.panel_help in text and label.panel_help in text and phantom.panel_help in text
    assert quality.panel_help in text
    assert "None of this module's processing steps is in this version yet" not in text
    assert _planned("CMRQuality") == [] and "Planned" not in text  # LA quality, the last planned one, has landed
    assert help_text.PHANTOM_NOTE in text  # the classifiers' weights are phantom-trained


def test_segmentation_help_is_the_landmarks_scar_and_qcd_records():
    landmarks, scar, qcd = for_panel("CMRSegmentation")
    text = help_text.help_html("CMRSegmentation")
    assert landmarks.command == "landmarks" and landmarks.panel_help in text and "only the study loader" not in text
    assert "moving a point recomputes" in landmarks.panel_help and "Live update" in landmarks.panel_help
    assert qcd.command == "segment" and qcd.panel_help in text and "QCD segmentation" in qcd.panel_help
    assert scar.command == "scar" and scar.panel_help in text and "<b>Scar</b>" in scar.panel_help
    assert _planned("CMRSegmentation") == [] and "Planned" not in text  # scar, the last planned one, has landed
    assert help_text.PHANTOM_NOTE in text  # the QCD, landmark and scar weights are phantom-trained
    assert help_text.summary_text("CMRSegmentation").splitlines()[1] == \
        f"In this panel: {landmarks.title}; {scar.title}; {qcd.title}."


def test_motion_help_is_its_record_panel_help():
    (motion,) = for_panel("CMRMotion")
    text = help_text.help_html("CMRMotion")
    assert motion.panel_help in text and "only the study loader" not in text
    assert help_text.PHANTOM_NOTE in text  # MOCOnet weights are phantom-trained
    assert help_text.summary_text("CMRMotion").splitlines()[1] == f"In this panel: {motion.title}."
    contents = help_text.panel_contents("CMRMotion")
    assert contents.in_panel == [motion] and contents.cli_only == [] and contents.planned == []


def test_cli_only_capabilities(monkeypatch):
    """A capability without panel_help is listed as command-line only."""
    import dataclasses

    import cmrlib.capabilities as registry

    motion = registry.capability("motion")
    cli_only = dataclasses.replace(motion, command="motion-x", title="Another T1 step", panel_help="")
    monkeypatch.setattr(registry, "for_panel", lambda panel: [motion, cli_only] if panel == "CMRMotion" else [])
    text = help_text.help_html("CMRMotion")
    assert text.index(help_text.STUDY_LOADER_HELP) < text.index(motion.panel_help)
    assert "Installed, run from the <code>cmr</code> command line for now: Another T1 step (<code>cmr motion-x</code>)." in text
    assert "Installed, run from the command line for now: Another T1 step (cmr motion-x)." in \
        help_text.summary_text("CMRMotion")


def test_every_capability_and_planned_entry_has_a_panel_of_this_extension():
    panels = {c.panel for c in capabilities()} | {panel for _, panel in PLANNED.values()}
    assert panels <= set(MODULES)


def test_unavailable_help_names_the_error():
    text = help_text.unavailable_help("CMRMotion", ModuleNotFoundError("No module named 'numpy'"))
    assert "ModuleNotFoundError: No module named 'numpy'" in text and help_text.STUDY_LOADER_HELP in text


def _docstrings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    return [ast.get_docstring(n) or "" for n in nodes]


def test_slicer_side_cites_no_missing_file():
    """Docstrings of the module folders and CMRCommonLib cite only repository files that exist
    (method cards as docs/methods/<card>.md), and each Lib logic names its method cards."""
    files = [p for m in (*MODULES, "CMRCommonLib") for p in (ROOT / m).rglob("*.py") if "__pycache__" not in p.parts]
    cited = re.compile(r"(?<![\w/.])((?:docs|methods|Resources|cmrlib|CMR\w+)/[\w./-]+\.(?:md|py|ui|txt|json))")
    missing = []
    for path in files:
        for doc in _docstrings(path):
            for ref in cited.findall(doc):
                candidates = [ROOT / ref, path.parent / ref, *(ROOT / m / ref for m in MODULES)]
                if "<" not in ref and not any(c.exists() for c in candidates):
                    missing.append(f"{path.relative_to(ROOT)}: {ref}")
    assert not missing, missing
    cards = {"CMRMotion": ["moconet"], "CMRQuality": ["lge-certainty", "slice-level", "la-quality"],
             "CMRStressT1": ["dt1"], "CMRSegmentation": ["qcd", "landmarks", "scar-fusion"]}
    for module, names in cards.items():
        doc = ast.get_docstring(ast.parse((ROOT / module / f"{module}Lib" / "logic.py").read_text()))
        assert all(f"docs/methods/{n}.md" in " ".join(doc.split()) for n in names), (module, doc)
