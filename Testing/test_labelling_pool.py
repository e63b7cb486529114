"""The labelling pool: made from DICOM folders and image files, anonymised, shuffled; bad files
refused with one line and left alone; backups; several raters at once (threads and processes)
without a lost or doubled answer."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cmrlib.errors import InputError
from cmrlib.labelling import pool as pool_module
from cmrlib.labelling import ranking, vas
from cmrlib.labelling.pool import Pool, StackInput, backup_path
from cmrlib.labelling.sources import read_sources
from cmrlib.labelling.tasks import answer, next_task

ROOT = Path(__file__).resolve().parents[1]


def make_stacks(n_stacks: int = 3, n_slices: int = 4, seed: int = 0, shape=(20, 16)) -> list[StackInput]:
    """Small random stacks, one subject each; slice k of stack i holds the value 1000 i + k at [0, 0]."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_stacks):
        arr = rng.normal(100.0, 10.0, (n_slices, *shape)).astype(np.float32)
        arr[:, 0, 0] = 1000.0 * i + np.arange(n_slices)
        out.append(StackInput(arr, (1.5, 1.4, 8.0), (1.0, 2.0, 3.0 + i), np.eye(3), "lge_psir", f"patient {i}"))
    return out


def make_pool(tmp_path: Path, mode: str = "vas", raters=("alice", "bob"), **kw) -> Pool:
    pool, _ = Pool.create(tmp_path / f"{mode}.sqlite", make_stacks(**kw), mode, raters=raters, seed=5)
    return pool


def test_a_pool_holds_every_slice_shuffled_across_subjects(tmp_path):
    stacks = make_stacks(4, 5)
    pool, keys = Pool.create(tmp_path / "p.sqlite", stacks, "rank", raters=["a"], seed=1)
    with pool:
        images = pool.images()
        assert len(images) == 20 and sorted(im.position for im in images) == list(range(20))
        # consecutive images in the pool's order come from different stacks more often than not
        assert sum(a.stack != b.stack for a, b in zip(images, images[1:])) >= 12
        assert all(im.rating == 1500.0 and im.volatility == 1.0 and im.views == 0 for im in images)
        assert len({im.key for im in images}) == 20 and [k[1] for k in keys] == [s["key"] for s in pool.stacks()]
        for im in images:  # each slice's pixels, exactly
            pixels, spacing = pool.pixels(im.key)
            i = [s["key"] for s in pool.stacks()].index(im.stack)
            np.testing.assert_array_equal(pixels, stacks[i].array[im.slice])
            assert spacing == (1.5, 1.4)
        assert pool.mode == "rank" and pool.raters().keys() == {"a"}
        assert sqlite3.connect(pool.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_dicom_study_gives_its_short_axis_lge_and_names_what_was_left_out(study_dir, tmp_path):
    found, notes = read_sources([study_dir])
    assert [(f.kind, f.stack.array.shape) for f in found] == [("lge_psir", (3, 24, 20))]
    text = "\n".join(notes)
    assert "'cine SAX': cine, multi-frame" in text and "IRW" in text
    assert "'LGE SAX MAG': the magnitude image of a study that has PSIR" in text
    assert "'ShMOLLI_192i_T1MAP': T1 map" in text and "--any-series takes it" in text
    found, notes = read_sources([study_dir], any_kind=True)
    assert sorted(f.kind for f in found) == ["lge_psir", "t1map"]
    assert any(n.startswith("warning:") and "T1 map, not short-axis LGE" in n for n in notes)
    assert all("cine" != f.kind for f in found)  # multi-frame series never


def test_image_files_beside_dicom_are_not_read_and_label_maps_never(study_dir, tmp_path):
    from cmrlib import Image
    from cmrlib.io import write_image
    rng = np.random.default_rng(0)
    write_image(Image(rng.normal(0, 1, (3, 8, 8)), meta={"kind": "lge_psir"}), study_dir / "derived" / "map.nrrd")
    found, notes = read_sources([study_dir])
    assert [f.kind for f in found] == ["lge_psir"] and found[0].source == str(study_dir)
    assert f"{study_dir}: 1 image file(s) beside its DICOM series not read (name them to include them)" in notes
    files = tmp_path / "nrrd"
    write_image(Image(rng.normal(0, 1, (3, 8, 8))), files / "a.nrrd")
    write_image(Image(np.zeros((3, 8, 8), np.uint8), meta={"labels": {"1": "myocardium"}}), files / "a_labels.nrrd")
    write_image(Image(np.zeros((3, 8, 8), np.uint8)), files / "b.seg.nrrd")
    found, notes = read_sources([files])  # a folder of image files
    assert [Path(f.source).name for f in found] == ["a.nrrd"]
    assert sum("a label map, not an image" in n for n in notes) == 2
    assert "1 image file(s) carry no DICOM classification: taken as short-axis stacks unchecked" in notes


def test_a_folder_without_short_axis_lge_is_refused_with_what_it_holds(study_dir, tmp_path):
    import shutil
    only = tmp_path / "no_lge"
    for name in ("cine", "t1map"):
        shutil.copytree(study_dir / name, only / name)
    with pytest.raises(InputError, match=r"no short-axis stack to label in .*cine.*T1 map") as err:
        read_sources([only])
    assert "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no DICOM image found"):
        read_sources([tmp_path / "empty"])
    with pytest.raises(InputError, match="no such file or folder"):
        read_sources([tmp_path / "missing"])


def test_nothing_identifying_reaches_the_pool(study_dir, tmp_path):
    """Patient name and ID, the series description and the source path are not in the file."""
    from cmrlib.io import StudyInfo, write_dicom_series
    from cmrlib import Image
    folder = tmp_path / "Doe_John_12345"
    img = Image(np.random.default_rng(0).uniform(0, 900, (3, 16, 16)).round(), (1.5, 1.5, 8.0))
    write_dicom_series(img, folder, description="LGE PSIR SAX Doe", study=StudyInfo(
        patient_name="Doe^John", patient_id="PID-12345"), image_type=("ORIGINAL", "PRIMARY", "M", "PSIR"),
        extra={"InversionTime": 300.0})
    found, _ = read_sources([folder])
    assert found and found[0].stack.subject == "PID-12345"  # grouping only, in memory
    pool, _ = Pool.create(tmp_path / "p.sqlite", [f.stack for f in found], "vas", raters=["r"])
    pool.close()
    data = b"".join(p.read_bytes() for p in tmp_path.glob("p.sqlite*"))
    for secret in (b"Doe", b"John", b"12345", b"PID", str(folder).encode()):
        assert secret not in data


def test_create_never_overwrites_and_refuses_nothing_to_label(tmp_path):
    pool = make_pool(tmp_path)
    pool.close()
    before = pool.path.read_bytes()
    with pytest.raises(InputError, match="exists: a pool is never overwritten"):
        Pool.create(pool.path, make_stacks(), "vas")
    assert pool.path.read_bytes() == before
    empty = StackInput(np.zeros((0, 4, 4), np.float32), (1, 1, 1), (0, 0, 0), np.eye(3), None, "x")
    with pytest.raises(InputError, match="the pool would be empty"):
        Pool.create(tmp_path / "e.sqlite", [empty], "vas")
    with pytest.raises(InputError, match="at least 2 slices"):
        Pool.create(tmp_path / "one.sqlite", make_stacks(1, 1), "rank")
    with pytest.raises(InputError, match="mode must be one of vas, rank"):
        Pool.create(tmp_path / "m.sqlite", make_stacks(), "stars")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vas.sqlite"]  # no partial file left


def test_creation_without_hard_links_and_in_an_unwritable_folder(tmp_path, monkeypatch):
    import os

    def no_links(src, dst):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    pool, _ = Pool.create(tmp_path / "p.sqlite", make_stacks(), "vas", raters=["a"])
    assert len(pool.images()) == 12
    pool.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.sqlite"]  # no partial file left

    def unwritable(*args, **kwargs):  # what SQLite says in a folder this account cannot write
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(pool_module.sqlite3, "connect", unwritable)
    with pytest.raises(InputError, match=r"cannot write the pool .*q\.sqlite \(unable to open database file\)"):
        Pool.create(tmp_path / "q.sqlite", make_stacks(), "vas")


@pytest.mark.parametrize("content, message", [
    (b"", "not an SQLite database"),
    (b"image,slice,score\n", "not an SQLite database"),
    (None, "an SQLite database but not a labelling pool"),
])
def test_a_file_that_is_no_pool_is_named_and_left_alone(tmp_path, content, message):
    path = tmp_path / "x.sqlite"
    if content is None:
        sqlite3.connect(path).execute("CREATE TABLE t (a)").connection.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(InputError, match=message):
        Pool(path)
    assert path.read_bytes() == before
    with pytest.raises(InputError, match="no such labelling pool"):
        Pool(tmp_path / "missing.sqlite")


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(page, len(data), page):  # every page after the header's: garbage
        data[start:start + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


def test_a_corrupt_pool_is_refused_and_never_replaces_the_backup(tmp_path):
    pool = make_pool(tmp_path)
    for im in pool.images()[:3]:
        vas.submit_score(pool, "alice", im.key, 40.0)
    bak = pool.backup()
    pool.close()
    good = bak.read_bytes()
    _corrupt(pool.path)
    bad = pool.path.read_bytes()
    with pytest.raises(InputError, match=r"is corrupt or unreadable .*nothing was changed; the last good copy is "
                                         r".*vas\.sqlite\.bak") as err:
        p = Pool(pool.path)  # opening may already fail; else the integrity check of the backup does
        p.backup()
    assert "\n" not in str(err.value)
    assert pool.path.read_bytes() == bad and bak.read_bytes() == good
    restored = Pool(bak, backup=False)  # the backup is a whole pool with the answers
    assert sum(len(s) for s in vas.latest_scores(restored).values()) == 3
    restored.close()


def test_backups_are_refreshed_when_old_and_opened_pools_make_one(tmp_path, monkeypatch):
    pool = make_pool(tmp_path)
    key = pool.images()[0].key
    vas.submit_score(pool, "alice", key, 10.0)
    pool.close()
    bak = backup_path(pool.path)
    assert not bak.exists()
    Pool(pool.path).close()  # opened with an answer and no backup: one is made
    assert bak.is_file()
    first = bak.stat().st_mtime_ns
    p = Pool(pool.path)  # a fresh backup is not made again at once
    vas.submit_score(p, "bob", key, 20.0)
    p.close()
    assert bak.stat().st_mtime_ns == first
    monkeypatch.setattr(pool_module, "BACKUP_EVERY_S", 0.0)
    Pool(pool.path).close()
    assert len(vas.latest_scores(Pool(bak, backup=False))[key]) == 2


def test_a_locked_pool_says_so_and_the_answer_is_saved_when_resubmitted(tmp_path, monkeypatch):
    monkeypatch.setattr(pool_module, "BUSY_TIMEOUT_S", 0.2)
    pool = make_pool(tmp_path)
    key = pool.images()[0].key
    other = sqlite3.connect(pool.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    with pytest.raises(InputError, match=r"is locked by another program \(waited 0.2 s\); the answer was not saved; "
                                         "submit it again"):
        vas.submit_score(pool, "alice", key, 55.0)
    assert vas.next_image(pool, "alice") == key  # reading goes on while locked (WAL)
    other.execute("ROLLBACK")
    other.close()
    assert vas.submit_score(pool, "alice", key, 55.0)["score"] == 55.0
    assert vas.latest_scores(pool) == {key: {"alice": 55.0}}
    readonly = pool._error(sqlite3.OperationalError("attempt to write a readonly database"), True)
    assert "is read-only here; nothing was changed" in str(readonly)  # not "corrupt"


def test_unknown_raters_and_bad_names_are_refused(tmp_path):
    pool = make_pool(tmp_path)
    with pytest.raises(InputError, match=r"unknown rater 'carol' in .* \(raters: alice, bob\); add one with "
                                         r"`cmr label raters .* --add NAME`"):
        next_task(pool, "carol")
    with pytest.raises(InputError, match="unknown rater 'carol'"):
        answer(pool, "carol", image=pool.images()[0].key, score=3)
    with pytest.raises(InputError, match="already registered"):
        pool.add_raters(["bob"])
    with pytest.raises(InputError, match="without commas"):
        pool.add_raters(["a,b"])
    tokens = pool.add_raters(["carol"])
    assert pool.rater_for_token(tokens["carol"]) == "carol" and pool.rater_for_token("nope") is None
    assert next_task(pool, "carol").kind == "score"
    assert vas.latest_scores(pool) == {}  # nothing was recorded by the refusals


def test_four_threads_rank_one_pool_without_a_lost_or_doubled_answer(tmp_path):
    """Concurrent raters: every batch submitted once, views add up, and the stored ratings equal
    those replayed from the placements in commit order (no update was lost)."""
    from cmrlib.labelling.simulate import SimulatedRater
    names = [f"r{i}" for i in range(4)]
    pool = make_pool(tmp_path, "rank", raters=names, n_stacks=4, n_slices=12)
    levels = {im.key: im.slice / 11.0 for im in pool.images()}
    errors: list[BaseException] = []
    answered: list[tuple[str, int]] = []
    start = threading.Barrier(len(names))

    def work(name: str, seed: int) -> None:
        rater = SimulatedRater(name, seed=seed)
        start.wait()
        try:
            while True:
                time.sleep(0.01)  # a rater looks before answering: the threads interleave
                task = next_task(pool, name)
                if task.kind != "rank":
                    return
                answer(pool, name, **rater.answer(task, levels))
                answered.append((name, task.batch))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    run_in_threads(work, names)
    assert not errors, errors
    assert len(answered) == len({b for _, b in answered})
    assert_every_batch_counted(pool, [b for _, b in answered])
    assert {n for n, _ in answered} == set(names)  # everyone got work


def run_in_threads(work, names, timeout_s: float = 120.0) -> None:
    """``work(name, k)`` for every rater name at once, each in its own thread."""
    threads = [threading.Thread(target=work, args=(n, k)) for k, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout_s)


def assert_every_batch_counted(pool: Pool, acknowledged: list[int]) -> None:
    """Each acknowledged batch submitted once with its 8 placements, none open, every image seen
    ≥ 3 times, and the stored ratings those replayed from the placements in commit order (no
    update was lost)."""
    images = pool.images()
    with pool.reading() as db:
        submitted = [r[0] for r in db.execute("SELECT id FROM batches WHERE submitted IS NOT NULL")]
        placements = db.execute("SELECT COUNT(*) FROM placements").fetchone()[0]
        open_batches = db.execute("SELECT COUNT(*) FROM batches WHERE submitted IS NULL").fetchone()[0]
    assert sorted(submitted) == sorted(acknowledged) and open_batches == 0
    assert placements == sum(im.views for im in images) == 8 * len(acknowledged)
    assert min(im.views for im in images) >= 3
    replayed = ranking.replay_ratings(pool)
    for im in images:
        assert replayed[im.key][0] == pytest.approx(im.rating) and replayed[im.key][2] == im.views


SCORER = """
import sys
from cmrlib.labelling.pool import Pool
from cmrlib.labelling.tasks import answer, next_task
pool = Pool(sys.argv[1])
n = 0
while True:
    task = next_task(pool, sys.argv[2])
    if task.kind != "score":
        break
    answer(pool, sys.argv[2], image=task.images[0], score=(n * 7) % 101)
    n += 1
print(n)
"""


def test_raters_in_separate_processes_score_one_pool_at_once(tmp_path):
    pool = make_pool(tmp_path, raters=("p1", "p2", "t1"), n_stacks=3, n_slices=8)
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", SCORER, str(pool.path), name], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for name in ("p1", "p2")]
    for im in pool.images():  # and a third rater in this process meanwhile
        vas.submit_score(pool, "t1", im.key, 50.0)
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    assert [int(o[0]) for o in outs] == [24, 24]
    scores = vas.latest_scores(pool)
    assert len(scores) == 24 and all(set(s) == {"p1", "p2", "t1"} for s in scores.values())
    with pool.reading() as db:
        assert db.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 72


def test_export_rebuilds_each_stack_with_its_geometry(tmp_path):
    from cmrlib.io import read_image
    from cmrlib.labelling.outputs import export
    stacks = make_stacks(2, 3)
    pool, keys = Pool.create(tmp_path / "p.sqlite", stacks, "vas", raters=["a"], seed=2)
    for im in pool.images():
        vas.submit_score(pool, "a", im.key, 12.0)
    out = tmp_path / "out"
    out.mkdir()
    summary = export(pool, out)
    for stack, (subject, key) in zip(stacks, keys):
        img = read_image(out / "images" / f"{subject}_{key}.nrrd")
        np.testing.assert_array_equal(img.array, stack.array)
        assert img.spacing == stack.spacing and img.origin == stack.origin
        assert img.meta == {"kind": "lge_psir", "labelling_stack": key, "labelling_subject": subject}
    assert json.loads((out / "summary.json").read_text())["exported_images"] == summary["exported_images"] == 6
