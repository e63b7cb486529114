"""`cmr label serve`: the page and its JSON API against a server on 127.0.0.1 in a thread — scoring,
ranking, resume, tokens, requests for paths outside the pool, foreign Host headers, bad bodies,
and four raters at once without a lost or doubled answer. (Here the page's script is checked
for syntax only; test_labelling_browser.py runs it in headless Chromium.)"""
from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest

from cmrlib.labelling import vas
from cmrlib.labelling.web import LabellingServer, is_loopback
from test_labelling_pool import assert_every_batch_counted, make_pool, run_in_threads


@contextmanager
def served(pool, **kw):
    server = LabellingServer(pool, "127.0.0.1", 0, **kw)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def call(server, method: str, path: str, body=None, *, rater=None, token=None, raw: bytes | None = None,
         host: str | None = None):
    """(status, JSON or bytes) of one request; ``path`` is sent exactly as given."""
    port = server.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if rater:
        headers["X-Rater"] = rater
    if token:
        headers["X-Token"] = token
    if host:
        headers["Host"] = host
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers=headers)
    reply = conn.getresponse()
    payload = reply.read()
    conn.close()
    if reply.getheader("Content-Type", "").startswith("application/json"):
        return reply.status, json.loads(payload)
    return reply.status, payload


def test_the_page_and_the_pool(tmp_path):
    pool = make_pool(tmp_path)
    with served(pool) as server:
        status, page = call(server, "GET", "/")
        assert status == 200 and b"submitScore" in page and b'id="tiles"' in page and b"<script>" in page
        status, info = call(server, "GET", "/api/pool")
        assert status == 200 and info == {"mode": "vas", "mode_name": "visual-analogue LGE-likelihood scoring",
                                          "images": 12, "tokens": False, "raters": ["alice", "bob"]}
    assert server.url.startswith("http://127.0.0.1:")


@pytest.mark.skipif(shutil.which("node") is None, reason="no node to check the script's syntax")
def test_the_page_script_parses(tmp_path):
    from cmrlib.labelling.page import PAGE
    script = tmp_path / "page.js"
    script.write_text(PAGE.split("<script>")[1].split("</script>")[0])
    done = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_scoring_through_the_api_resumes_and_lands_in_the_pool(tmp_path):
    from cmrlib.labelling.outputs import png_bytes
    pool = make_pool(tmp_path, n_stacks=2, n_slices=2)
    with served(pool) as server:
        status, task = call(server, "GET", "/api/next", rater="alice")
        assert status == 200 and task["kind"] == "score" and len(task["images"]) == 1
        key = task["images"][0]
        status, png = call(server, "GET", f"/api/image/{key}.png", rater="alice")
        assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n" and png == png_bytes(pool, key)
        assert call(server, "GET", "/api/next", rater="alice")[1]["images"] == [key]  # a reload: the same image
        status, result = call(server, "POST", "/api/answer", {"image": key, "score": 62.5}, rater="alice")
        assert status == 200 and result["score"] == 62.5 and result["scored"] == 1
        seen = {key}
        while (task := call(server, "GET", "/api/next", rater="alice")[1])["kind"] == "score":
            seen.add(task["images"][0])
            call(server, "POST", "/api/answer", {"image": task["images"][0], "score": 10}, rater="alice")
        assert task["kind"] == "done" and len(seen) == 4
        status, st = call(server, "GET", "/api/status", rater="bob")
        assert status == 200 and st["coverage"]["raters"] == {"alice": 4, "bob": 0} and st["pool"] == "vas.sqlite"
    assert vas.latest_scores(pool)[key] == {"alice": 62.5}


def test_ranking_through_the_api(tmp_path):
    pool = make_pool(tmp_path, "rank", n_stacks=2, n_slices=8)
    with served(pool) as server:
        task = call(server, "GET", "/api/next", rater="alice")[1]
        assert task["kind"] == "rank" and len(task["images"]) == 8 and not task["resumed"]
        again = call(server, "GET", "/api/next", rater="alice")[1]  # the page reloaded: the same batch
        assert again["batch"] == task["batch"] and again["images"] == task["images"] and again["resumed"]
        order = list(reversed(task["images"]))
        status, result = call(server, "POST", "/api/answer", {"batch": task["batch"], "order": order}, rater="alice")
        assert status == 200 and not result["duplicate"] and set(result["ratings"]) == set(order)
        status, twice = call(server, "POST", "/api/answer", {"batch": task["batch"], "order": order}, rater="alice")
        assert status == 200 and twice["duplicate"]  # a double click
        status, refused = call(server, "POST", "/api/answer", {"batch": task["batch"], "order": task["images"]},
                               rater="alice")
        assert status == 400 and "the first answer stands" in refused["error"]
    with pool.reading() as db:
        placed = [r[0] for r in db.execute("SELECT i.key FROM placements p JOIN images i ON i.id = p.image_id "
                                           "ORDER BY p.place")]
    assert placed == order


def test_tokens_name_the_rater_and_nothing_else_gets_in(tmp_path):
    pool = make_pool(tmp_path)
    tokens = pool.raters()
    with served(pool, require_tokens=True) as server:
        assert call(server, "GET", "/api/pool")[1]["raters"] == []  # names are not handed out
        status, err = call(server, "GET", "/api/next")
        assert status == 403 and "access token is needed" in err["error"]
        status, err = call(server, "GET", "/api/next", token="0" * 32)
        assert status == 403 and "matches no rater" in err["error"]
        status, err = call(server, "GET", "/api/next", rater="alice")  # a name alone is not enough
        assert status == 403
        status, task = call(server, "GET", "/api/next", token=tokens["bob"])
        assert status == 200 and task["rater"] == "bob"
        status, err = call(server, "GET", "/api/next", rater="alice", token=tokens["bob"])
        assert status == 403 and "not 'alice'" in err["error"]
        key = task["images"][0]
        assert call(server, "GET", f"/api/image/{key}.png")[0] == 403
        status, _ = call(server, "POST", "/api/answer", {"image": key, "score": 5}, token=tokens["bob"])
        assert status == 200
    assert vas.latest_scores(pool) == {key: {"bob": 5.0}}
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20") and not is_loopback("example.org")


@pytest.mark.parametrize("path", [
    "/../../../../etc/passwd", "/etc/passwd", "/api/image/../../../../etc/passwd", "/api/image/..%2f..%2fetc%2fpasswd",
    "/api/image/%2e%2e/%2e%2e/etc/passwd.png", "/vas.sqlite", "/api/../vas.sqlite", "/api/image/i0000000g.png",
    "/api/image/I00000000.png", "//etc/passwd", "/api/next/../../vas.sqlite",
])
def test_no_request_reaches_a_file(tmp_path, path):
    pool = make_pool(tmp_path)
    (tmp_path / "secret.txt").write_text("not for raters")
    with served(pool) as server:
        status, payload = call(server, "GET", path, rater="alice")
    assert status == 404, (path, payload)
    text = json.dumps(payload) if isinstance(payload, dict) else payload.decode(errors="replace")
    assert "root:" not in text and "SQLite format" not in text and "not for raters" not in text


def test_an_unknown_image_key_and_foreign_hosts_are_refused(tmp_path):
    pool = make_pool(tmp_path)
    with served(pool) as server:
        status, err = call(server, "GET", "/api/image/i00000000.png", rater="alice")
        assert status == 400 and "holds no image 'i00000000'" in err["error"]
        status, err = call(server, "GET", "/api/next", rater="alice", host="evil.example:80")
        assert status == 403 and "localhost only" in err["error"]
        assert call(server, "GET", "/api/next", rater="alice", host=f"localhost:{server.server_address[1]}")[0] == 200


def test_bad_requests_are_one_clear_error_and_change_nothing(tmp_path):
    pool = make_pool(tmp_path)
    key = pool.images()[0].key
    with served(pool) as server:
        cases = [
            (dict(raw=b"{not json"), 400, "the body must be JSON"),
            (dict(raw=b"[1, 2]"), 400, "a JSON object"),
            (dict(raw=b" " * 70_000), 413, "at most"),
            (dict(body={"image": key, "score": 5, "colour": "red"}), 400, "unknown field(s) colour"),
            (dict(body={"batch": 1, "order": "a,b"}), 400, "order must be a list"),
            (dict(body={"image": key, "score": 101}), 400, "a score is a number 0–100"),
            (dict(body={"image": key}), 400, "give one answer"),
            (dict(body={"batch": 1, "order": [key]}), 400, "is a visual-analogue"),
        ]
        for kwargs, code, message in cases:
            status, err = call(server, "POST", "/api/answer", rater="alice", **kwargs)
            assert status == code and message in err["error"], (kwargs, err)
        status, err = call(server, "POST", "/api/answer", {"image": key, "score": 5}, rater="zed")
        assert status == 400 and "unknown rater 'zed'" in err["error"]
        status, err = call(server, "GET", "/api/next")
        assert status == 400 and "name the rater" in err["error"]
    assert vas.latest_scores(pool) == {}


def test_four_raters_through_the_server_lose_and_double_nothing(tmp_path):
    from cmrlib.labelling.simulate import SimulatedRater
    names = ["r1", "r2", "r3", "r4"]
    pool = make_pool(tmp_path, "rank", raters=names, n_stacks=4, n_slices=10)
    levels = {im.key: im.slice / 9.0 for im in pool.images()}
    acknowledged: list[int] = []
    failures: list[object] = []
    latency: list[float] = []
    with served(pool) as server:
        def work(name: str, seed: int) -> None:
            rater = SimulatedRater(name, seed=seed)
            for _ in range(40):  # bounded
                t0 = time.perf_counter()
                status, task = call(server, "GET", "/api/next", rater=name)
                if status != 200:
                    failures.append(task)
                    return
                if task["kind"] != "rank":
                    return
                status, result = call(server, "POST", "/api/answer",
                                      {"batch": task["batch"], "order": rater.order(task["images"], levels)},
                                      rater=name)
                latency.append(time.perf_counter() - t0)
                if status != 200:
                    failures.append(result)
                    return
                acknowledged.append(result["batch"])

        run_in_threads(work, names)
    assert not failures, failures
    assert len(acknowledged) == len(set(acknowledged)) > 0
    assert_every_batch_counted(pool, acknowledged)
    assert np.percentile(latency, 95) < 5.0  # seconds, on a busy machine


def test_cmr_label_serve_starts_and_stops(tmp_path, capsys):
    from cmrlib.cli import main
    pool = make_pool(tmp_path)
    pool.close()
    assert main(["label", "serve", str(pool.path), "--port", "0", "--max-seconds", "0.3", "--tokens"]) == 0
    out = capsys.readouterr().out
    assert "serving http://127.0.0.1:" in out and "tokens needed" in out and "alice: http://127.0.0.1:" in out
    assert main(["label", "serve", str(pool.path), "--port", "70000"]) == 1
    assert "--port must be 0–65535" in capsys.readouterr().err
