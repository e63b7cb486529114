"""A labelling pool: one SQLite file holding the anonymised slices, the raters and every answer.

The pool is the only state of the labelling tools: the CLI, the future web app and the Slicer
section all open the same file, so a rater stops and resumes anywhere and several raters answer
at the same time. Why SQLite in WAL mode: readers never block the one writer, a writer waits
(``BUSY_TIMEOUT_S``) instead of failing when another one holds the lock, and every answer is its
own transaction, committed before the call returns — an answer that was acknowledged is on disk.

What is stored (nothing else; no patient name, ID, date, UID or source path):

* ``stacks``: one row per source short-axis stack — an opaque ``key``, an opaque ``subject`` key
  shared by the stacks of one patient (so training can split at patient level), the DICOM kind
  and the geometry (spacing mm, origin mm, LPS direction) for the export's NRRD files;
* ``images``: one row per slice — an opaque ``key`` (what raters and exports see), the stack and
  slice index (from 0), ``position`` in the pool's shuffled order (across subjects), the pixels
  (float32, zlib) and the ranking state (``rating`` 0 very apical … 3000 very basal, start 1500;
  ``volatility`` 0–1; ``views``);
* ``raters``: name and a random access token (for serving the pool to other machines);
* ``scores`` (visual-analogue scoring): append-only, the latest row of an image and rater counts;
* ``batches`` / ``placements`` (ranking): the 8 images issued to a rater, and where each landed,
  with the rating before and after the update;
* ``classes``: one-at-a-time class answers (the ranking's cut-point questions);
* ``meta``: format, mode, seed, batch size, views target, cut points, software version.

Bad input is refused with one line and nothing changed: an existing file is never overwritten by
``create``; a file that is not SQLite, not a pool, corrupt or locked is named as such. A copy
``POOL.bak`` is refreshed at most every ``BACKUP_EVERY_S`` when a pool is opened for writing,
only after SQLite's quick integrity check passes — a corrupt pool never replaces a good backup.
"""
from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import InputError

FORMAT = 1
MODES = ("vas", "rank")
MODE_NAMES = {"vas": "visual-analogue LGE-likelihood scoring", "rank": "multiple-image ranking"}
BATCH_SIZE = 8
TARGET_VIEWS = 3  # the card: ranking is done when every image has been seen this often
RATING_START, RATING_MIN, RATING_MAX = 1500.0, 0.0, 3000.0
VOLATILITY_START = 1.0  # nothing known about an unseen image
BUSY_TIMEOUT_S = 10.0  # a writer waits this long for another one before the pool counts as locked
BACKUP_EVERY_S = 600.0
SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE stacks (id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, subject TEXT NOT NULL, kind TEXT,
    n_slices INTEGER NOT NULL, rows INTEGER NOT NULL, cols INTEGER NOT NULL, geometry TEXT NOT NULL);
CREATE TABLE images (id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL,
    stack_id INTEGER NOT NULL REFERENCES stacks(id), slice INTEGER NOT NULL, position INTEGER UNIQUE NOT NULL,
    pixels BLOB NOT NULL, rating REAL NOT NULL, volatility REAL NOT NULL, views INTEGER NOT NULL DEFAULT 0,
    UNIQUE (stack_id, slice));
CREATE TABLE raters (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, token TEXT UNIQUE NOT NULL,
    created REAL NOT NULL);
CREATE TABLE scores (id INTEGER PRIMARY KEY, image_id INTEGER NOT NULL REFERENCES images(id),
    rater_id INTEGER NOT NULL REFERENCES raters(id), score REAL NOT NULL, at REAL NOT NULL);
CREATE INDEX scores_by_rater ON scores (rater_id, image_id);
CREATE TABLE batches (id INTEGER PRIMARY KEY, rater_id INTEGER NOT NULL REFERENCES raters(id),
    images TEXT NOT NULL, issued REAL NOT NULL, submitted REAL, copied_from INTEGER REFERENCES batches(id));
CREATE INDEX open_batches ON batches (submitted, rater_id);
CREATE TABLE placements (batch_id INTEGER NOT NULL REFERENCES batches(id),
    image_id INTEGER NOT NULL REFERENCES images(id), place INTEGER NOT NULL,
    rating_before REAL NOT NULL, rating_after REAL NOT NULL, volatility_after REAL NOT NULL,
    PRIMARY KEY (batch_id, image_id));
CREATE TABLE classes (id INTEGER PRIMARY KEY, image_id INTEGER NOT NULL REFERENCES images(id),
    rater_id INTEGER NOT NULL REFERENCES raters(id), class TEXT NOT NULL, at REAL NOT NULL);
"""


@dataclass(frozen=True)
class StackInput:
    """One short-axis stack to put into a new pool: ``array`` ``[slice, row, col]`` and its geometry.
    ``subject`` groups the stacks of one patient (any text; only its opaque key is stored)."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    kind: str | None
    subject: str


@dataclass(frozen=True)
class PoolImage:
    """One slice of the pool as the engines see it."""

    id: int
    key: str
    stack: str  # the stack's opaque key
    subject: str
    slice: int  # index in the stack, from 0
    position: int  # place in the pool's shuffled order
    rating: float  # the live (Elo) rating that steers the batches
    volatility: float
    views: int
    fitted_rating: float | None = None  # the final ordering's rating (ranking.ordering), when computed


def backup_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".bak")


def _token(nbytes: int) -> str:
    return secrets.token_hex(nbytes)


def _encode(slice_array: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(slice_array, "<f4").tobytes(), 6)


def _decode(blob: bytes, rows: int, cols: int) -> np.ndarray:
    return np.frombuffer(zlib.decompress(blob), "<f4").reshape(rows, cols).copy()


class Pool:
    """An open labelling pool (see the module docstring). ``Pool(path)`` opens an existing one;
    :meth:`create` makes a new one. Safe to share between threads: each thread has its own
    connection; writes are serialised by SQLite."""

    def __init__(self, path: str | Path, *, backup: bool = True) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()  # guards the list of connections
        self._write_lock = threading.Lock()
        if not self.path.exists():
            raise InputError(f"{self.path}: no such labelling pool (make one with `cmr label create`)")
        if not self.path.is_file():
            raise InputError(f"{self.path}: not a file; a labelling pool is one SQLite file")
        with open(self.path, "rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
        if head != SQLITE_MAGIC:
            raise InputError(f"{self.path}: not a labelling pool (not an SQLite database); left as it is")
        with self.reading() as db:
            try:
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    raise InputError(f"{self.path}: an SQLite database but not a labelling pool (no meta table); "
                                     "left as it is") from None
                raise
        if meta.get("format") != str(FORMAT) or meta.get("mode") not in MODES:
            raise InputError(f"{self.path}: a labelling pool of format {meta.get('format')!r}, mode "
                             f"{meta.get('mode')!r}; this version reads format {FORMAT} (modes {', '.join(MODES)})")
        self.mode: str = meta["mode"]
        self.seed = int(meta.get("seed", "0"))
        self.batch_size = int(meta.get("batch_size", BATCH_SIZE))
        self.target_views = int(meta.get("target_views", TARGET_VIEWS))
        if backup:
            self.maybe_backup()

    # ---- connections and transactions -------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA foreign_keys = ON")
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def _error(self, exc: sqlite3.Error, writing: bool) -> InputError:
        text = str(exc)
        if "readonly" in text:
            return InputError(f"{self.path} is read-only here; nothing was changed (answers need a pool this account "
                              "can write)")
        if "locked" in text or "busy" in text:
            what = "the answer was not saved; submit it again" if writing else "try again"
            return InputError(f"{self.path} is locked by another program (waited {BUSY_TIMEOUT_S:g} s); {what}")
        bak = backup_path(self.path)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(bak.stat().st_mtime)) if bak.is_file() else ""
        hint = (f"; the last good copy is {bak} ({when}): copy it over the pool to resume" if when
                else "; no backup exists")
        return InputError(f"{self.path} is corrupt or unreadable ({text}); nothing was changed{hint}")

    def _begin(self, db: sqlite3.Connection, statement: str, writing: bool) -> None:
        try:
            db.execute(statement)
        except sqlite3.DatabaseError as exc:
            raise self._error(exc, writing) from None

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (one consistent snapshot inside the block; inside another
        block of this thread, that block's transaction)."""
        db = self._connection()
        if db.in_transaction:
            yield db
            return
        self._begin(db, "BEGIN", False)
        try:
            yield db
        except sqlite3.DatabaseError as exc:
            raise self._error(exc, False) from None
        finally:
            if db.in_transaction:  # reads only: ending the snapshot
                db.execute("ROLLBACK")

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: the write lock is taken first, so what is
        read inside the block stays true until the commit). Committed on success, rolled back on
        any error — an answer is either wholly on disk or not at all."""
        db = self._connection()
        if db.in_transaction:
            raise RuntimeError("a write transaction inside another transaction of the same thread")
        # threads of this process queue here: SQLite's busy handler backs off (sleeps up to 100 ms)
        # and lets a few busy writers starve the others; other processes wait in SQLite
        if not self._write_lock.acquire(timeout=BUSY_TIMEOUT_S):
            raise self._error(sqlite3.OperationalError("database is locked"), True)
        try:
            self._begin(db, "BEGIN IMMEDIATE", True)
            try:
                yield db
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise self._error(exc, True) from None
                raise
        finally:
            self._write_lock.release()

    def release(self) -> None:
        """Close this thread's connection (a server's request threads end; their connections must not pile up)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            with self._lock:
                if db in self._connections:
                    self._connections.remove(db)
            db.close()
            self._local.db = None

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- creation ---------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, stacks: Sequence[StackInput], mode: str, *, raters: Sequence[str] = (),
               seed: int | None = None, batch_size: int = BATCH_SIZE,
               target_views: int = TARGET_VIEWS) -> tuple["Pool", list[tuple[str, str]]]:
        """A new pool at ``path`` from ``stacks`` (every slice, shuffled across subjects), and the
        opaque (subject key, stack key) of each stack, in the order given (the site's private link
        back to its sources; it is not stored in the pool). Refuses an existing file; the pool is
        built beside it and appears complete or not at all."""
        from .. import __version__
        path = Path(path)
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if path.exists() or Path(f"{path}-wal").exists():
            raise InputError(f"{path} exists: a pool is never overwritten; choose another file name")
        if not path.parent.is_dir():
            raise InputError(f"{path}: the folder {path.parent} does not exist")
        n_images = sum(int(np.asarray(s.array).shape[0]) for s in stacks)
        if n_images == 0:
            raise InputError(f"{path}: no slices to label; the pool would be empty")
        if mode == "rank" and n_images < 2:
            raise InputError(f"{path}: multiple-image ranking needs at least 2 slices; got {n_images}")
        if batch_size < 2 or target_views < 1:
            raise InputError("a batch holds at least 2 images and each image is seen at least once")
        names = _check_names(raters)
        seed = secrets.randbits(31) if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        tmp = path.with_name(f".{path.name}.partial-{_token(4)}")
        try:
            db = sqlite3.connect(tmp, isolation_level=None)
            db.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            raise InputError(f"cannot write the pool {path} ({exc})") from None
        try:
            db.executescript(SCHEMA)
            db.execute("BEGIN")
            meta = {"format": FORMAT, "mode": mode, "seed": seed, "batch_size": batch_size,
                    "target_views": target_views, "created": time.time(), "software": __version__}
            db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
            subjects: dict[str, str] = {}
            keys: list[tuple[str, str]] = []
            used: set[str] = set()
            order = rng.permutation(n_images)  # slices shuffled across subjects
            k = 0
            for stack in stacks:
                arr = np.asarray(stack.array, np.float32)
                subject = subjects.setdefault(stack.subject, _unique("s", used))
                stack_key = _unique("k", used)
                geometry = {"spacing": [float(v) for v in stack.spacing], "origin": [float(v) for v in stack.origin],
                            "direction": np.asarray(stack.direction, float).reshape(3, 3).tolist()}
                cur = db.execute("INSERT INTO stacks (key, subject, kind, n_slices, rows, cols, geometry) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (stack_key, subject, stack.kind, arr.shape[0],
                                                                  arr.shape[1], arr.shape[2], json.dumps(geometry)))
                for j in range(arr.shape[0]):
                    db.execute("INSERT INTO images (key, stack_id, slice, position, pixels, rating, volatility) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?)", (_unique("i", used), cur.lastrowid, j, int(order[k]),
                                                                _encode(arr[j]), RATING_START, VOLATILITY_START))
                    k += 1
                keys.append((subject, stack_key))
            for name in names:
                db.execute("INSERT INTO raters (name, token, created) VALUES (?, ?, ?)",
                           (name, _token(16), time.time()))
            db.execute("COMMIT")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
            try:  # no-clobber: a pool that appeared meanwhile is never replaced
                os.link(tmp, path)
            except FileExistsError:
                raise InputError(f"{path} exists: a pool is never overwritten; choose another file name") from None
            except OSError:  # a file system without hard links: checked, then renamed
                if path.exists():
                    raise InputError(f"{path} exists: a pool is never overwritten; choose another file name") from None
                os.replace(tmp, path)
            os.chmod(path, 0o666 & ~_umask())
        finally:
            db.close()
            for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                p.unlink(missing_ok=True)
        return cls(path, backup=False), keys

    # ---- backups ------------------------------------------------------------------------------
    def answer_count(self) -> int:
        with self.reading() as db:
            return int(db.execute("SELECT (SELECT COUNT(*) FROM scores) + (SELECT COUNT(*) FROM placements) "
                                  "+ (SELECT COUNT(*) FROM classes)").fetchone()[0])

    def backup(self) -> Path:
        """Copy the pool to ``POOL.bak`` (SQLite's online backup: consistent while others write)
        after its quick integrity check; a corrupt pool raises and leaves the old backup alone."""
        with self.reading() as db:
            check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise self._error(sqlite3.DatabaseError(f"integrity check: {check}"), False)
        target = backup_path(self.path)
        tmp = target.with_name(f".{target.name}.partial-{_token(4)}")
        try:
            dst = sqlite3.connect(tmp)
            try:
                self._connection().backup(dst)
                dst.execute("PRAGMA journal_mode = DELETE")  # the copy is one self-contained file
            finally:
                dst.close()
            os.replace(tmp, target)
        except sqlite3.DatabaseError as exc:
            raise self._error(exc, False) from None
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def maybe_backup(self) -> Path | None:
        """:meth:`backup` when the last one is older than ``BACKUP_EVERY_S`` and the pool holds
        answers (called when a pool is opened and by long-running servers; a pool without answers
        is made again from its sources)."""
        target = backup_path(self.path)
        if target.is_file() and time.time() - target.stat().st_mtime < BACKUP_EVERY_S:
            return None
        if self.answer_count() == 0:
            return None
        try:
            return self.backup()
        except OSError:  # a read-only folder: labelling goes on, without a fresh copy
            return None

    # ---- raters -----------------------------------------------------------------------------
    def raters(self) -> dict[str, str]:
        """Rater name → access token."""
        with self.reading() as db:
            return dict(db.execute("SELECT name, token FROM raters ORDER BY id").fetchall())

    def add_raters(self, names: Sequence[str]) -> dict[str, str]:
        """Register raters; returns the new ones' tokens. A name already there is refused."""
        names = _check_names(names)
        with self.writing() as db:
            known = {r[0] for r in db.execute("SELECT name FROM raters")}
            twice = [n for n in names if n in known]
            if twice:
                raise InputError(f"{self.path}: rater(s) {', '.join(twice)} already registered")
            tokens = {n: _token(16) for n in names}
            db.executemany("INSERT INTO raters (name, token, created) VALUES (?, ?, ?)",
                           [(n, t, time.time()) for n, t in tokens.items()])
        return tokens

    def rater_id(self, db: sqlite3.Connection, name: str) -> int:
        row = db.execute("SELECT id FROM raters WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = [r[0] for r in db.execute("SELECT name FROM raters ORDER BY id")]
            raise InputError(f"unknown rater {name!r} in {self.path} (raters: {', '.join(known) or 'none'}); "
                             f"add one with `cmr label raters {self.path} --add NAME`")
        return int(row[0])

    def rater_for_token(self, token: str) -> str | None:
        """The rater whose access token is ``token`` (compared in constant time), else None."""
        found = None
        for name, tok in self.raters().items():
            if secrets.compare_digest(tok.encode(), str(token).encode()):
                found = name
        return found

    # ---- images -----------------------------------------------------------------------------
    _IMAGE_COLUMNS = ("i.id, i.key, s.key, s.subject, i.slice, i.position, i.rating, i.volatility, i.views "
                      "FROM images i JOIN stacks s ON s.id = i.stack_id")

    def images(self, db: sqlite3.Connection | None = None) -> list[PoolImage]:
        """Every image in the pool's shuffled order."""
        if db is None:
            with self.reading() as db2:
                return self.images(db2)
        return [PoolImage(*r) for r in db.execute(f"SELECT {self._IMAGE_COLUMNS} ORDER BY i.position")]

    def image_ids(self, db: sqlite3.Connection, keys: Sequence[str]) -> list[int]:
        """Row ids of image ``keys``; InputError naming any the pool does not hold."""
        found = dict(db.execute(f"SELECT key, id FROM images WHERE key IN ({','.join('?' * len(keys))})",
                                list(keys)).fetchall()) if keys else {}
        missing = [k for k in keys if k not in found]
        if missing:
            raise InputError(f"{self.path} holds no image {', '.join(map(repr, missing))}")
        return [found[k] for k in keys]

    def pixels(self, key: str) -> tuple[np.ndarray, tuple[float, float]]:
        """Image ``key``'s pixels ``[row, col]`` (float32) and its pixel spacing (col, row) mm."""
        with self.reading() as db:
            row = db.execute("SELECT i.pixels, s.rows, s.cols, s.geometry FROM images i JOIN stacks s "
                             "ON s.id = i.stack_id WHERE i.key = ?", (key,)).fetchone()
        if row is None:
            raise InputError(f"{self.path} holds no image {key!r}")
        spacing = json.loads(row[3])["spacing"]
        return _decode(row[0], row[1], row[2]), (spacing[0], spacing[1])

    def stacks(self) -> list[dict[str, Any]]:
        """Every stack: key, subject, kind, n_slices, rows, cols and geometry."""
        with self.reading() as db:
            rows = db.execute("SELECT key, subject, kind, n_slices, rows, cols, geometry FROM stacks ORDER BY id")
            return [{"key": r[0], "subject": r[1], "kind": r[2], "n_slices": r[3], "rows": r[4], "cols": r[5],
                     **json.loads(r[6])} for r in rows]

    def stack_array(self, key: str) -> np.ndarray:
        """Stack ``key``'s pixels ``[slice, row, col]`` (float32)."""
        with self.reading() as db:
            rows = db.execute("SELECT i.pixels, s.rows, s.cols FROM images i JOIN stacks s ON s.id = i.stack_id "
                              "WHERE s.key = ? ORDER BY i.slice", (key,)).fetchall()
        if not rows:
            raise InputError(f"{self.path} holds no stack {key!r}")
        return np.stack([_decode(b, r, c) for b, r, c in rows])

    # ---- meta ---------------------------------------------------------------------------------
    def meta(self, db: sqlite3.Connection | None = None) -> dict[str, str]:
        if db is None:
            with self.reading() as db2:
                return self.meta(db2)
        return dict(db.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, db: sqlite3.Connection, values: dict[str, Any]) -> None:
        """Set (value not None) or remove (None) meta entries inside a write transaction."""
        for k, v in values.items():
            if v is None:
                db.execute("DELETE FROM meta WHERE key = ?", (k,))
            else:
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, str(v)))

    def require_mode(self, mode: str, what: str) -> None:
        if self.mode != mode:
            raise InputError(f"{self.path} is a {MODE_NAMES[self.mode]} pool (mode {self.mode}); {what} belongs to "
                             f"{MODE_NAMES[mode]} (mode {mode})")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _unique(prefix: str, used: set[str]) -> str:
    while True:
        key = prefix + _token(4)
        if key not in used:
            used.add(key)
            return key


def _check_names(names: Sequence[str]) -> list[str]:
    out = []
    for n in names:
        n = str(n).strip()
        if not n or len(n) > 64 or any(c in n for c in ",\n\r\t") or not n.isprintable():
            raise InputError(f"rater name {n!r}: give 1–64 printable characters without commas")
        if n in out:
            raise InputError(f"rater {n!r} named twice")
        out.append(n)
    return out
