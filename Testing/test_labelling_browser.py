"""`cmr label serve` in a real browser: headless Chromium (Debian's /usr/bin/chromium, never a
downloaded one) driven by Playwright against servers on 127.0.0.1 in threads, with pools made
from a phantom LGE stack. A rater picks their name, moves the slider with the keyboard and the
mouse, submits, reloads (the page resumes at the next unscored image), then drags tiles of a
ranking batch into a new order (HTML5 drag and drop, as the page implements it) and submits;
the pools' databases then hold exactly those answers, none lost, none doubled.

The page tells the test what is on screen through ``<body data-task>`` (:mod:`cmrlib.labelling.page`)."""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import contextmanager

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM} (Debian's chromium package) to drive", allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402 - after the skip

from cmrlib.labelling.pool import Pool, StackInput  # noqa: E402
from cmrlib.labelling.web import LabellingServer  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def phantom():
    from cmrlib.quality.data import phantom_lge_stack
    img = phantom_lge_stack(4242).image
    return img


def make_pool(path, img, mode, slices):
    stack = StackInput(img.array[slices], img.spacing, img.origin, img.direction, img.meta.get("kind"), "subject 1")
    pool, _ = Pool.create(path, [stack], mode, raters=["alice", "bob"], seed=3)
    return pool


@contextmanager
def served(pool):
    server = LabellingServer(pool, "127.0.0.1", 0)  # port 0: a free one
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1280, "height": 1000})
        try:
            yield context
        finally:
            context.close()


def shown(page, previous: str | None = None) -> str:
    """``<body data-task>`` once a task other than ``previous`` is on screen; no error shown."""
    page.wait_for_function("prev => document.body.dataset.task && document.body.dataset.task !== prev",
                           arg=previous, timeout=WAIT_MS)
    assert page.locator("#error").text_content() == ""
    return page.evaluate("document.body.dataset.task")


def log_in(page, url: str, rater: str) -> str:
    page.goto(url)
    page.locator("#login").wait_for(state="visible", timeout=WAIT_MS)
    assert page.locator("#raterSelect option").all_text_contents() == ["alice", "bob"]
    page.select_option("#raterSelect", rater)
    page.click("#start")
    task = shown(page)
    assert page.locator("#who").text_content() == f"rater: {rater}"
    return task


def db_rows(path, sql: str, *args):
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def test_scoring_with_the_slider_resumes_after_a_reload(tmp_path, phantom, browser):
    pool = make_pool(tmp_path / "vas.sqlite", phantom, "vas", [3, 5, 7, 9])
    all_keys = {im.key for im in pool.images()}
    page = browser.new_page()
    answered: list[tuple[str, float]] = []
    with served(pool) as server:
        task = log_in(page, server.url, "bob")
        slider, submit = page.locator("#vas"), page.locator("#submitScore")

        def score(move) -> None:
            nonlocal task
            kind, key = task.split(" ")
            assert kind == "score" and key in all_keys and page.locator("#scoreImg").get_attribute("data-key") == key
            assert submit.is_disabled() and slider.input_value() == "50"  # fresh slider, Submit waits for a move
            move()
            assert submit.is_enabled()
            value = float(slider.input_value())
            submit.click()
            answered.append((key, value))
            task = shown(page, task)

        def keys(*presses):
            def move():
                slider.focus()
                for k in presses:
                    page.keyboard.press(k)
            return move

        def mouse():  # drag the thumb from the middle to three quarters of the track
            box = slider.bounding_box()
            y = box["y"] + box["height"] / 2
            page.mouse.move(box["x"] + box["width"] / 2, y)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.75, y, steps=8)
            page.mouse.up()

        score(keys("End"))  # 100
        score(keys("Home", "PageUp", "PageUp", "ArrowRight", "ArrowRight", "ArrowRight"))  # 20.3
        assert [v for _, v in answered] == [100.0, 20.3]
        # a reload: the rater is remembered for the session, the page resumes at the next unscored image
        before_reload = task
        page.reload()
        task = shown(page)
        assert task == before_reload and task.split(" ")[1] not in {k for k, _ in answered}
        score(mouse)
        assert 60.0 < answered[-1][1] < 90.0  # where the mouse left it (exact value read from the page)
        score(keys("Home"))  # 0
        assert task == "done" and page.locator("#doneText").text_content() == "bob has scored all 4 images"
        page.reload()
        assert shown(page) == "done"
    page.close()
    stored = db_rows(pool.path, "SELECT i.key, r.name, s.score FROM scores s JOIN images i ON i.id = s.image_id "
                                "JOIN raters r ON r.id = s.rater_id ORDER BY s.id")
    assert stored == [(k, "bob", v) for k, v in answered]  # exactly these, in this order: none lost or doubled
    assert {k for k, _ in answered} == all_keys


def test_ranking_by_dragging_tiles(tmp_path, phantom, browser):
    pool = make_pool(tmp_path / "rank.sqlite", phantom, "rank", list(range(12)))
    page = browser.new_page()
    with served(pool) as server:
        task = log_in(page, server.url, "alice")
        assert task.startswith("rank ")
        batch = int(task.split(" ")[1])
        tiles = page.locator("#tiles .tile")

        def dom_order() -> list[str]:
            return [t.get_attribute("data-key") for t in tiles.all()]

        issued = dom_order()
        assert len(issued) == 8 and len(set(issued)) == 8
        assert tiles.nth(7).locator(".place span").text_content().strip() == "8 of 8"
        # a reload before submitting: the same batch, the same tiles
        page.reload()
        assert shown(page) == task and dom_order() == issued
        k = issued
        expected = list(k)

        def drag(moved: str, onto: str) -> None:
            """The page's rule: dropped on a later tile it goes after it, on an earlier one before."""
            page.drag_and_drop(f'.tile[data-key="{moved}"]', f'.tile[data-key="{onto}"]')
            i, j = expected.index(moved), expected.index(onto)
            expected.remove(moved)
            expected.insert(expected.index(onto) + (1 if i < j else 0), moved)
            assert dom_order() == expected

        drag(k[0], k[7])  # first to last
        drag(k[6], k[1])  # to the front
        drag(k[3], k[5])
        page.locator(f'.tile[data-key="{k[2]}"] button[title="more basal"]').click()  # the arrows too
        i = expected.index(k[2])
        expected[i - 1], expected[i] = expected[i], expected[i - 1]
        assert dom_order() == expected and expected != issued and sorted(expected) == sorted(issued)
        assert [t.locator(".place span").text_content().strip() for t in tiles.all()] == [
            f"{n} of 8" for n in range(1, 9)]
        page.click("#submitRank")
        after = shown(page, task)
        assert after.startswith("rank ") and int(after.split(" ")[1]) != batch  # the next batch
    page.close()
    submitted = db_rows(pool.path, "SELECT b.id, r.name, b.images FROM batches b JOIN raters r ON r.id = b.rater_id "
                                   "WHERE b.submitted IS NOT NULL")
    assert [(b, name) for b, name, _ in submitted] == [(batch, "alice")]
    placed = db_rows(pool.path, "SELECT p.batch_id, i.key, p.place FROM placements p JOIN images i "
                                "ON i.id = p.image_id ORDER BY p.batch_id, p.place")
    assert placed == [(batch, key, place) for place, key in enumerate(expected)]  # the order submitted, once
    ids = dict(db_rows(pool.path, "SELECT key, id FROM images"))
    assert json.loads(submitted[0][2]) == [ids[key] for key in issued]  # the batch that was shown
