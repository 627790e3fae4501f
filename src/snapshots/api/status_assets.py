"""The status page's inline CSS and JavaScript, kept apart from the Python that renders the data.

Both are static (no data in them), so they need no escaping; the page sends them with a
per-request CSP nonce, which is why there are no inline `style=` or `onclick=` attributes.
In token mode the script builds the tables from the JSON API with the DOM (`textContent`,
`setAttribute`; never `innerHTML`), so upstream text stays text.
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
form#auth { display: flex; gap: 0.5rem; align-items: baseline; margin: 0; }
#message:empty { display: none; }
#message { padding: 0.5rem 0.8rem; border-left: 4px solid var(--amber); background: #fff8e5; }
#message.bad { border-left-color: var(--red); background: #ffebe9; }
"""

SCRIPT = """
(function () {
  "use strict";
  var STORE = "snapshots.token";
  var body = document.body;
  var open = body.dataset.auth === "open";
  var RELOAD_MS = Number(body.dataset.reloadSeconds) * 1000;
  var FAILING = ["failed", "rejected"];
  var input = document.getElementById("token");
  var message = document.getElementById("message");
  var timer;
  var loads = 0;

  function token() { return open ? "" : sessionStorage.getItem(STORE) || ""; }
  function headers() {
    var h = { Accept: "application/json" };
    if (token()) { h.Authorization = "Bearer " + token(); }
    return h;
  }

  // Elements from data: text nodes and attributes only, so nothing in the data is markup.
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (attrs[name] !== null && attrs[name] !== undefined) { node.setAttribute(name, String(attrs[name])); }
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }
  function span(seconds) {
    var units = [["d", 86400], ["h", 3600], ["m", 60]];
    for (var i = 0; i < units.length; i++) {
      if (seconds >= units[i][1]) { return +(seconds / units[i][1]).toFixed(1) + units[i][0]; }
    }
    return +seconds.toFixed(1) + "s";
  }
  function table(head, rows, empty) {
    if (!rows.length) { return el("p", { "class": "muted" }, [empty]); }
    return el("table", {}, [
      el("thead", {}, [el("tr", {}, head.map(function (h) { return el("th", {}, [h]); }))]),
      el("tbody", {}, rows)
    ]);
  }
  function button(url, label) {
    return [el("button", { type: "button", "data-url": url }, [label]), el("output", { "aria-live": "polite" })];
  }
  function num(value) { return el("td", { "class": "num" }, [value === null ? "" : String(value)]); }
  function path(text) { return encodeURIComponent(text).replace(/%2F/g, "/"); }

  function colour(d) {
    if (!d.enabled) { return ["grey", "disabled: " + d.disabled_reason]; }
    if (d.failing) { return ["red", d.failing + " failing"]; }
    if (d.stale) { return ["amber", d.stale + " stale"]; }
    return ["green", d.keys ? "all fresh" : "no keys yet"];
  }
  function datasetsTable(datasets) {
    return table(["Dataset", "State", "Provider", "TTL", "Keys", "Fresh", "Stale", "Failing", ""],
      datasets.map(function (d) {
        var c = colour(d);
        var action = d.enabled && d.keys
          ? button("/api/v1/datasets/" + encodeURIComponent(d.dataset) + "/refresh", "Refresh all") : [];
        return el("tr", { "class": c[0], "data-dataset": d.dataset }, [
          el("td", {}, [el("span", { "class": "dot" }), d.dataset]), el("td", {}, [c[1]]),
          el("td", {}, [d.provider]), el("td", {}, [span(d.ttl_seconds)]),
          num(d.keys), num(d.fresh), num(d.stale), num(d.failing), el("td", {}, action)
        ]);
      }), "No datasets are configured.");
  }
  function failingTable(failing) {
    var now = Date.now();
    return table(["Dataset", "Key", "Outcome", "Last refresh", "Last error", ""],
      failing.map(function (f) {
        var d = f[0], k = f[1];
        var url = "/api/v1/refresh/" + encodeURIComponent(d.dataset) + "/" + path(k.key);
        var when = k.last_refresh_at ? span(Math.max(0, now - Date.parse(k.last_refresh_at)) / 1000) + " ago" : "";
        return el("tr", { "class": "failing", "data-dataset": d.dataset, "data-key": k.key }, [
          el("td", {}, [d.dataset]), el("td", {}, [k.key]), el("td", {}, [k.last_outcome || ""]),
          el("td", {}, [when]), el("td", { "class": "error" }, [k.last_error || ""]),
          el("td", {}, d.enabled ? button(url, "Refresh") : [])
        ]);
      }), "No failing keys.");
  }
  function providersTable(providers) {
    return table(["Provider", "Used in period", "Tokens left", "Waiting", "Notes"],
      providers.filter(function (p) { return p.datasets.length; }).map(function (p) {
        var b = p.budget, gauge;
        if (!b) {
          return el("tr", { "class": "grey", "data-provider": p.provider }, [
            el("td", {}, [p.provider]),
            el("td", { colspan: 4, "class": "muted" }, ["no active worker has published this budget yet"])
          ]);
        }
        if (b.limit) {
          gauge = [el("meter", { min: 0, max: b.limit, low: b.limit * 0.7, high: b.limit * 0.9, optimum: 0,
                                 value: b.used_in_period }),
                   " " + b.used_in_period + " / " + b.limit + " per " + span(b.period_seconds || 0)];
        } else {
          gauge = [el("span", { "class": "muted" }, ["unlimited"]), " (" + b.used_in_period + " used)"];
        }
        var notes = [];
        if (p.disabled_reason) { notes.push("disabled: " + p.disabled_reason); }
        if (b.paused_for_seconds > 0) {
          notes.push("paused for " + b.paused_for_seconds.toFixed(1) + " s: " + (b.pause_reason || ""));
        }
        if (p.plan && p.plan.stretch > 1) {
          notes.push("intervals stretched x" + p.plan.stretch.toFixed(2) + " to fit the budget");
        }
        var waiting = Object.keys(b.waiting).reduce(function (n, k) { return n + b.waiting[k]; }, 0);
        return el("tr", { "class": p.disabled_reason ? "grey" : "", "data-provider": p.provider }, [
          el("td", {}, [p.provider]), el("td", {}, gauge), num(b.tokens_left), num(waiting),
          el("td", {}, [notes.join("; ")])
        ]);
      }), "No providers in use.");
  }

  function say(text, bad) { message.className = bad ? "bad" : ""; message.textContent = text; }
  function clear() {
    ["datasets", "failing", "providers"].forEach(function (id) { document.getElementById(id).replaceChildren(); });
    document.getElementById("data").hidden = true;
  }
  function ask(text) {
    clear();
    say(text, true);
    input.focus();
  }
  function problem(status, body) {
    return body && body.error ? status + " " + body.error.code + ": " + body.error.message : "HTTP " + status;
  }
  function getJson(url) {
    return fetch(url, { headers: headers(), credentials: "omit", cache: "no-store" }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (!response.ok) { var error = new Error(problem(response.status, body)); error.status = response.status; throw error; }
        return body;
      });
    });
  }
  // Token mode: fetch what the page shows with the session's token and draw it.
  function load() {
    clearTimeout(timer);
    if (!token()) {
      ask("This service has API tokens: enter a reader or operator token to see its datasets " +
          "(it is kept in this tab's session storage only).");
      return;
    }
    var mine = ++loads;
    Promise.all([getJson("/api/v1/datasets"), getJson("/api/v1/providers")]).then(function (answers) {
      var datasets = answers[0];
      var failingOf = datasets.filter(function (d) { return d.failing; }).map(function (d) {
        return getJson("/api/v1/datasets/" + encodeURIComponent(d.dataset) + "/keys").then(function (keys) {
          return keys.filter(function (k) { return FAILING.indexOf(k.last_outcome) >= 0; })
                     .map(function (k) { return [d, k]; });
        });
      });
      return Promise.all(failingOf).then(function (lists) { return [datasets, [].concat.apply([], lists), answers[1]]; });
    }).then(function (data) {
      if (mine !== loads) { return; }
      document.getElementById("datasets").replaceChildren(datasetsTable(data[0]));
      document.getElementById("failing-count").textContent = String(data[1].length);
      document.getElementById("failing").replaceChildren(failingTable(data[1]));
      document.getElementById("providers").replaceChildren(providersTable(data[2]));
      document.getElementById("data").hidden = false;
      document.getElementById("updated").textContent = new Date().toISOString().slice(0, 19).replace("T", " ") + " UTC";
      document.body.dataset.loads = String(mine);  // which load is on screen (tests wait on it)
      say("", false);
      schedule();
    }).catch(function (error) {
      if (mine !== loads) { return; }
      if (error.status === 401 || error.status === 403) {
        sessionStorage.removeItem(STORE);
        ask("The token was refused (" + error.message + "). Enter a reader or operator token.");
        return;
      }
      say("Could not load the status (" + (error.message || error) + "); trying again shortly.", true);
      schedule();
    });
  }

  function describe(status, body) {
    if (status === 403 && !open) {
      return "403 forbidden: refreshing needs an operator token; enter one above";
    }
    if (status === 401 && !open) { return problem(status, body) + "; enter a token above"; }
    if (body && body.error) { return problem(status, body); }
    if (body && body.keys) {
      var counts = {};
      body.keys.forEach(function (k) { counts[k.status] = (counts[k.status] || 0) + 1; });
      var parts = Object.keys(counts).map(function (s) { return s + " " + counts[s]; });
      return parts.length ? parts.join(", ") : "no keys";
    }
    if (body && body.status) { return body.status + " (run " + body.run_id + ")"; }
    return String(status);
  }
  function again() { if (open) { location.reload(); } else { load(); } }
  function schedule() { clearTimeout(timer); timer = setTimeout(again, RELOAD_MS); }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-url]");
    if (!button) { return; }
    var out = button.nextElementSibling;
    button.disabled = true;
    out.className = "";
    out.textContent = "\\u2026";
    schedule();  // leave the answer on screen for a full period
    fetch(button.dataset.url, { method: "POST", headers: headers(), credentials: "omit" })
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (body) {
          out.className = response.ok ? "ok" : "bad";
          out.textContent = describe(response.status, body);
        });
      })
      .catch(function (error) { out.className = "bad"; out.textContent = "no answer: " + error; })
      .finally(function () { button.disabled = false; });
  });

  if (open) { schedule(); return; }
  input.value = token();
  document.getElementById("auth").addEventListener("submit", function (event) {
    event.preventDefault();
    var value = input.value.trim();
    if (value) { sessionStorage.setItem(STORE, value); } else { sessionStorage.removeItem(STORE); }
    load();
  });
  document.getElementById("forget").addEventListener("click", function () {
    sessionStorage.removeItem(STORE);
    input.value = "";
    load();
  });
  load();
})();
"""
