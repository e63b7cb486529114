"""A pool's status: images, raters, answers, coverage and agreement so far (`cmr label status`)."""
from __future__ import annotations

from typing import Any

from . import ranking, vas
from .pool import MODE_NAMES, Pool


def pool_status(pool: Pool) -> dict[str, Any]:
    """The pool's status as JSON-able dict (what `cmr label status` prints)."""
    images = pool.images()
    out = {"pool": str(pool.path), "mode": pool.mode, "mode_name": MODE_NAMES[pool.mode], "images": len(images),
           "stacks": len({im.stack for im in images}), "subjects": len({im.subject for im in images}),
           "raters": list(pool.raters())}
    if pool.mode == "vas":
        out["coverage"] = vas.coverage(pool)
        out["agreement"] = vas.agreement(pool)
    else:
        with pool.reading() as db:
            out["batches"] = {"submitted": db.execute("SELECT COUNT(*) FROM batches WHERE submitted IS NOT NULL")
                              .fetchone()[0],
                              "open": db.execute("SELECT COUNT(*) FROM batches WHERE submitted IS NULL").fetchone()[0],
                              "class_answers": db.execute("SELECT COUNT(*) FROM classes").fetchone()[0]}
        out["progress"] = ranking.progress(images, pool.target_views)
        out["agreement"] = ranking.pair_agreement(pool)
        out["cut_points"] = ranking.cut_points(pool)
        out["mean_volatility"] = round(sum(im.volatility for im in images) / len(images), 4) if images else None
    return out


def status_lines(s: dict[str, Any]) -> list[str]:
    """The status as `cmr label status` prints it."""
    lines = [f"{s['pool']}: {s['mode_name']} (mode {s['mode']}), {s['images']} images from {s['stacks']} stacks "
             f"({s['subjects']} subjects); raters: {', '.join(s['raters']) or 'none yet'}"]
    if s["mode"] == "vas":
        c = s["coverage"]
        per = ", ".join(f"{r} {n}/{c['images']}" for r, n in c["raters"].items())
        lines.append(f"  answers: {c['scores']} scores ({per or 'none'}); {c['scored_twice']} images scored by ≥ 2 "
                     f"raters, {c['scored_once']} by ≥ 1")
        a = s["agreement"]
        if a["pooled"] is None:
            lines.append(f"  agreement: not yet ({a['reason']})")
        else:
            p = a["pooled"]
            rho = "—" if p["spearman"] is None else f"{p['spearman']:.2f}"
            lines.append(f"  agreement ({len(a['pairs'])} rater pair(s), {p['n']} paired scores): Spearman ρ {rho}, "
                         f"mean difference {p['bias']:.1f}, 95 % limits {p['lower']:.1f} … {p['upper']:.1f}; same "
                         f"class at 25 / 75: {100 * p['class_agreement']:.0f} %")
            lines.append(f"  class thresholds from the limits: {a['thresholds'][0]:g} / {a['thresholds'][1]:g} "
                         "(the card's 25 / 75)")
    else:
        b, pr, a = s["batches"], s["progress"], s["agreement"]
        lines.append(f"  answers: {b['submitted']} batches ranked ({b['open']} open), {b['class_answers']} class "
                     f"answers; views per image min {pr['views_min']}, median {pr['views_median']:g}, max "
                     f"{pr['views_max']}; {pr['seen_enough']}/{pr['images']} seen ≥ {pr['target_views']} times"
                     + (" — ranking done" if pr["done"] else ""))
        if a["agreement"] is not None:
            per = ", ".join(f"{r} {100 * v:.0f} %" for r, v in a["raters"].items())
            lines.append(f"  agreement: {100 * a['agreement']:.1f} % of {a['pairs']} ranked pairs as the current "
                         f"ordering has them ({per}); mean volatility {s['mean_volatility']:.2f}")
        cut = s["cut_points"]
        if cut is None:
            lines.append("  cut points: none yet (answer the boundary questions after ranking, or `cmr label cut`)")
        else:
            n = s["images"]
            lines.append(f"  cut points ({cut['source']}): {cut['c1']} too basal, {cut['c2'] - cut['c1']} LV, "
                         f"{n - cut['c2']} too apical" + ("" if cut.get("settled", True) else " — not settled yet"))
    return lines
