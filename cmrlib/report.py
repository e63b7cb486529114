"""``report.html``: one offline page per study that a clinician can read.

Order: findings first (every capability's numbers), then its figures (PNG files beside the
page), then the steps skipped or failed with the reason, the files that could not be read,
and provenance (software version, models with their notice, device, timings). Each capability
contributes its section through ``Capability.report`` (``(step_summary, out_dir) ->
ReportSection``); this module knows no capability. No external resource is referenced: the
page and its images open from a copied folder without a network.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from .atomic import write_text_atomic
from .contract import Capability, ReportSection, resolve

REPORT = "report.html"

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:70em;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1.05em}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left}
th{background:#f3f3f3}td.value{text-align:right;font-weight:600;font-variant-numeric:tabular-nums}
.warning{background:#fff4d6;border:1px solid #e0b84a;padding:.5em .8em;margin:.8em 0}
.failed{color:#a00}tr.fail td.status{background:#f6d0d0;color:#900;font-weight:600}
tr.pass td.status{background:#d5f0d5;color:#060}.muted{color:#666;font-size:.9em}figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figure img{max-width:42em;border:1px solid #ddd}figcaption{font-size:.9em;color:#444}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _table_html(table) -> str:
    """A section's per-item table; the last column of a row with a status is coloured by it."""
    head = "".join(f"<th>{_e(h)}</th>" for h in table.header)
    rows = []
    for i, row in enumerate(table.rows):
        status = table.row_status[i] if i < len(table.row_status) else ""
        cells = [f"<td>{_e(c)}</td>" for c in row]
        if status and cells:
            cells[-1] = f"<td class='status'>{_e(row[-1])}</td>"
        rows.append(f"<tr class='{_e(status)}'>{''.join(cells)}</tr>")
    return f"<table><caption>{_e(table.caption)}</caption><tr>{head}</tr>{''.join(rows)}</table>"


def sections(summary: dict[str, Any], out_dir: Path, caps: tuple[Capability, ...] | list[Capability]) -> list[tuple[str, ReportSection]]:
    """(command, section) of every step that is done and whose capability has a report."""
    out = []
    for cap in caps:
        step = summary["steps"].get(cap.command)
        if cap.report and step and step["status"] == "done":
            out.append((cap.command, resolve(cap.report)(step["result"], out_dir)))
    return out


def render(summary: dict[str, Any], out_dir: Path, caps) -> str:
    """The page's HTML for a `cmr run` summary (see :func:`cmrlib.study.run_study`)."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>SlicerCMR report — "
             f"{_e(Path(summary['study']).name)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>SlicerCMR study report</h1><p class='muted'>study {_e(summary['study'])} · "
             f"{_e(summary.get('started', ''))} · {_e(summary['software'])}</p>"]
    secs = sections(summary, out_dir, caps)
    phantom = [m for m in summary.get("models", []) if m.get("phantom_trained")]
    if phantom:
        parts.append("<div class='warning'><b>Not for clinical use.</b> Results below come from "
                     + ", ".join(_e(m["name"]) for m in phantom)
                     + ": phantom-trained demonstration weights, trained on the synthetic SlicerCMR phantom.</div>")
    parts.append("<h2>Findings</h2>")
    if not secs:
        parts.append("<p>No capability produced findings for this study (see the steps below).</p>")
    for command, sec in secs:
        if not sec.findings:
            continue
        parts.append(f"<h3>{_e(sec.title)}</h3><table><tr><th>finding</th><th>value</th><th>unit</th><th>note</th></tr>")
        for k, f in enumerate(sec.findings):
            parts.append(f"<tr><td>{_e(f.label)}</td><td class='value' data-step='{_e(command)}' data-index='{k}'>"
                         f"{_e(f.text())}</td><td>{_e(f.unit)}</td><td>{_e(f.note)}</td></tr>")
        parts.append("</table>")
        for table in sec.tables:
            parts.append(_table_html(table))
    if any(sec.figures for _, sec in secs):
        parts.append("<h2>Figures</h2>")
        for _, sec in secs:
            for fig in sec.figures:
                parts.append(f"<figure><img src='{_e(fig.path)}' alt='{_e(fig.caption)}'>"
                             f"<figcaption>{_e(fig.caption)}</figcaption></figure>")
    notes = [(sec.title, n) for _, sec in secs for n in sec.notes]
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(t)}: {_e(n)}</li>" for t, n in notes) + "</ul>")
    parts.append(_steps_html(summary))
    parts.append(_files_html(summary))
    parts.append(_provenance_html(summary))
    parts.append("</body></html>")
    return "\n".join(parts)


def _steps_html(summary: dict[str, Any]) -> str:
    rows = []
    for name, s in summary["steps"].items():
        detail = s.get("reason") or s.get("error") or "; ".join(s.get("lines", []))
        cls = " class='failed'" if s["status"] == "failed" else ""
        rows.append(f"<tr{cls}><td>{_e(name)}</td><td>{_e(s['status'])}</td><td>{_e(detail)}</td>"
                    f"<td class='value'>{_e(s.get('seconds', ''))}</td></tr>")
    out = ["<h2>Steps</h2><table><tr><th>step</th><th>status</th><th>details</th><th>s</th></tr>", *rows, "</table>"]
    if summary.get("not_in_this_version"):
        out.append("<p class='muted'>Not in this version: " + "; ".join(_e(x) for x in summary["not_in_this_version"]) + "</p>")
    return "\n".join(out)


def _files_html(summary: dict[str, Any]) -> str:
    out = [f"<h2>Series</h2><ul>" + "".join(f"<li>{_e(s)}</li>" for s in summary["series"]) + "</ul>"]
    problems = summary.get("series_problems") or {}
    if problems:
        out.append("<p>Series problems:</p><ul>" + "".join(f"<li>{_e(d)}: {_e('; '.join(p))}</li>"
                                                          for d, p in problems.items()) + "</ul>")
    skipped = summary.get("skipped_files") or []
    if skipped:
        out.append(f"<p>{len(skipped)} file(s) not used:</p><ul>"
                   + "".join(f"<li>{_e(k['path'])}: {_e(k['reason'])}</li>" for k in skipped[:200]) + "</ul>")
    return "\n".join(out)


def _provenance_html(summary: dict[str, Any]) -> str:
    rows = [("software", summary["software"]), ("device", summary.get("device", "")),
            ("total time", f"{summary.get('seconds', '')} s")]
    rows += [(f"model {m['name']}", f"v{m['version']} ({m['architecture']}), {m['notice']}, sha256 {m['sha256'][:12]}…")
             for m in summary.get("models", [])]
    rows += [(f"step {n}", f"{s.get('seconds', '—')} s") for n, s in summary["steps"].items() if s["status"] != "skipped"]
    return ("<h2>Provenance</h2><table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
            + "</table>")


def write_report(summary: dict[str, Any], out_dir: Path, caps) -> Path:
    """Write ``out_dir/report.html`` for ``summary``; return its path."""
    return write_text_atomic(Path(out_dir) / REPORT, render(summary, Path(out_dir), caps))
