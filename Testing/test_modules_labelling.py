"""CMRQuality's "Labelling" section headless on slicer-core: a small pool made with the engines from
phantom LGE slices, answered through :class:`CMRQualityLib.labelling.LabellingSession` (the panel's
Qt-free logic): scoring two images, closing and reopening (a new session) resumes at the next image;
a ranking batch as 8 PNG thumbnails, its order submitted; the database holds exactly those answers.
A missing or corrupt pool is refused with the engines' one line and nothing written. Also the
section's .ui and module file (no Slicer application needed)."""
from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import slicer  # noqa: F401

from cmrlib.errors import InputError
from cmrlib.labelling import ranking
from cmrlib.labelling.pool import Pool, StackInput
from cmrlib.mrml import image_from_volume_node, new_scene
from CMRQualityLib.labelling import (CLASS_CHOICES, IMAGE_NODE_NAME, LabellingSession, image_from_pool,
                                     open_pool)

from test_packaging_modules import ui_attribute_names

pytestmark = pytest.mark.mrml

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "CMRQuality" / "CMRQuality.py"
UI = ROOT / "CMRQuality" / "Resources" / "UI" / "CMRQuality.ui"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def stacks():
    """Two tiny phantom short-axis LGE PSIR stacks (5 slices each, 48 × 48), two subjects."""
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    out = []
    for seed in (11, 12):
        subject = sample_subject(seed, PhantomOptions(matrix=48, la=False))
        step = (subject.n_slices - 1) // 4
        psir, _ = Phantom(subject).lge([k * step for k in range(5)])
        im = psir.image
        out.append(StackInput(np.asarray(im.array, np.float32), tuple(im.spacing), tuple(im.origin),
                              np.asarray(im.direction), "lge_psir", f"phantom {seed}"))
    return out


def _scene_with_views():
    scene = new_scene()
    for name in ("Red", "Yellow"):
        view = scene.AddNewNodeByClass("vtkMRMLSliceNode")
        view.SetName(name)
        view.SetLayoutName(name)
        composite = scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
        composite.SetLayoutName(name)
    return scene


def test_scoring_two_images_then_resuming_in_a_new_session(stacks, tmp_path):
    path = tmp_path / "vas.sqlite"
    pool, _ = Pool.create(path, stacks, "vas", raters=["alice"], seed=3)
    order = [im.key for im in pool.images()]
    pool.close()
    scene = _scene_with_views()
    session = LabellingSession(path)
    assert session.mode == "vas" and session.raters() == ["alice"]
    with pytest.raises(InputError, match="unknown rater 'carol'"):
        session.start("carol")
    task = session.start("alice")
    assert task.kind == "score" and task.images == [order[0]]
    node = session.show_image(scene)
    assert node.GetName() == IMAGE_NODE_NAME and node.IsA("vtkMRMLScalarVolumeNode")
    pixels, _ = session.pool.pixels(order[0])
    np.testing.assert_array_equal(image_from_volume_node(node).array[0], pixels)
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        assert scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode").GetBackgroundVolumeID() == node.GetID()
    assert session.submit_score(20)["scored"] == 1
    assert session.task.images == [order[1]]
    assert session.show_image(scene) is node  # one node, refilled
    np.testing.assert_array_equal(image_from_volume_node(node).array[0], session.pool.pixels(order[1])[0])
    session.submit_score(80.5)
    assert "alice: 2 of 10 images scored" in session.status_text()
    session.close()
    # the panel closed and reopened: a new session resumes at the third image
    again = LabellingSession(str(path), "alice")
    assert again.task.kind == "score" and again.task.images == [order[2]]
    with pytest.raises(InputError, match="no batch to order is open"):
        again.submit_order(order[:8])
    again.close()
    with Pool(path) as check, check.reading() as db:
        rows = db.execute("SELECT i.key, r.name, s.score FROM scores s JOIN images i ON i.id = s.image_id "
                          "JOIN raters r ON r.id = s.rater_id ORDER BY s.id").fetchall()
        assert rows == [(order[0], "alice", 20.0), (order[1], "alice", 80.5)]
    assert scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 1


def test_a_ranking_batch_as_thumbnails_and_its_order(stacks, tmp_path):
    path = tmp_path / "rank.sqlite"
    Pool.create(path, stacks, "rank", seed=4)[0].close()
    session = LabellingSession(path)
    assert session.raters() == []
    session.add_rater("bob")
    task = session.start("bob")
    assert task.kind == "rank" and len(task.images) == 8
    thumbs = session.thumbnails()
    assert [k for k, _ in thumbs] == task.images and all(png.startswith(PNG) for _, png in thumbs)
    with pytest.raises(InputError):
        session.submit_score(50)  # no image to score in a ranking pool
    session.close()
    # reopened before submitting: the same batch, kept for its rater
    session = LabellingSession(path, "bob")
    assert session.task.batch == task.batch and session.task.images == task.images and session.task.resumed
    order = list(reversed(task.images))
    result = session.submit_order(order)
    assert result
    assert session.task.kind == "rank" and session.task.batch != task.batch
    assert "1 batches ranked" in session.status_text()
    session.close()
    with Pool(path) as check, check.reading() as db:
        submitted = db.execute("SELECT id FROM batches WHERE submitted IS NOT NULL").fetchall()
        assert submitted == [(task.batch,)]
        placed = db.execute("SELECT i.key FROM placements p JOIN images i ON i.id = p.image_id WHERE p.batch_id = ? "
                            "ORDER BY p.place", (task.batch,)).fetchall()
        assert [k for (k,) in placed] == order
        assert db.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM classes").fetchone()[0] == 0
    assert CLASS_CHOICES == ranking.SLICE_CLASSES


def test_a_missing_or_corrupt_pool_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(InputError, match="no such labelling pool"):
        LabellingSession(tmp_path / "missing.sqlite")
    with pytest.raises(InputError, match="choose a labelling pool"):
        open_pool("")
    assert list(tmp_path.iterdir()) == []
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database at all")
    with pytest.raises(InputError, match="not a labelling pool"):
        LabellingSession(bad, "alice")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.sqlite"]
    assert bad.read_bytes() == b"not a database at all"


def test_image_from_pool_keeps_only_the_pixels_and_spacing(stacks, tmp_path):
    pool, _ = Pool.create(tmp_path / "p.sqlite", stacks, "vas", seed=1)
    with pool:
        key = pool.images()[0].key
        image = image_from_pool(pool, key)
        assert image.array.shape == (1, 48, 48) and image.meta == {"labelling_image": key}
        assert image.origin == (0.0, 0.0, 0.0) and np.array_equal(image.direction, np.eye(3))


# ---- the panel: .ui and module file -------------------------------------------------------------
def test_ui_has_the_labelling_section():
    root = ET.parse(UI).getroot()
    widgets = {w.get("name"): w for w in root.iter("widget")}
    used = {n for n in ui_attribute_names(MODULE) if n.startswith("labelling")}
    assert {"labellingPoolPathLineEdit", "labellingRaterLineEdit", "labellingStartButton", "labellingScoreSlider",
            "labellingSubmitScoreButton", "labellingBatchList", "labellingSubmitOrderButton",
            "labellingStatusLabel"} <= used
    assert used <= set(widgets), sorted(used - set(widgets))
    section = widgets["labellingCollapsibleButton"]
    assert section.get("class") == "ctkCollapsibleButton" and section.findtext("property/string") == "Labelling"
    assert widgets["labellingPoolPathLineEdit"].get("class") == "ctkPathLineEdit"

    def props(widget):
        return {p.get("name"): p for p in widgets[widget].findall("property")}

    slider = props("labellingScoreSlider")
    assert widgets["labellingScoreSlider"].get("class") == "QSlider"
    assert slider["minimum"].findtext("number") == "0" and slider["maximum"].findtext("number") == "100"
    assert slider["orientation"].findtext("enum") == "Qt::Horizontal"
    assert "tickPosition" not in slider  # no numbers, no ticks
    batch = props("labellingBatchList")
    assert widgets["labellingBatchList"].get("class") == "QListWidget"
    assert batch["viewMode"].findtext("enum") == "QListView::IconMode"
    assert batch["dragDropMode"].findtext("enum") == "QAbstractItemView::InternalMove"


def test_module_file_has_the_labelling_parameters_handlers_and_self_test():
    tree = ast.parse(MODULE.read_text())
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    params = {n.target.id: n for n in classes["CMRQualityParameterNode"].body if isinstance(n, ast.AnnAssign)}
    assert {"labellingPool", "labellingRater"} <= set(params)
    widget = {f.name for f in classes["CMRQualityWidget"].body if isinstance(f, ast.FunctionDef)}
    assert {"onLabellingStart", "onLabellingSubmitScore", "onLabellingSubmitOrder", "showLabellingTask",
            "labellingOrder"} <= widget
    tests = {f.name for f in classes["CMRQualityTest"].body if isinstance(f, ast.FunctionDef)}
    assert {"test_CMRQualityLabelling", "test_CMRQualityLabellingPanel"} <= tests
    # what the widget-level self-test drives exists on the widget
    assert {"onLabellingAddRater", "onLabellingPoolChanged", "closeLabelling"} <= widget
