"""The ops page's HTML: Python string templates, an inline SVG chart and one small script.

No build step and no assets: one response holds the page. Every value from Redis is escaped
here; the only script is inline with a per-response nonce (the CSP allows nothing else), and
it only counts the subscriptions' expiry down between two loads of the page.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ingest.dlq import FailedJob
from ingest.ops_data import Snapshot
from workers.usage import Minute

STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;color:#1d1d1f;"
    "font-size:14px}header{background:#23395d;color:#fff;padding:10px 24px;display:flex;"
    "align-items:center;gap:16px}header h1{font-size:18px;margin:0;flex:1}"
    "main{padding:12px 24px;display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));"
    "gap:14px}section{background:#fff;border-radius:6px;padding:10px 16px;"
    "box-shadow:0 1px 3px rgba(0,0,0,.12)}section.wide{grid-column:1/-1}h2{font-size:15px;"
    "margin:4px 0 8px}table{border-collapse:collapse;width:100%}td,th{text-align:left;"
    "padding:3px 6px;border-bottom:1px solid #eee;vertical-align:top}th{font-weight:600}"
    "code,pre{font-size:12px}pre{white-space:pre-wrap;word-break:break-all;background:#f7f7f9;"
    "padding:8px}"
    ".warn{color:#9a3b00}.ok{color:#1b6e20}.bad{color:#b00020}.muted{color:#666}"
    ".note{background:#fff6d6;padding:6px 24px}button{cursor:pointer}"
    ".signin{max-width:460px;margin:10vh auto;display:block}input[type=password]{width:100%;"
    "padding:6px;margin:6px 0 10px;box-sizing:border-box}"
)
# Counts the expiry down from the seconds the server measured (no trust in the client clock).
SCRIPT = (
    "const t0=Date.now();function tick(){for(const e of document.querySelectorAll('[data-left]'))"
    "{const s=Math.round(+e.dataset.left-(Date.now()-t0)/1000);e.textContent=left(s);"
    "e.className=s<3600?'bad':'ok'}}function left(s){if(s<=0)return 'expired';"
    "const d=Math.floor(s/86400),h=Math.floor(s%86400/3600),m=Math.floor(s%3600/60);"
    "return (d?d+' d ':'')+(d||h?h+' h ':'')+m+' min '+(d?'':s%60+' s')}"
    "tick();setInterval(tick,1000);"
)


def e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def when(iso: str | None) -> str:
    """An ISO timestamp to the second, as the page shows times (all UTC)."""
    return (iso or "")[:19].replace("T", " ")


def countdown(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    days, rest = divmod(max(seconds, 0), 86400)
    text = f"{days} d {rest // 3600} h" if days else f"{rest // 3600} h {rest % 3600 // 60} min"
    text = text if seconds > 0 else "expired"
    cls = "bad" if seconds < 3600 else "ok"
    return f'<span class="{cls}" data-left="{int(seconds)}">{text}</span>'


def _bar(cls: str, x: float, y: float, width: float, height: float, title: str) -> str:
    colour = "#3c8d40" if cls == "ok" else "#c62828"
    return (f'<rect class="{cls}" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{height:.1f}" fill="{colour}"><title>{title}</title></rect>')  # fmt: skip


def chart(minutes: list[Minute], width: int = 600, height: int = 90) -> str:
    """Jobs ended per minute over the hour as stacked bars (ok below, failed on top)."""
    top = max([m.ok + m.failed for m in minutes] + [1])
    slot = width / max(len(minutes), 1)
    bars = []
    for i, m in enumerate(minutes):
        x = i * slot + 1
        ok_h = (height - 12) * m.ok / top
        bad_h = (height - 12) * m.failed / top
        when = datetime.fromtimestamp(m.minute * 60, UTC).strftime("%H:%M")
        title = f"{when} UTC: {m.ok} ok, {m.failed} failed"
        if m.ok:
            bars.append(_bar("ok", x, height - ok_h, slot - 2, ok_h, title))
        if m.failed:
            bars.append(_bar("failed", x, height - ok_h - bad_h, slot - 2, bad_h, title))
    total_ok = sum(m.ok for m in minutes)
    total_bad = sum(m.failed for m in minutes)
    return (
        f'<svg id="throughput" viewBox="0 0 {width} {height}" width="100%" height="{height}" '
        f'role="img" aria-label="jobs per minute, last hour">'
        f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#999"/>'
        f'<text x="2" y="10" font-size="10" fill="#666">max {top}/min</text>{"".join(bars)}</svg>'
        f'<p class="muted">last hour: {total_ok} jobs ok, {total_bad} failed (per minute, '
        "the latest on the right)</p>"
    )


def _rows(rows: Iterable[str], empty: str, columns: int) -> str:
    body = "".join(rows)
    return body or f'<tr><td colspan="{columns}" class="muted">{e(empty)}</td></tr>'


def _form(action: str, csrf: str, label: str, **fields: str) -> str:
    hidden = "".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">'
                     for k, v in fields.items())  # fmt: skip
    return (f'<form method="post" action="{action}"><input type="hidden" name="csrf" '
            f'value="{e(csrf)}">{hidden}<button>{e(label)}</button></form>')  # fmt: skip


def _subscription(s: dict[str, Any]) -> str:
    if s["warnings"]:
        state = f'<span class="bad">{e("; ".join(s["warnings"]))}</span>'
    else:
        state = '<span class="ok">healthy</span>'
    if s["last_error"]:
        state += f'<br><span class="muted">last error: {e(s["last_error"])}</span>'
    return (f'<tr><td><code>{e(s["id"])}</code><br><span class="muted">{e(s["resource"])}'
            f'</span></td><td>{e(s["kind"])}</td><td>{countdown(s["expires_in_seconds"])}</td>'
            f'<td>{e(when(s["last_notification"]) or "never")}</td><td>{state}</td>'
            "</tr>")  # fmt: skip


def _failed(j: FailedJob, csrf: str) -> str:
    return (f'<tr data-job="{e(j.id)}"><td><code>{e(j.id)}</code><br>{e(j.stage)}</td>'
            f"<td>{e(j.meeting or j.resource or '-')}</td>"
            f"<td><strong>{e(j.error_class or 'error')}</strong>: {e(j.error)}<br>"
            f'<span class="muted">failed {j.attempts}x, last {e(when(j.last_failure))}</span>'
            "</td>"
            f"<td>{_form('/ops/requeue', csrf, 'Requeue', job_id=j.id)}</td></tr>")  # fmt: skip


def _meeting(m: dict[str, str]) -> str:
    link = f"/ops?meeting={quote(m['meeting_key'])}#story"
    return (f'<tr><td><a href="{e(link)}">{e(m["subject"] or "(no subject)")}</a><br>'
            f'<code class="muted">{e(m["meeting_key"])}</code></td>'
            f'<td>{e(when(m["start"])[:16])}</td>'
            f'<td>{e(m["decision"] or "-")}<br><span class="muted">'
            f'{e(m["explanation"] or m["reason"])}</span></td><td>{e(m["outcome"])}<br>'
            f'<span class="muted">{e(m["outcome_reason"])}</span></td>'
            f'<td>{e(when(m["outcome_at"]))}</td></tr>')  # fmt: skip


def render(snap: Snapshot, csrf: str, nonce: str, note: str | None = None) -> str:
    warnings = "".join(f'<li class="warn">{e(w)}</li>' for w in snap.warnings)
    subs = _rows(map(_subscription, snap.subscriptions), "no subscriptions", 5)
    queues = "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in snap.queues.items())
    failed = _rows((_failed(j, csrf) for j in snap.failed), "no failed jobs", 4)
    meetings = _rows(map(_meeting, snap.meetings), "no meeting has an outcome yet", 5)
    outcomes = ", ".join(f"{e(k)} {v}" for k, v in snap.outcomes.items())
    story = ""
    if snap.story is not None:
        story = f'<pre id="story">{e(snap.story)}</pre>'
    elif snap.search_error:
        story = f'<p id="story" class="warn">{e(snap.search_error)}</p>'
    banner = f'<div class="note" id="note">{e(note)}</div>' if note else ""
    stamp = e(snap.at.strftime("%Y-%m-%d %H:%M:%S UTC"))
    calls = snap.calls
    return page(
        "Operations",
        f"""<header><h1>Teams transcripts → Salesforce: operations</h1>
<span style="color:#cfd8e3">{stamp}</span><a href="/ops" style="color:#fff">refresh</a>
{_form("/ops/logout", csrf, "Sign out")}</header>{banner}
<main><section class="wide" id="warnings"><h2>Warnings</h2>
{"<ul>" + warnings + "</ul>" if warnings else '<p class="ok">none</p>'}</section>
<section class="wide" id="subscriptions"><h2>Subscriptions</h2><table><tr><th>id</th><th>kind</th>
<th>expires in</th><th>last notification</th><th>health</th></tr>{subs}</table></section>
<section id="queues"><h2>Queue <code>{e(snap.queue)}</code></h2><table>{queues}
<tr><th>workers</th><td>{snap.workers}</td></tr></table></section>
<section id="chart"><h2>Jobs per minute</h2>{chart(snap.throughput)}</section>
<section id="usage"><h2>API calls today (UTC)</h2><table>
<tr><th>Graph requests</th><td id="graph-calls">{calls.get("graph", 0)}</td></tr>
<tr><th>Salesforce API calls</th><td id="salesforce-calls">{calls.get("salesforce", 0)}</td>
</tr></table></section>
<section class="wide" id="failed"><h2>Failed jobs ({snap.queues.get("failed", 0)})</h2><table>
<tr><th>job</th><th>meeting</th><th>reason</th><th></th></tr>{failed}</table></section>
<section class="wide" id="meetings"><h2>Latest meetings</h2>
<p class="muted">all meetings: {outcomes}</p><table><tr><th>meeting</th><th>start</th>
<th>decision</th><th>outcome</th><th>at (UTC)</th></tr>{meetings}</table></section>
<section class="wide" id="search"><h2>Explain a meeting</h2><form method="get" action="/ops#story">
<input name="meeting" size="60" placeholder="online meeting id, callRecord id or meeting key"
value="{e(snap.search or "")}"> <button>Explain</button></form>{story}</section></main>
<script nonce="{nonce}">{SCRIPT}</script>""",
    )


def sign_in(message: str | None = None) -> str:
    note = f'<p class="bad" id="note">{e(message)}</p>' if message else ""
    return page(
        "Sign in: operations",
        f"""<section class="signin"><h2>Operations: sign in</h2>
{note}<form method="post" action="/ops/login"><label for="token">Ops token
(<code>INGEST_OPS_TOKEN</code>)</label><input type="password" id="token" name="token"
autocomplete="current-password" required><button>Sign in</button></form></section>""",
    )


def page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f'<meta name="viewport" content="width=device-width"><meta name="referrer" '
        f'content="no-referrer"><style>{STYLE}</style></head><body>{body}</body></html>'
    )
