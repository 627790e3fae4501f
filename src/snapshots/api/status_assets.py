"""The status page's inline CSS and JavaScript, kept apart from the Python that renders the data.

Both are static (no data in them), so they need no escaping; the page sends them with a
per-request CSP nonce, which is why there are no inline `style=` or `onclick=` attributes.
"""

from __future__ import annotations

STYLE = """
:root { --green: #1a7f37; --amber: #b7791f; --red: #c62828; --grey: #8a8f98; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #1f2328; }
header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: baseline; }
h1 { font-size: 1.4rem; margin: 0; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 0.5rem; }
.meta, .muted { color: #656d76; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3rem 0.6rem; border-bottom: 1px solid #d0d7de; vertical-align: top; }
th { font-weight: 600; background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.dot { display: inline-block; width: 0.7rem; height: 0.7rem; border-radius: 50%; margin-right: 0.4rem; }
.green .dot { background: var(--green); } .amber .dot { background: var(--amber); }
.red .dot { background: var(--red); } .grey .dot { background: var(--grey); }
tr.grey { color: var(--grey); }
tr.failing { background: #ffebe9; }
tr.failing td:first-child { border-left: 4px solid var(--red); }
.error { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-word; }
meter { width: 10rem; }
button { font: inherit; padding: 0.1rem 0.6rem; cursor: pointer; }
output { margin-left: 0.5rem; }
output.ok { color: var(--green); } output.bad { color: var(--red); }
"""

SCRIPT = """
(function () {
  "use strict";
  var STORE = "snapshots.token";
  var open = document.body.dataset.auth === "open";
  var RELOAD_MS = Number(document.body.dataset.reloadSeconds) * 1000;
  var input = document.getElementById("token");
  if (input) {
    input.value = sessionStorage.getItem(STORE) || "";
    input.addEventListener("input", function () {
      sessionStorage.setItem(STORE, input.value.trim());
    });
  }
  function describe(status, body) {
    if (body && body.error) { return status + " " + body.error.code + ": " + body.error.message; }
    if (body && body.keys) {
      var counts = {};
      body.keys.forEach(function (k) { counts[k.status] = (counts[k.status] || 0) + 1; });
      var parts = Object.keys(counts).map(function (s) { return s + " " + counts[s]; });
      return parts.length ? parts.join(", ") : "no keys";
    }
    if (body && body.status) { return body.status + " (run " + body.run_id + ")"; }
    return String(status);
  }
  var timer;
  function reload() {
    if (input && document.activeElement === input) { timer = setTimeout(reload, 1000); return; }
    location.reload();
  }
  function schedule() { clearTimeout(timer); timer = setTimeout(reload, RELOAD_MS); }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-url]");
    if (!button) { return; }
    var out = button.nextElementSibling;
    var headers = { Accept: "application/json" };
    var token = open ? "" : sessionStorage.getItem(STORE) || "";
    if (token) { headers.Authorization = "Bearer " + token; }
    button.disabled = true;
    out.className = "";
    out.textContent = "\\u2026";
    schedule();  // leave the answer on screen for a full period
    fetch(button.dataset.url, { method: "POST", headers: headers, credentials: "omit" })
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (body) {
          out.className = response.ok ? "ok" : "bad";
          out.textContent = describe(response.status, body);
        });
      })
      .catch(function (error) { out.className = "bad"; out.textContent = "no answer: " + error; })
      .finally(function () { button.disabled = false; });
  });
  schedule();
})();
"""
