"""Labelling tools: the ranking engine and the visual-analogue thresholds, with simulated raters on phantom LGE stacks.

**Ranking** (slice-level card): held-out phantom LGE stacks (extended beyond base and apex, as for
the slice-level classifier) go into a ranking pool; three simulated raters (bias 0 / +0.05 /
−0.05 LV lengths, noise σ per look; :mod:`cmrlib.labelling.simulate`) take turns through
:mod:`cmrlib.labelling.tasks` until every image has been seen 3 times, then answer the
cut-point questions. Truth: each slice's long-axis level, 0 at the too-basal / LV boundary (ring
completeness ½ in the phantom's anatomy) and 1 at the epicardial apex, so its sign and the 1
give the phantom's SCMR class exactly. Reported: Spearman of the final (fitted) ordering with the
truth after each pass (1, 2, 3 views per image), and after 3 for the live ratings and for
constant-K Elo replayed on the same answers; the classes from the cut points against the truth
(and, as a bound, from the best two cuts on the same ordering), beside one-at-a-time labels by the same raters
(each image judged alone, noise × 1.5, bias not cancelled), their inter-rater κ (card: 0.77),
the agreement of the two label sets (the card took one-at-a-time labels as truth) and McNemar's
test of the two against the truth — against the majority of the three raters' one-at-a-time
labels (about as many looks as the ranking's) and against rater A's alone (the card's one
labeller per method). One session per noise level. The card compared *classifiers trained* on each label set
(0.86 vs 0.72, p = 0.02); this compares the labels themselves.

**Visual-analogue scoring** (LGE-certainty card): the LV slices of the same stacks; two raters
score them with :func:`cmrlib.quality.data.simulate_raters` at the noise
:func:`~cmrlib.quality.data.calibrate_rater_sd` fits to the published Spearman 0.82; the
engine's agreement gives the limits and the derived class thresholds (published: limits about
±25–28, thresholds 25 / 75).

**Load**: four simulated raters answer one pool at the same time through `cmr label serve`'s HTTP
API on 127.0.0.1 (next task, its images, the answer) for a bounded time; every acknowledged answer
must be in the pool once, and the response times are reported.

Environment: CMR_BENCH_SUBJECTS (stacks; default 30), CMR_BENCH_LOAD_SECONDS (per mode; default 20).
"""
from __future__ import annotations

import os
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np
from scipy import stats

from cmrlib.labelling import ranking, vas
from cmrlib.labelling.pool import Pool, StackInput
from cmrlib.labelling.simulate import SimulatedRater, level_class
from cmrlib.labelling.tasks import answer, next_task
from cmrlib.metrics import cohen_kappa, mcnemar
from cmrlib.phantom.sets import extended_phantom
from cmrlib.quality.data import TEST_SEED_BASE, calibrate_rater_sd, phantom_lge_stack, simulate_raters

RATER_BIASES = (0.0, 0.05, -0.05)  # LV lengths
NOISE_LEVELS = (0.05, 0.10, 0.15)  # LV lengths per look; a slice step is 0.09–0.14
VAS_SEEDS = 5
CLASSIFIER_NOISE = 0.15  # LV lengths per look: where the two label sets differ most (the card's p = 0.02)


def long_axis_level(seed: int, slices: list[dict]) -> list[float]:
    """Each slice's true level (module docstring) from the subject's phantom anatomy."""
    from scipy.optimize import brentq
    anat = extended_phantom(seed, False, np.random.default_rng(seed + 5)).anat  # the stack's own phantom
    z_basal = brentq(lambda z: anat.ring_completeness(z) - 0.5, -40.0, 0.5 * anat.l_epi)
    levels = [(st["material_z_mm"] - z_basal) / (anat.l_epi - z_basal) for st in slices]
    assert [level_class(v) for v in levels] == [st["class"] for st in slices], "level and SCMR class disagree"
    return levels


def phantom_stacks(n: int, seed_base: int = TEST_SEED_BASE) -> list[dict]:
    out = []
    for i in range(n):
        seed = seed_base + i
        series = phantom_lge_stack(seed)
        img, slices = series.image, series.truth["slices"]
        out.append({"seed": seed, "image": img, "slices": slices, "levels": long_axis_level(seed, slices)})
    return out


def _stack(img, array: np.ndarray, seed: int) -> StackInput:
    return StackInput(array, img.spacing, img.origin, img.direction, img.meta.get("kind"), f"subject {seed}")


def ranking_session(stacks: list[dict], sd: float, folder: Path) -> dict:
    pool, keys = Pool.create(folder / f"rank_{sd:g}.sqlite", [_stack(s["image"], s["image"].array, s["seed"])
                                                               for s in stacks], "rank",
                             raters=[f"rater {c}" for c in "ABC"], seed=11)
    by_stack = {stack: s for s, (_, stack) in zip(stacks, keys)}
    truth = {im.key: by_stack[im.stack]["levels"][im.slice] for im in pool.images()}
    raters = [SimulatedRater(f"rater {c}", level_bias=b, level_sd=sd, seed=100 + k)
              for k, (c, b) in enumerate(zip("ABC", RATER_BIASES))]

    def spearman(order) -> float:
        return float(stats.spearmanr([truth[im.key] for im in order], np.arange(len(order))).statistic)

    passes, seconds, questions, t0 = {}, {"rank": [], "classify": []}, 0, time.perf_counter()
    active = list(raters)
    while active:
        for rater in list(active):
            task = next_task(pool, rater.name)
            if task.kind == "done":
                active.remove(rater)
                continue
            t = time.perf_counter()
            result = answer(pool, rater.name, **rater.answer(task, truth))
            seconds[task.kind].append(time.perf_counter() - t)
            questions += task.kind == "classify"
            views = result.get("progress", {}).get("views_min", 0)
            if task.kind == "rank" and views not in passes and views >= 1:
                passes[views] = spearman(ranking.ordering(pool))
    session_s = time.perf_counter() - t0
    flat = ranking.replay_ratings(pool, use_volatility=False)
    flat_order = sorted(pool.images(), key=lambda im: (-flat[im.key][0], im.position))
    live_order = sorted(pool.images(), key=lambda im: (-im.rating, im.position))
    labelled, cuts = ranking.labels(pool)
    keys_in_order = [im.key for im, _, _ in labelled]
    true_cls = np.array([level_class(truth[k]) for k in keys_in_order])
    ranked_cls = np.array([c for _, _, c in labelled])
    b1, b2, _ = ranking.fit_cut_points(len(true_cls), {r: [c] for r, c in enumerate(true_cls)})  # the best cuts
    best_cls = np.array(ranking.SLICE_CLASSES)[(np.arange(len(true_cls)) >= b1).astype(int)
                                               + (np.arange(len(true_cls)) >= b2)]
    alone = np.array([[r.classify(k, truth) for k in keys_in_order] for r in raters])  # one at a time, each rater
    classes = list(ranking.SLICE_CLASSES)
    majority = np.array([max(classes, key=lambda c: (list(col).count(c), c == "LV")) for col in alone.T])
    idx = {c: i for i, c in enumerate(classes)}
    kappas = [cohen_kappa([idx[c] for c in alone[a]], [idx[c] for c in alone[b]], 3)
              for a, b in combinations(range(len(raters)), 2)]
    test = mcnemar(ranked_cls == true_cls, majority == true_cls)
    single = mcnemar(ranked_cls == true_cls, alone[0] == true_cls)  # rater A alone, as the card's one labeller
    with pool.reading() as db:
        n_batches = db.execute("SELECT COUNT(*) FROM batches WHERE submitted IS NOT NULL").fetchone()[0]
    pool.close()
    ms = {k: 1000 * np.array(v) for k, v in seconds.items()}
    return {
        "pool": pool.path,
        "labels": {"key": keys_in_order, "ranking": ranked_cls, "rater A": alone[0], "majority": majority,
                   "truth": true_cls},
        "passes": {"noise σ (LV lengths)": sd, "images": len(truth), "batches": n_batches,
                   "Spearman 1 view": round(passes.get(1, float("nan")), 4),
                   "Spearman 2 views": round(passes.get(2, float("nan")), 4),
                   "Spearman 3 views": round(passes.get(3, float("nan")), 4),
                   "3 views, live rating": round(spearman(live_order), 4),
                   "3 views, constant-K Elo": round(spearman(flat_order), 4),
                   "pairs as ordered %": round(100 * ranking.pair_agreement(pool)["agreement"], 1),
                   "session s": round(session_s, 1)},
        "classes": {"noise σ (LV lengths)": sd, "cut-point questions": questions,
                    "cuts (basal / LV / apical)": f"{cuts['c1']} / {cuts['c2'] - cuts['c1']} / "
                                                  f"{len(truth) - cuts['c2']}",
                    "truth (basal / LV / apical)": " / ".join(str(int((true_cls == c).sum())) for c in classes),
                    "ranking + cuts acc %": round(100 * float(np.mean(ranked_cls == true_cls)), 1),
                    "ranking + best cuts acc % (bound)": round(100 * float(np.mean(best_cls == true_cls)), 1),
                    "one-at-a-time acc % (per rater)": round(100 * float(np.mean(alone == true_cls[None])), 1),
                    "one-at-a-time acc % (majority of 3)": round(100 * float(np.mean(majority == true_cls)), 1),
                    "one-at-a-time inter-rater κ": round(float(np.mean(kappas)), 3),
                    "ranking vs one-at-a-time agreement %": round(100 * float(np.mean(ranked_cls == majority)), 1),
                    "McNemar vs majority: only ranking / only one-at-a-time right": f"{test.only_a} / {test.only_b}",
                    "McNemar p (vs majority)": round(test.p, 4),
                    "McNemar p (vs rater A alone)": round(single.p, 4)},
        "speed": [{"answer": kind, "answers": v.size, "ms p50": round(float(np.median(v)), 2),
                   "ms p95": round(float(np.percentile(v, 95)), 2)} for kind, v in ms.items() if v.size],
    }


# ---- the card's experiment: slice-level classifiers trained on each label set ----------------
LABEL_SETS = {"ranking": "ranking + cut points (3 raters, 3 views each)",
              "rater A": "one at a time, rater A alone (the card's one labeller)",
              "majority": "one at a time, majority of the 3 raters",
              "truth": "the phantom's own class (ceiling)"}
LABEL_SLUGS = {"ranking": "ranking", "rater A": "rater-a", "majority": "majority", "truth": "truth"}


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def label_set_folders(n_stacks: int, sd: float, root: Path) -> tuple[dict[str, Path], dict]:
    """Each label set of one ranking session on ``n_stacks`` *training* phantom stacks as a
    `cmr train slice-level --data` folder: the ranking's own export (`cmr label export`), and the
    same images with the one-at-a-time labels or the truth in ``slice_levels.csv``. Kept in ``root``
    and reused while the stacks and noise are the same; returns the folders and the labels'
    accuracy on the training pool."""
    import json
    import shutil

    from cmrlib.labelling.outputs import LEVELS_CSV, RANKING_CSV, csv_text, export
    from cmrlib.quality.data import TRAIN_SEED_BASE
    folders = {k: root / LABEL_SLUGS[k] for k in LABEL_SETS}
    stamp, key = root / "label_sets.json", {"stacks": n_stacks, "noise": sd, "seed_base": TRAIN_SEED_BASE}
    if stamp.is_file() and json.loads(stamp.read_text())["key"] == key:
        return folders, json.loads(stamp.read_text())["accuracy"]
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    session = ranking_session(phantom_stacks(n_stacks, TRAIN_SEED_BASE), sd, root)
    labels = session["labels"]
    folders["ranking"].mkdir()
    with Pool(session["pool"]) as pool:
        export(pool, folders["ranking"])
    import csv
    rows = list(csv.DictReader((folders["ranking"] / RANKING_CSV).open()))
    where = {k: i for i, k in enumerate(labels["key"])}
    assert all(r["class"] == labels["ranking"][where[r["key"]]] for r in rows), "export and session disagree"
    for name in ("rater A", "majority", "truth"):
        folders[name].mkdir()
        shutil.copytree(folders["ranking"] / "images", folders[name] / "images")
        (folders[name] / LEVELS_CSV).write_text(csv_text(["image", "slice", "class"], [
            {"image": r["image"], "slice": r["slice"], "class": labels[name][where[r["key"]]]} for r in rows]))
    accuracy = {name: round(100 * float(np.mean(labels[name] == labels["truth"])), 1) for name in LABEL_SETS}
    stamp.write_text(json.dumps({"key": key, "accuracy": accuracy, "images": len(rows)}))
    return folders, accuracy


def train_classifier(folder: Path, label_set: str, n_stacks: int, seed: int, models: Path, cache: Path) -> str:
    """`cmr train slice-level --data folder` (compact, from scratch); a model already in ``models`` is reused."""
    from cmrlib.cli import main
    from cmrlib.models.zoo import read_manifest
    name = f"slice-level-{LABEL_SLUGS[label_set]}-n{n_stacks}-s{seed}"
    if any(e.name == name for e in read_manifest(models)):
        return name
    argv = ["train", "slice-level", "--data", str(folder), "--preset", "compact", "--seed", str(seed),
            "--epochs", str(_env("CMR_BENCH_LABEL_EPOCHS", 25)), "--steps", str(_env("CMR_BENCH_LABEL_STEPS", 60)),
            "--name", name, "--out", str(models), "--cache", str(cache), "--quiet"]
    if main(argv) != 0:
        raise RuntimeError(f"training {name} failed")
    return name


def classifier_experiment(n_stacks: int, sd: float) -> tuple[list[dict], list[dict]]:
    """The card's ranking-vs-one-at-a-time experiment (module docstring): rows per label set (mean ±
    sd over training seeds) and McNemar's test per seed."""
    import torch

    from cmrlib.device import pick_device
    from cmrlib.metrics import mcnemar
    from cmrlib.models.zoo import clear_model_cache, load_model, model_installed
    from cmrlib.quality.evaluate import PUBLISHED_SLICE_LEVEL, multiclass_stats, slice_level_probabilities
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    cache = Path(os.environ.get("CMR_BENCH_LABEL_CACHE", ".cache/labelling"))
    models = cache / "bench-models"
    folders, label_accuracy = label_set_folders(n_stacks, sd, cache / f"label-sets-n{n_stacks}")
    seeds = range(_env("CMR_BENCH_LABEL_SEEDS", 4))
    names = {k: [train_classifier(folders[k], k, n_stacks, s, models, cache / "checkpoints") for s in seeds]
             for k in LABEL_SETS}
    from cmrlib.models.zoo import read_manifest
    entries = {e.name: e for e in read_manifest(models)}
    train_minutes = sum(float(entries[n].metrics.get("minutes", 0.0)) for ns in names.values() for n in ns)
    os.environ["CMR_MODELS_DIR"] = os.pathsep.join([str(models), os.environ.get("CMR_MODELS_DIR", "")]).strip(os.pathsep)
    clear_model_cache()
    dev = pick_device(None)
    test = phantom_stacks(_env("CMR_BENCH_LABEL_TEST", 40))
    classes = list(ranking.SLICE_CLASSES)
    y = np.array([classes.index(st["class"]) for s in test for st in s["slices"]])
    # the card's framing: one-at-a-time labels of the test images as the truth (rater A, same noise)
    rater = SimulatedRater("rater A", level_bias=RATER_BIASES[0], level_sd=sd, seed=100)
    levels = {f"{s['seed']}:{k}": v for s in test for k, v in enumerate(s["levels"])}
    y_rater = np.array([classes.index(rater.classify(k, levels)) for k in levels])

    def probabilities(name: str) -> np.ndarray:
        model = load_model(name, device=dev)
        return np.concatenate([slice_level_probabilities(s["image"], model) for s in test])

    def mean_sd(values: list[float]) -> str:
        v = np.array(values, float)
        return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"

    probs = {k: [probabilities(n) for n in names[k]] for k in LABEL_SETS}
    rows = []
    for k, what in LABEL_SETS.items():
        stats_ = [multiclass_stats(y, p) for p in probs[k]]
        rows.append({"trained on": what, "label accuracy on the training pool %": label_accuracy[k],
                     "seeds": len(stats_), "accuracy": mean_sd([r["accuracy"] for r in stats_]),
                     "macro AUC": mean_sd([r["macro_auc"] for r in stats_]),
                     "macro F1": mean_sd([r["macro_f1"] for r in stats_]),
                     "accuracy vs rater A's one-at-a-time test labels": mean_sd(
                         [float(np.mean(p.argmax(1) == y_rater)) for p in probs[k]])})
    if model_installed("slice-level-compact"):
        r = multiclass_stats(y, probabilities("slice-level-compact"))
        rows.append({"trained on": "bundled slice-level-compact: 600 phantom subjects, true classes",
                     "label accuracy on the training pool %": 100.0, "seeds": 1, "accuracy": f"{r['accuracy']:.3f}",
                     "macro AUC": f"{r['macro_auc']:.3f}", "macro F1": f"{r['macro_f1']:.3f}",
                     "accuracy vs rater A's one-at-a-time test labels": "—"})
    rows.append({"trained on": "published (seed 004, 333 test images): ranking / one at a time",
                 "label accuracy on the training pool %": "", "seeds": "",
                 "accuracy": f"{PUBLISHED_SLICE_LEVEL['accuracy']} / 0.72", "macro AUC": "0.95 / 0.86",
                 "macro F1": "0.86 / 0.75", "accuracy vs rater A's one-at-a-time test labels": "(their truth)"})
    rows[0]["training minutes (all models)"] = round(train_minutes, 1)
    tests = []
    for other in ("rater A", "majority"):
        for s, (pr, po) in enumerate(zip(probs["ranking"], probs[other])):
            m = mcnemar(pr.argmax(1) == y, po.argmax(1) == y)
            m_card = mcnemar(pr.argmax(1) == y_rater, po.argmax(1) == y_rater)
            tests.append({"ranking-trained vs": LABEL_SETS[other], "seed": s, "test slices": int(y.size),
                          "only ranking-trained right / only the other": f"{m.only_a} / {m.only_b}",
                          "McNemar p (phantom truth)": round(m.p, 4),
                          "McNemar p (rater A's labels as truth, the card's)": round(m_card.p, 4)})
    return rows, tests


def vas_session(stacks: list[dict], folder: Path) -> list[dict]:
    lv = [(s, [k for k, st in enumerate(s["slices"]) if st["class"] == "LV"]) for s in stacks]
    lv = [(s, ks) for s, ks in lv if ks]
    likelihood = np.array([s["slices"][k]["lge_likelihood"] for s, ks in lv for k in ks], float)
    cal = calibrate_rater_sd(likelihood, seed=0)
    rows, t0 = [], time.perf_counter()
    for seed in range(VAS_SEEDS):
        pool, keys = Pool.create(folder / f"vas_{seed}.sqlite", [_stack(s["image"], s["image"].array[ks], s["seed"])
                                                                 for s, ks in lv], "vas", raters=["A", "B"], seed=seed)
        order = {stack: n for n, (_, stack) in enumerate(keys)}
        offsets = np.cumsum([0] + [len(ks) for _, ks in lv])
        scores = simulate_raters(likelihood, cal["sd"], np.random.default_rng(1000 + seed))
        raters = {}
        for im in pool.images():
            row = offsets[order[im.stack]] + im.slice
            for r, name in enumerate(("A", "B")):
                raters.setdefault(name, {})[im.key] = scores[row, r]
        for name, table in raters.items():
            for key, score in table.items():
                answer(pool, name, image=key, score=round(float(score), 2))
        agreement = vas.agreement(pool)
        pool.close()
        p = agreement["pooled"]
        rows.append({"raters' noise seed": seed, "LV images": len(likelihood), "rater noise SD": cal["sd"],
                     "Spearman ρ": round(p["spearman"], 3), "bias": round(p["bias"], 2),
                     "95 % limits": f"{p['lower']:.1f} … {p['upper']:.1f}",
                     "class agreement 25/75 %": round(100 * p["class_agreement"], 1),
                     "thresholds": f"{agreement['thresholds'][0]:.1f} / {agreement['thresholds'][1]:.1f}"})
    low = [float(r["thresholds"].split(" / ")[0]) for r in rows]
    rows.append({"raters' noise seed": "mean", "LV images": len(likelihood), "rater noise SD": cal["sd"],
                 "Spearman ρ": round(float(np.mean([r["Spearman ρ"] for r in rows])), 3), "bias": "",
                 "95 % limits": "", "class agreement 25/75 %": round(float(np.mean([r["class agreement 25/75 %"]
                                                                                    for r in rows])), 1),
                 "thresholds": f"{np.mean(low):.1f} / {100 - np.mean(low):.1f} (SD {np.std(low, ddof=1):.1f})"})
    rows.append({"raters' noise seed": "published (seed 000)", "LV images": "", "rater noise SD": "",
                 "Spearman ρ": 0.82, "bias": "", "95 % limits": "about ±25–28", "class agreement 25/75 %": 86.0,
                 "thresholds": "25 / 75"})
    rows[0]["seconds (all seeds)"] = round(time.perf_counter() - t0, 1)
    return rows


def load_session(stacks: list[dict], mode: str, seconds: float, folder: Path) -> dict:
    """Four raters through the web server for ``seconds`` (module docstring)."""
    import http.client
    import json
    import threading

    from cmrlib.labelling.web import LabellingServer
    names = [f"rater {k}" for k in range(1, 5)]
    pool, keys = Pool.create(folder / f"load_{mode}.sqlite", [_stack(s["image"], s["image"].array, s["seed"])
                                                              for s in stacks], mode, raters=names, seed=3)
    by_stack = {stack: s for s, (_, stack) in zip(stacks, keys)}
    truth = {im.key: by_stack[im.stack]["levels"][im.slice] for im in pool.images()}
    server = LabellingServer(pool, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = server.server_address[1]
    latency: list[float] = []
    acknowledged: list[tuple] = []
    errors: list[str] = []
    stop = time.perf_counter() + seconds

    def request(method: str, path: str, rater: str, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        t0 = time.perf_counter()
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"X-Rater": rater, "Content-Type": "application/json"})
        reply = conn.getresponse()
        data = reply.read()
        latency.append(time.perf_counter() - t0)
        conn.close()
        if reply.status != 200:
            errors.append(f"{reply.status} {data[:200]!r}")
            return None
        return json.loads(data) if reply.getheader("Content-Type") == "application/json" else data

    def work(name: str, k: int) -> None:
        rater = SimulatedRater(name, level_sd=0.05, seed=k)
        rng = np.random.default_rng(k)
        while time.perf_counter() < stop:
            task = request("GET", "/api/next", name)
            if task is None or task["kind"] not in ("score", "rank"):
                return
            for key in task["images"]:
                request("GET", f"/api/image/{key}.png", name)
            body = ({"image": task["images"][0], "score": round(float(rng.uniform(0, 100)), 1)}
                    if task["kind"] == "score" else {"batch": task["batch"], "order": rater.order(task["images"], truth)})
            result = request("POST", "/api/answer", name, body)
            if result is None:
                return
            acknowledged.append((name, task["batch"] if task["kind"] == "rank" else task["images"][0]))

    threads = [threading.Thread(target=work, args=(n, k)) for k, n in enumerate(names)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    wall = time.perf_counter() - t0
    server.shutdown()
    server.server_close()
    with pool.reading() as db:
        stored = db.execute("SELECT COUNT(*) FROM scores" if mode == "vas" else
                            "SELECT COUNT(*) FROM batches WHERE submitted IS NOT NULL").fetchone()[0]
    pool.close()
    ms = 1000 * np.array(latency)
    return {"mode": mode, "raters": len(names), "seconds": round(wall, 1), "requests": len(latency),
            "answers acknowledged": len(acknowledged), "answers in the pool": stored,
            "lost or doubled": abs(stored - len(acknowledged)) + len(acknowledged) - len(set(acknowledged)),
            "errors": len(errors), "ms p50": round(float(np.median(ms)), 1),
            "ms p95": round(float(np.percentile(ms, 95)), 1)}


def run():
    n = int(os.environ.get("CMR_BENCH_SUBJECTS", "30"))
    stacks = phantom_stacks(n)
    with tempfile.TemporaryDirectory() as tmp:
        sessions = [ranking_session(stacks, sd, Path(tmp)) for sd in NOISE_LEVELS]
        yield ("Ranking engine: Spearman of the final ordering with the true long-axis level after each pass "
               f"({n} held-out phantom stacks, 3 simulated raters)"), [s["passes"] for s in sessions]
        yield ("Slice level from the two cut points vs one-at-a-time labels by the same raters, against the "
               "phantom's SCMR class"), [s["classes"] for s in sessions]
        yield "Engine speed per answer (SQLite commit included)", [
            {"noise σ": sd, **row} for sd, s in zip(NOISE_LEVELS, sessions) for row in s["speed"]]
        yield "Visual-analogue scoring: thresholds from the inter-rater limits (raters at the published ρ 0.82)", \
            vas_session(stacks, Path(tmp))
        n_stacks = _env("CMR_BENCH_LABEL_CLASSIFIERS", 120)
        if n_stacks:
            rows, tests = classifier_experiment(n_stacks, CLASSIFIER_NOISE)
            yield (f"The card's experiment: slice-level classifiers (compact, from scratch) trained on each label set "
                   f"of {n_stacks} training phantom stacks (raters' noise σ {CLASSIFIER_NOISE:g}), scored on "
                   f"{_env('CMR_BENCH_LABEL_TEST', 40)} held-out stacks against the phantom's class"), rows
            yield "McNemar's test: the ranking-trained classifier against each one-at-a-time-trained one, per seed", \
                tests
        seconds = float(os.environ.get("CMR_BENCH_LOAD_SECONDS", "20"))
        yield (f"Load: 4 simulated raters at once through `cmr label serve` on 127.0.0.1 (bounded: {seconds:g} s "
               "per mode; each answer is next task + its images as PNG + the answer)"), \
            [load_session(stacks, mode, seconds, Path(tmp)) for mode in ("vas", "rank")]
