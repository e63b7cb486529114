"""`cmr label serve`: the labelling page and its JSON API, on the standard library's HTTP server.

One page (:mod:`.page`) serves both tools: the slider without numbers (zoom, pan, window) for a
visual-analogue pool, the 8 draggable tiles with a submit button for a ranking pool, the three
class buttons for its cut-point questions. The page only shows images and posts answers; the
work is :func:`cmrlib.labelling.tasks.next_task` / :func:`~cmrlib.labelling.tasks.answer`, as
for every front end.

API (JSON; a rater is named by the ``X-Rater`` header, and with tokens by ``X-Token``):

* ``GET /`` — the page; ``GET /api/pool`` — mode, counts, whether tokens are needed and (without
  tokens) the raters' names to choose from;
* ``GET /api/next`` — the rater's task; ``POST /api/answer`` — ``{"image", "score"}``,
  ``{"batch", "order"}`` or ``{"image", "class"}``, committed before the reply;
* ``GET /api/image/<key>.png`` — a slice of the pool; ``GET /api/status`` — `cmr label status`.

Safety: it binds 127.0.0.1 unless told otherwise; then (``require_tokens``, forced for any other
address) every API call needs a rater's access token, compared in constant time, and the token
alone says who the rater is. A request names nothing but routes and opaque image keys: images
come out of the pool's database, so no request reaches a file — the pool's own or any other.
Bound to the loopback address, requests whose ``Host`` is not a loopback name are refused (a web
page elsewhere cannot drive the server through DNS rebinding). Bodies above ``MAX_BODY_BYTES``
are refused. The server speaks plain HTTP: across a network, run it behind TLS (a reverse
proxy, an SSH tunnel) so that tokens do not travel in clear.
"""
from __future__ import annotations

import ipaddress
import json
import re
import threading
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError
from .pool import Pool

MAX_BODY_BYTES = 64 * 1024
IMAGE_CACHE = 256  # PNGs kept in memory
IMAGE_PATH = re.compile(r"^/api/image/(i[0-9a-f]{8})\.png$")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


class RequestError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class LabellingServer(ThreadingHTTPServer):
    """The HTTP server of one pool (``serve_forever`` in any thread; ``shutdown`` stops it)."""

    daemon_threads = True

    def __init__(self, pool: Pool, host: str = "127.0.0.1", port: int = 8765, *, require_tokens: bool = False,
                 log=None) -> None:
        self.pool = pool
        self.loopback = is_loopback(host)
        self.require_tokens = require_tokens or not self.loopback
        self.log = log
        self._images: OrderedDict[str, bytes] = OrderedDict()
        self._images_lock = threading.Lock()
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def image(self, key: str) -> bytes:
        from .outputs import png_bytes
        with self._images_lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        data = png_bytes(self.pool, key)
        with self._images_lock:
            self._images[key] = data
            while len(self._images) > IMAGE_CACHE:
                self._images.popitem(last=False)
        return data


class Handler(BaseHTTPRequestHandler):
    server: LabellingServer
    server_version = "cmr-label"
    sys_version = ""

    # ---- plumbing -------------------------------------------------------------------------------
    def log_message(self, fmt: str, *args: Any) -> None:
        if self.server.log is not None:
            self.server.log(f"{self.address_string()} {fmt % args}")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _check_host(self) -> None:
        if not self.server.loopback:
            return
        host = urlsplit(f"//{self.headers.get('Host', '')}").hostname or ""
        if not is_loopback(host):
            raise RequestError(HTTPStatus.FORBIDDEN, f"this server answers requests for localhost only, not {host!r}")

    def _rater(self) -> str:
        name = self.headers.get("X-Rater", "").strip()
        if self.server.require_tokens:
            token = self.headers.get("X-Token", "").strip()
            found = self.server.pool.rater_for_token(token) if token else None
            if found is None:
                raise RequestError(HTTPStatus.FORBIDDEN, "a rater's access token is needed (X-Token); this one "
                                                         "matches no rater" if token else
                                   "a rater's access token is needed (X-Token)")
            if name and name != found:
                raise RequestError(HTTPStatus.FORBIDDEN, f"the token is not {name!r}'s")
            return found
        if not name:
            raise RequestError(HTTPStatus.BAD_REQUEST, "name the rater (X-Rater)")
        return name

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise RequestError(HTTPStatus.BAD_REQUEST, "Content-Length must be a number") from None
        if length > MAX_BODY_BYTES:
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a request body is at most {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RequestError(HTTPStatus.BAD_REQUEST, "the body must be JSON") from None
        if not isinstance(data, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        return data

    def _handle(self, method: str) -> None:
        try:
            self._check_host()
            self._route(method, urlsplit(self.path).path)
        except RequestError as exc:
            self._json(exc.status, {"error": str(exc)})
        except InputError as exc:  # what the engines refuse: the rater's request, not the server
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the rater waiting
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {type(exc).__name__}: {exc}"})
        finally:
            self.server.pool.release()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    # ---- routes -----------------------------------------------------------------------------------
    def _route(self, method: str, path: str) -> None:
        from .page import PAGE
        from .tasks import answer, next_task
        pool = self.server.pool
        if method == "GET" and path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
        elif method == "GET" and path == "/api/pool":
            from .pool import MODE_NAMES
            self._json(HTTPStatus.OK, {"mode": pool.mode, "mode_name": MODE_NAMES[pool.mode],
                                       "images": len(pool.images()), "tokens": self.server.require_tokens,
                                       "raters": [] if self.server.require_tokens else list(pool.raters())})
        elif method == "GET" and path == "/api/next":
            self._json(HTTPStatus.OK, next_task(pool, self._rater()).to_dict())
        elif method == "POST" and path == "/api/answer":
            rater = self._rater()
            body = self._body()
            unknown = set(body) - {"image", "score", "batch", "order", "class"}
            if unknown:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"unknown field(s) {', '.join(sorted(unknown))}")
            order = body.get("order")
            if order is not None and not (isinstance(order, list) and all(isinstance(k, str) for k in order)):
                raise RequestError(HTTPStatus.BAD_REQUEST, "order must be a list of image keys")
            batch = body.get("batch")
            if batch is not None and not isinstance(batch, int):
                raise RequestError(HTTPStatus.BAD_REQUEST, "batch must be a number")
            result = answer(pool, rater, image=body.get("image"), score=body.get("score"), batch=batch,
                            order=order, slice_class=body.get("class"))
            pool.maybe_backup()
            self._json(HTTPStatus.OK, result)
        elif method == "GET" and IMAGE_PATH.match(path):
            self._rater()
            self._send(HTTPStatus.OK, self.server.image(IMAGE_PATH.match(path).group(1)), "image/png")
        elif method == "GET" and path == "/api/status":
            from .status import pool_status
            self._rater()
            status = pool_status(pool)
            status["pool"] = pool.path.name  # not where it lives
            self._json(HTTPStatus.OK, status)
        else:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no such page: {method} {path}")


def serve(pool: Pool, host: str = "127.0.0.1", port: int = 8765, *, require_tokens: bool = False,
          max_seconds: float | None = None, log=print) -> None:
    """Serve ``pool`` until Ctrl-C (or ``max_seconds``)."""
    server = LabellingServer(pool, host, port, require_tokens=require_tokens, log=None)
    log(f"{pool.path}: serving {server.url} ({'tokens needed' if server.require_tokens else 'raters pick their name'};"
        " Ctrl-C stops)")
    if server.require_tokens:
        for name, token in pool.raters().items():
            log(f"  {name}: {server.url}?token={token}")
        if not server.loopback:
            log("  plain HTTP: across a network put it behind TLS (reverse proxy, SSH tunnel)")
    if max_seconds is not None:
        threading.Timer(max_seconds, server.shutdown).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
