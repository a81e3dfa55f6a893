/* railtracks view: the run viewer's page (no framework, no build step, no network beyond 'self').
 *
 * Every value that comes from a run is untrusted: it only ever reaches the
 * page as text (textContent, text nodes, attribute values set with
 * setAttribute on inert attributes), never as markup.
 */
(function () {
  "use strict";

  var ROW_H = 28;
  var OVERSCAN = 12;
  var STATUSES = ["completed", "failed", "timeout", "cancelled", "running", "unreadable",
    "crashed", "unfinished"];
  var dataNode = document.getElementById("rt-data");
  var FILE = dataNode ? JSON.parse(dataNode.textContent) : null;
  var app = document.getElementById("app");

  // -- small helpers ------------------------------------------------------------

  function h(tag, props) {
    var el = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (key) {
        var value = props[key];
        if (value === undefined || value === null) return;
        if (key === "class") el.className = value;
        else if (key === "text") el.textContent = value;
        else if (key.slice(0, 2) === "on") el.addEventListener(key.slice(2), value);
        else el.setAttribute(key, value);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function fmtDur(us) {
    if (us === null || us === undefined || !isFinite(us)) return "–";
    if (us < 1) return (us * 1000).toFixed(0) + "ns";
    if (us < 1000) return (us < 10 ? us.toFixed(1) : us.toFixed(0)) + "µs";
    var ms = us / 1000;
    if (ms < 1000) return (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0)) + "ms";
    var s = ms / 1000;
    if (s < 60) return s.toFixed(2) + "s";
    return Math.floor(s / 60) + "m " + Math.round(s % 60) + "s";
  }

  function fmtTime(iso) {
    if (!iso) return "–";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
  }

  function show(value) {
    if (typeof value === "string") return value;
    try { return JSON.stringify(value, null, 2); } catch (e) { return String(value); }
  }

  function fill(el) {
    el.replaceChildren();
    for (var i = 1; i < arguments.length; i++) if (arguments[i]) el.append(arguments[i]);
    return el;
  }

  function isEmpty(value) {
    if (value === null || value === undefined) return true;
    if (Array.isArray(value)) return value.length === 0;
    if (typeof value === "object") return Object.keys(value).length === 0;
    return false;
  }

  function pill(status) {
    var known = STATUSES.indexOf(status) >= 0 ? status : "";
    return h("span", { class: "pill " + known, text: String(status || "unknown") });
  }

  function runHref(src, key, spanId) {
    var href = "#/run/" + encodeURIComponent(src) + "/" + encodeURIComponent(key);
    return spanId ? href + "/span/" + encodeURIComponent(spanId) : href;
  }

  // -- data ---------------------------------------------------------------------

  function getJSON(url) {
    return fetch(url, { cache: "no-store", credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error(r.status === 404 ? "not found" : "HTTP " + r.status);
      return r.json();
    });
  }

  var api = {
    runs: function () {
      if (FILE) return Promise.resolve({ version: 0, runs: [FILE.run] });
      return getJSON("/api/runs");
    },
    run: function (src, key) {
      if (FILE) return Promise.resolve(FILE.run);
      return getJSON("/api/runs/" + encodeURIComponent(src) + "/" + encodeURIComponent(key));
    },
    span: function (src, key, id) {
      if (FILE) {
        return Promise.resolve(Object.prototype.hasOwnProperty.call(FILE.details, id) ? FILE.details[id] : null);
      }
      return getJSON("/api/runs/" + encodeURIComponent(src) + "/" + encodeURIComponent(key) +
        "/spans/" + encodeURIComponent(id));
    },
  };

  // -- routing ------------------------------------------------------------------

  var timers = [];
  var keyHandler = null;
  var filters = { q: "", status: "" };

  function stopPage() {
    timers.forEach(function (t) { clearInterval(t); });
    timers = [];
    keyHandler = null;
  }

  function parseRoute() {
    var raw = location.hash.replace(/^#\/?/, "");
    var parts;
    try { parts = raw ? raw.split("/").map(decodeURIComponent) : []; } catch (e) { parts = []; }
    if (parts[0] === "run" && parts.length >= 3) {
      return { page: "run", src: parts[1], key: parts[2], span: parts[3] === "span" ? parts[4] : null };
    }
    if (FILE) return { page: "run", src: FILE.run.source, key: FILE.run.key, span: null };
    if (parts[0] === "compare" && parts.length >= 3) return { page: "compare", a: parts[1], b: parts[2] };
    return { page: "runs" };
  }

  var current = null;

  function route() {
    var r = parseRoute();
    if (current && current.page === "run" && r.page === "run" && current.src === r.src && current.key === r.key) {
      if (r.span && current.selectSpan) current.selectSpan(r.span, true);
      return;
    }
    stopPage();
    current = r;
    if (r.page === "run") runPage(r);
    else if (r.page === "compare" && window.railtracksCompare) window.railtracksCompare(r, ui());
    else runsPage();
  }

  document.addEventListener("keydown", function (ev) {
    var t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA")) {
      if (ev.key === "Escape") t.blur();
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (keyHandler && keyHandler(ev)) ev.preventDefault();
  });
  window.addEventListener("hashchange", route);

  function topbar(crumbs) {
    var bar = h("header", { class: "topbar" },
      h("a", { class: "brand", href: "#/" }, h("span", { class: "brand-mark" }), "railtracks", h("small", { text: "view" })),
      h("nav", { class: "crumbs" }, crumbs || null),
      h("div", { class: "spacer" }));
    if (FILE) {
      bar.append(h("div", { class: "receiver" }, "offline snapshot"));
    } else {
      bar.append(h("div", { class: "receiver", title: "OTLP/HTTP traces endpoint: point OTEL_EXPORTER_OTLP_ENDPOINT here" },
        h("span", { class: "pulse" }), "receiving OTLP at",
        h("span", { class: "mono", text: location.origin + "/v1/traces" })));
    }
    return bar;
  }

  // -- runs list ----------------------------------------------------------------

  function runsPage() {
    document.title = "railtracks · runs";
    var search = h("input", {
      class: "search", type: "search", placeholder: "Filter by name or trace id  ( / )",
      "aria-label": "filter runs by name", value: filters.q,
    });
    var chips = h("div", { class: "chips", role: "group", "aria-label": "filter by status" });
    var count = h("div", { class: "count" });
    var compareButton = h("button", { class: "chip compare-go", type: "button", disabled: "", title: "tick two saved runs to compare them",
      onclick: function () { if (chosen.length === 2) location.hash = "#/compare/" + chosen.map(encodeURIComponent).join("/"); } }, "Compare");
    var chosen = [];
    function choose(key, on) {
      chosen = chosen.filter(function (k) { return k !== key; });
      if (on) chosen.push(key);
      if (chosen.length > 2) chosen.shift();
      if (chosen.length === 2) compareButton.removeAttribute("disabled"); else compareButton.setAttribute("disabled", "");
      draw();
    }
    var body = h("tbody");
    var card = h("div", { class: "card" },
      h("table", { class: "runs" },
        h("thead", null, h("tr", null,
          h("th", { text: "Status" }), h("th", { text: "Run" }), h("th", { text: "Started" }),
          h("th", { class: "num", text: "Duration" }), h("th", { class: "num", text: "Nodes" }),
          h("th", { text: "Trace" }))),
        body));
    var page = h("main", { class: "page" },
      h("h1", { text: "Runs" }),
      h("p", { class: "lead", text: "Saved sessions of the state directory and runs received live over OTLP, newest first." }),
      h("div", { class: "toolbar" }, search, chips, compareButton, count),
      card);
    app.replaceChildren(topbar(h("span", { class: "here", text: "Runs" })), page);
    var runs = [];

    function draw() {
      var q = filters.q.trim().toLowerCase();
      var counts = {};
      runs.forEach(function (r) { counts[r.status] = (counts[r.status] || 0) + 1; });
      chips.replaceChildren();
      [""].concat(STATUSES).forEach(function (s) {
        if (s && !counts[s] && filters.status !== s) return;
        chips.append(h("button", {
          class: "chip" + (filters.status === s ? " on" : ""), type: "button", "data-status": s || "all",
          onclick: function () { filters.status = s; draw(); },
        }, s ? h("span", { class: "dot " + s }) : null, s || "All",
        h("span", { class: "n", text: String(s ? counts[s] : runs.length) })));
      });
      var shown = runs.filter(function (r) {
        if (filters.status && r.status !== filters.status) return false;
        if (!q) return true;
        return [r.name, r.key, r.trace_id].some(function (v) { return v && String(v).toLowerCase().indexOf(q) >= 0; });
      });
      count.textContent = shown.length + " of " + runs.length + " runs";
      body.replaceChildren();
      if (!shown.length) {
        body.append(h("tr", { class: "dead" }, h("td", { colspan: "6" }, h("div", { class: "empty" },
          h("strong", { text: runs.length ? "No run matches this filter" : "No runs yet" }),
          runs.length ? null : h("span", null, "Run a session (its state is saved here), or export to this viewer with ",
            h("code", { text: "OTEL_EXPORTER_OTLP_ENDPOINT=" + location.origin + " OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf" }))))));
        return;
      }
      shown.forEach(function (r) {
        var readable = r.status !== "unreadable";
        var href = runHref(r.source, r.key);
        var tr = h("tr", {
          class: readable ? "" : "dead", "data-key": r.key,
          onclick: readable ? function (ev) { if (ev.target.tagName !== "A") location.hash = href; } : null,
        },
          h("td", null, pill(r.status)),
          h("td", null,
            readable && r.source === "saved" ? compareBox(r.key) : null,
            readable ? h("a", { class: "run-name", href: href, text: r.name }) : h("span", { class: "run-name", text: r.name }),
            " ", r.source === "live" ? h("span", { class: "badge live", text: "live" }) : null,
            h("span", { class: "sub", text: readable ? r.key + ".json".slice(r.source === "live" ? 5 : 0) : String(r.reason || "unreadable") })),
          h("td", { title: r.start || "" }, fmtTime(r.start)),
          h("td", { class: "num" }, r.duration_s === null || r.duration_s === undefined ? "–" : fmtDur(r.duration_s * 1e6)),
          h("td", { class: "num" }, r.nodes === null || r.nodes === undefined ? "–" : String(r.nodes)),
          h("td", null, h("span", { class: "mono muted", text: r.trace_id ? r.trace_id.slice(0, 16) + "…" : "–", title: r.trace_id || "" })));
        body.append(tr);
      });
    }

    function compareBox(key) {
      var box = h("input", { type: "checkbox", class: "compare-pick", "aria-label": "compare this run", "data-key": key,
        onclick: function (ev) { ev.stopPropagation(); choose(key, box.checked); } });
      box.checked = chosen.indexOf(key) >= 0;
      return box;
    }

    search.addEventListener("input", function () { filters.q = search.value; draw(); });
    keyHandler = function (ev) {
      if (ev.key === "/") { search.focus(); return true; }
      return false;
    };
    var lastVersion = null;
    function load() {
      return api.runs().then(function (data) {
        var signature = data.version + ":" + data.runs.length + ":" + data.runs.map(function (r) { return r.key + r.status + r.nodes; }).join();
        if (signature === lastVersion) return;
        lastVersion = signature;
        runs = data.runs;
        draw();
      }).catch(function (e) {
        body.replaceChildren(h("tr", null, h("td", { colspan: "6", class: "errorline", text: "Could not load runs: " + e.message })));
      });
    }
    load();
    if (!FILE) timers.push(setInterval(load, 1500));
  }

  // -- run page -----------------------------------------------------------------

  function runPage(r) {
    app.replaceChildren(topbar(null), h("div", { class: "loading", text: "Loading run…" }));
    api.run(r.src, r.key).then(function (run) {
      if (current !== r) return;
      var view = new RunView(r, run);
      r.selectSpan = function (id, fromHash) { view.selectById(id, fromHash); };
      view.selectById(r.span || (run.rows.length ? run.rows[0][0] : null), true);
      if (!FILE && run.source === "live") {
        var ticks = 0;
        timers.push(setInterval(function () {
          // once the session has ended, late spans are still looked for, less often
          if (view.run.status !== "running" && ++ticks % 5) return;
          api.run(r.src, r.key).then(function (next) {
            if (current === r && next.version !== view.run.version) view.update(next);
          }).catch(function () { /* the next poll retries */ });
        }, 1000));
      }
    }).catch(function (e) {
      if (current !== r) return;
      app.replaceChildren(topbar(h("a", { href: "#/", text: "Runs" })),
        h("div", { class: "errorline", text: "Could not load this run: " + e.message }));
    });
  }

  function RunView(route, run) {
    this.route = route;
    this.collapsed = new Set();
    this.selected = -1;
    this.pool = [];
    this.detailToken = 0;
    this.build();
    this.update(run);
  }

  RunView.prototype.build = function () {
    var self = this;
    this.crumbName = h("span", { class: "here" });
    this.head = h("section", { class: "run-head" });
    this.axis = h("div", { class: "ticks" });
    this.zoomBar = h("div", { class: "zoom" },
      h("button", { type: "button", title: "zoom in (+)", text: "+", onclick: function () { self.zoom(0.5); } }),
      h("button", { type: "button", title: "zoom out (−)", text: "−", onclick: function () { self.zoom(2); } }),
      h("button", { type: "button", title: "zoom to selected span (z)", text: "fit", onclick: function () { self.zoomToSelected(); } }),
      h("button", { type: "button", title: "whole run (0)", text: "reset", onclick: function () { self.resetZoom(); } }));
    this.count = h("span", { class: "n" });
    this.grid = h("div", { class: "wf-grid" });
    this.spacer = h("div", { class: "wf-spacer" });
    this.scroller = h("div", { class: "wf-scroll", tabindex: "0", role: "tree", "aria-label": "call tree and waterfall" }, this.spacer);
    this.details = h("aside", { class: "details", "aria-label": "span details" });
    this.findInput = h("input", {
      class: "search find", type: "search", placeholder: "Find a span by name  ( f )", "aria-label": "find a span by name",
    });
    this.findCount = h("span", { class: "find-count" });
    this.findBox = h("div", { class: "findbox" }, this.findInput, this.findCount);
    this.findInput.addEventListener("input", function () { self.matches = null; self.findCount.textContent = ""; });
    this.findInput.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { ev.preventDefault(); self.findNext(ev.shiftKey ? -1 : 1); }
    });
    this.nameHead = h("div", { class: "wf-title" }, h("span", { class: "label", text: "Call tree" }), this.count, this.zoomBar);
    this.wfHead = h("div", { class: "wf-head" }, this.nameHead, h("div", { class: "wf-axis" }, this.axis));
    var wf = h("section", { class: "wf" },
      this.wfHead,
      h("div", { class: "wf-main" }, this.grid, this.scroller),
      h("div", { class: "wf-foot" },
        h("kbd", { text: "↑↓" }), " move  ", h("kbd", { text: "←→" }), " fold  ",
        h("kbd", { text: "+" }), h("kbd", { text: "−" }), " zoom  ", h("kbd", { text: "z" }), " fit span  ",
        h("kbd", { text: "0" }), " reset  · ctrl+wheel zooms, drag pans  ", FILE ? null : h("kbd", { text: "esc" }), FILE ? null : " runs",
        legend()));
    app.replaceChildren(topbar(FILE ? this.crumbName : h("span", null, h("a", { href: "#/", text: "Runs" }), " / ", this.crumbName)),
      this.head, h("div", { class: "run-body" }, wf, this.details));
    this.scroller.addEventListener("scroll", function () { self.render(); });
    window.addEventListener("resize", function () { if (current === self.route) self.render(); });
    this.bindPointer();
    keyHandler = function (ev) { return self.key(ev); };
  };

  function legend() {
    var el = h("span", { class: "legend" });
    ["completed", "failed", "timeout", "cancelled", "running", "foreign"].forEach(function (s) {
      var bar = s === "foreign" ? "bar completed foreign" : "bar " + s;
      el.append(h("span", null, h("i", { class: bar }), s));
    });
    return el;
  }

  RunView.prototype.update = function (run) {
    var selectedId = this.selected >= 0 && this.run ? this.run.rows[this.visible[this.selected]][0] : null;
    var sameWindow = this.run && this.v0 === 0 && this.v1 === this.total;
    this.run = run;
    var rows = run.rows;
    this.total = Math.max(run.total_us || 0, 1);
    if (!this.v1 || sameWindow) { this.v0 = 0; this.v1 = this.total; }
    this.index = new Map();
    this.hasKids = new Uint8Array(rows.length);
    this.parentOf = new Int32Array(rows.length);
    var stack = [];
    for (var i = 0; i < rows.length; i++) {
      this.index.set(rows[i][0], i);
      var d = rows[i][1];
      while (stack.length && rows[stack[stack.length - 1]][1] >= d) stack.pop();
      this.parentOf[i] = stack.length ? stack[stack.length - 1] : -1;
      if (stack.length) this.hasKids[stack[stack.length - 1]] = 1;
      stack.push(i);
    }
    document.title = "railtracks · " + run.name;
    this.crumbName.textContent = run.name;
    fill(this.head,
      h("h1", { text: run.name, title: run.name }), pill(run.status),
      run.source === "live" ? h("span", { class: "badge live", text: "live" }) : null,
      h("div", { class: "facts" },
        h("div", null, h("b", { text: "Started" }), h("span", { text: fmtTime(run.start), title: run.start || "" })),
        h("div", null, h("b", { text: "Duration" }), h("span", { text: run.duration_s === null ? "–" : fmtDur(run.duration_s * 1e6) })),
        h("div", null, h("b", { text: "Nodes" }), h("span", { text: Number(run.nodes).toLocaleString() })),
        usageFacts(run.usage),
        h("div", null, h("b", { text: "Trace" }), h("span", { class: "mono", text: run.trace_id || "–" }))),
      run.dropped ? h("span", { class: "warn", text: run.dropped + " spans over the viewer's limit were not kept" }) : null,
      this.findBox);
    this.matches = null;
    this.count.textContent = rows.length.toLocaleString() + " spans";
    this.recompute();
    if (selectedId !== null && this.index.has(selectedId)) this.selected = this.visibleIndexOf(this.index.get(selectedId));
    this.render();
  };

  RunView.prototype.findNext = function (step) {
    var q = this.findInput.value.trim().toLowerCase();
    if (!q) return;
    var rows = this.run.rows;
    if (!this.matches) {
      this.matches = [];
      for (var i = 0; i < rows.length; i++) if (String(rows[i][2]).toLowerCase().indexOf(q) >= 0) this.matches.push(i);
    }
    var n = this.matches.length;
    if (!n) { this.findCount.textContent = "no match"; return; }
    var at = this.selected >= 0 ? this.visible[this.selected] : -1;
    var k;
    if (step > 0) { k = 0; while (k < n && this.matches[k] <= at) k++; if (k === n) k = 0; }
    else { k = n - 1; while (k >= 0 && this.matches[k] >= at) k--; if (k < 0) k = n - 1; }
    this.findCount.textContent = (k + 1).toLocaleString() + " of " + n.toLocaleString();
    this.selectById(rows[this.matches[k]][0], true);
  };

  RunView.prototype.recompute = function () {
    var rows = this.run.rows;
    var out = new Int32Array(rows.length);
    var n = 0;
    var skipDepth = -1;
    for (var i = 0; i < rows.length; i++) {
      var d = rows[i][1];
      if (skipDepth >= 0) { if (d > skipDepth) continue; skipDepth = -1; }
      out[n++] = i;
      if (this.collapsed.has(rows[i][0])) skipDepth = d;
    }
    this.visible = out.subarray(0, n);
    this.spacer.style.height = n * ROW_H + "px";
  };

  RunView.prototype.visibleIndexOf = function (rowIndex) {
    // binary search: visible row indices are increasing
    var lo = 0, hi = this.visible.length - 1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1, v = this.visible[mid];
      if (v === rowIndex) return mid;
      if (v < rowIndex) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
  };

  RunView.prototype.x = function (us, width) { return ((us - this.v0) / (this.v1 - this.v0)) * width; };

  RunView.prototype.render = function () {
    var rows = this.run.rows;
    var top = this.scroller.scrollTop;
    var height = this.scroller.clientHeight || 600;
    var first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    var last = Math.min(this.visible.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    // the header leaves room for the scrollbar so its columns line up with the rows'
    this.wfHead.style.paddingRight = (this.scroller.offsetWidth - this.scroller.clientWidth) + "px";
    var barLeft = this.nameHead.getBoundingClientRect().width;
    var barWidth = Math.max(this.scroller.clientWidth - barLeft, 1);
    this.barLeft = barLeft;
    this.barWidth = barWidth;
    var needed = last - first;
    while (this.pool.length < needed) this.pool.push(this.newRow());
    for (var k = 0; k < this.pool.length; k++) {
      var el = this.pool[k];
      if (k >= needed) { el.root.hidden = true; continue; }
      var vi = first + k;
      var ri = this.visible[vi];
      var row = rows[ri];
      el.root.hidden = false;
      el.root.style.top = vi * ROW_H + "px";
      el.root.className = "row " + row[4] + (vi === this.selected ? " sel" : "");
      el.root.dataset.vi = String(vi);
      el.root.setAttribute("aria-selected", vi === this.selected ? "true" : "false");
      el.root.setAttribute("aria-level", String(row[1] + 1));
      el.cell.style.paddingLeft = 8 + row[1] * 14 + "px";
      el.toggle.textContent = this.hasKids[ri] ? (this.collapsed.has(row[0]) ? "▸" : "▾") : "";
      el.dot.className = "dot " + row[3];
      el.name.textContent = row[2];
      el.name.title = row[2];
      el.badge.hidden = row[4] !== "foreign";
      el.usage.textContent = row[7] || "";  // model calls' tokens and cost (SPEC 15)
      el.usage.hidden = !row[7];
      var t0 = row[5] === null ? 0 : row[5];
      var t1 = row[6] === null ? this.total : row[6];
      var x0 = this.x(t0, barWidth), x1 = this.x(t1, barWidth);
      el.bar.className = "bar " + row[3] + " " + row[4];
      el.bar.style.left = x0 + "px";
      el.bar.style.width = Math.max(x1 - x0, 2) + "px";
      el.dur.textContent = fmtDur(t1 - t0);
      // the duration goes after the bar, else before it, else inside it
      var after = x1 + 66 <= barWidth, before = x0 >= 70;
      el.dur.className = after || before ? "dur" : "dur inside";
      el.dur.style.left = after ? x1 + 6 + "px" : before ? "" : Math.max(x0, 0) + 6 + "px";
      el.dur.style.right = !after && before ? barWidth - x0 + 6 + "px" : "";
    }
    this.drawAxis(barLeft, barWidth);
  };

  RunView.prototype.newRow = function () {
    var self = this;
    var toggle = h("span", { class: "toggle" });
    var dot = h("span", { class: "dot" });
    var name = h("span", { class: "name" });
    var badge = h("span", { class: "badge foreign", text: "foreign" });
    var usage = h("span", { class: "badge usage" });
    var cell = h("div", { class: "cell-name" }, toggle, dot, name, badge, usage);
    var bar = h("div", { class: "bar" });
    var dur = h("span", { class: "dur" });
    var root = h("div", { class: "row", role: "treeitem" }, cell, h("div", { class: "cell-bar" }, bar, dur));
    toggle.addEventListener("click", function (ev) {
      ev.stopPropagation();
      self.toggle(self.visible[Number(root.dataset.vi)]);
    });
    root.addEventListener("click", function () {
      if (self.dragged) return;
      self.select(Number(root.dataset.vi));
    });
    root.addEventListener("dblclick", function () { self.zoomToSelected(); });
    this.spacer.append(root);
    return { root: root, cell: cell, toggle: toggle, dot: dot, name: name, badge: badge, usage: usage, bar: bar, dur: dur };
  };

  RunView.prototype.drawAxis = function (barLeft, barWidth) {
    var span = this.v1 - this.v0;
    var raw = span / Math.max(2, Math.floor(barWidth / 110));
    var pow = Math.pow(10, Math.floor(Math.log10(raw || 1)));
    var step = [1, 2, 5, 10].map(function (m) { return m * pow; }).find(function (s) { return s >= raw; }) || pow * 10;
    this.axis.replaceChildren();
    this.grid.replaceChildren();
    this.grid.style.left = barLeft + "px";
    for (var t = Math.ceil(this.v0 / step) * step; t <= this.v1 && this.axis.childNodes.length < 40; t += step) {
      var x = this.x(t, barWidth);
      var tick = h("div", { class: "tick", text: fmtDur(t) });
      tick.style.left = x + "px";
      this.axis.append(tick);
      var line = h("i");
      line.style.left = x + "px";
      this.grid.append(line);
    }
  };

  RunView.prototype.select = function (vi, noScroll) {
    if (vi < 0 || vi >= this.visible.length) return;
    this.selected = vi;
    var row = this.run.rows[this.visible[vi]];
    var hash = runHref(this.route.src, this.route.key, row[0]);
    if (location.hash !== hash) history.replaceState(null, "", hash);
    if (!noScroll) this.ensureVisible(vi);
    this.render();
    this.showDetails(row);
  };

  RunView.prototype.selectById = function (id, center) {
    if (id === null || id === undefined || !this.index.has(id)) {
      if (this.visible.length) this.select(0);
      return;
    }
    var ri = this.index.get(id);
    // unfold the ancestors so a deep-linked span is visible
    var changed = false;
    for (var p = this.parentOf[ri]; p >= 0; p = this.parentOf[p]) {
      if (this.collapsed.delete(this.run.rows[p][0])) changed = true;
    }
    if (changed) this.recompute();
    var vi = this.visibleIndexOf(ri);
    if (center) this.scroller.scrollTop = Math.max(0, vi * ROW_H - this.scroller.clientHeight / 2);
    this.select(vi, center);
  };

  RunView.prototype.ensureVisible = function (vi) {
    var top = vi * ROW_H, s = this.scroller;
    if (top < s.scrollTop) s.scrollTop = top;
    else if (top + ROW_H > s.scrollTop + s.clientHeight) s.scrollTop = top + ROW_H - s.clientHeight;
  };

  RunView.prototype.toggle = function (ri) {
    if (!this.hasKids[ri]) return;
    var id = this.run.rows[ri][0];
    var selectedRow = this.selected >= 0 ? this.visible[this.selected] : -1;
    if (this.collapsed.has(id)) this.collapsed.delete(id); else this.collapsed.add(id);
    this.recompute();
    var vi = selectedRow >= 0 ? this.visibleIndexOf(selectedRow) : -1;
    this.selected = vi >= 0 ? vi : this.visibleIndexOf(ri);
    this.render();
  };

  RunView.prototype.key = function (ev) {
    var vi = this.selected, ri = vi >= 0 ? this.visible[vi] : -1;
    var page = Math.max(1, Math.floor(this.scroller.clientHeight / ROW_H) - 1);
    switch (ev.key) {
      case "ArrowDown": case "j": this.select(Math.min(vi + 1, this.visible.length - 1)); return true;
      case "ArrowUp": case "k": this.select(Math.max(vi - 1, 0)); return true;
      case "PageDown": this.select(Math.min(vi + page, this.visible.length - 1)); return true;
      case "PageUp": this.select(Math.max(vi - page, 0)); return true;
      case "Home": this.select(0); return true;
      case "End": this.select(this.visible.length - 1); return true;
      case "ArrowRight": case "l":
        if (ri >= 0 && this.hasKids[ri]) {
          if (this.collapsed.has(this.run.rows[ri][0])) this.toggle(ri); else this.select(vi + 1);
        }
        return true;
      case "ArrowLeft": case "h":
        if (ri >= 0 && this.hasKids[ri] && !this.collapsed.has(this.run.rows[ri][0])) this.toggle(ri);
        else if (ri >= 0 && this.parentOf[ri] >= 0) this.select(this.visibleIndexOf(this.parentOf[ri]));
        return true;
      case "+": case "=": this.zoom(0.5); return true;
      case "-": case "_": this.zoom(2); return true;
      case "0": this.resetZoom(); return true;
      case "z": this.zoomToSelected(); return true;
      case "f": case "/": this.findInput.focus(); this.findInput.select(); return true;
      case "Escape": if (!FILE) { location.hash = "#/"; return true; } return false;
      default: return false;
    }
  };

  RunView.prototype.setWindow = function (v0, v1) {
    var minSpan = Math.max(this.total / 1e6, 0.001);
    if (v1 - v0 < minSpan) { var c = (v0 + v1) / 2; v0 = c - minSpan / 2; v1 = c + minSpan / 2; }
    var span = Math.min(v1 - v0, this.total);
    v0 = Math.min(Math.max(v0, 0), this.total - span);
    this.v0 = v0;
    this.v1 = v0 + span;
    this.render();
  };

  RunView.prototype.zoom = function (factor, centre) {
    var c = centre === undefined ? (this.v0 + this.v1) / 2 : centre;
    this.setWindow(c - (c - this.v0) * factor, c + (this.v1 - c) * factor);
  };

  RunView.prototype.resetZoom = function () { this.setWindow(0, this.total); };

  RunView.prototype.zoomToSelected = function () {
    if (this.selected < 0) return;
    var row = this.run.rows[this.visible[this.selected]];
    var t0 = row[5] === null ? 0 : row[5], t1 = row[6] === null ? this.total : row[6];
    var pad = Math.max((t1 - t0) * 0.05, 0.5);
    this.setWindow(t0 - pad, t1 + pad);
  };

  RunView.prototype.bindPointer = function () {
    var self = this;
    this.scroller.addEventListener("wheel", function (ev) {
      var rect = self.scroller.getBoundingClientRect();
      var x = ev.clientX - rect.left - self.barLeft;
      if (x < 0) return;
      if (ev.ctrlKey || ev.metaKey) {
        ev.preventDefault();
        var at = self.v0 + (x / self.barWidth) * (self.v1 - self.v0);
        self.zoom(ev.deltaY > 0 ? 1.25 : 0.8, at);
      } else if (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) {
        ev.preventDefault();
        var delta = (ev.shiftKey ? ev.deltaY : ev.deltaX) / self.barWidth * (self.v1 - self.v0);
        self.setWindow(self.v0 + delta, self.v1 + delta);
      }
    }, { passive: false });
    var drag = null;
    this.scroller.addEventListener("mousedown", function (ev) {
      var rect = self.scroller.getBoundingClientRect();
      if (ev.button !== 0 || ev.clientX - rect.left < self.barLeft) return;
      drag = { x: ev.clientX, v0: self.v0, v1: self.v1 };
      self.dragged = false;
    });
    window.addEventListener("mousemove", function (ev) {
      if (!drag) return;
      var dx = ev.clientX - drag.x;
      if (Math.abs(dx) > 3) self.dragged = true;
      if (!self.dragged) return;
      var delta = -dx / self.barWidth * (drag.v1 - drag.v0);
      self.setWindow(drag.v0 + delta, drag.v1 + delta);
    });
    window.addEventListener("mouseup", function () {
      drag = null;
      setTimeout(function () { self.dragged = false; }, 0);
    });
  };

  // -- details pane ---------------------------------------------------------------

  RunView.prototype.showDetails = function (row) {
    var self = this;
    var token = ++this.detailToken;
    var id = row[0];
    clearTimeout(this.detailTimer);
    if (row[4] === "pending") {
      fill(this.details, h("h2", { text: "A span still running" }),
        h("p", { class: "muted", text: "Spans are exported when they end: this one's children have arrived, " +
          "its own details will when it ends." }),
        h("dl", { class: "kv" }, h("dt", { text: "Span id" }), h("dd", { class: "mono", text: id })));
      return;
    }
    // while keys are held down, only the span the selection stops on is fetched
    this.detailTimer = setTimeout(function () {
      api.span(self.route.src, self.route.key, id).then(function (d) {
        if (token !== self.detailToken) return;
        fill.apply(null, [self.details].concat(d ? detailsOf(d, row) : [h("div", { class: "placeholder", text: "No details for this span." })]));
      }).catch(function (e) {
        if (token === self.detailToken) self.details.replaceChildren(h("div", { class: "errorline", text: e.message }));
      });
    }, FILE ? 0 : 60);
  };

  function section(title, count, content, open) {
    var el = h("details", { "data-section": title.toLowerCase() },
      h("summary", null, title, count === null ? null : h("span", { class: "n", text: "(" + count + ")" })), content);
    if (open !== false) el.open = true;
    return el;
  }

  function valueBlock(value) {
    return isEmpty(value) ? h("div", { class: "none", text: "none" }) : h("pre", { class: "code", text: show(value) });
  }

  function attrTable(attrs) {
    var keys = Object.keys(attrs || {});
    if (!keys.length) return h("div", { class: "none", text: "none" });
    keys.sort();
    var body = h("tbody");
    keys.forEach(function (k) { body.append(h("tr", null, h("td", { text: k }), h("td", { text: show(attrs[k]) }))); });
    return h("table", { class: "attrs" }, body);
  }

  function eventList(events) {
    if (!events || !events.length) return h("div", { class: "none", text: "none" });
    var list = h("div");
    events.forEach(function (e) {
      list.append(h("div", { class: "event" },
        h("div", null, h("span", { class: "mono", text: e.name }), "  ", h("span", { class: "when", text: e.time || "" })),
        isEmpty(e.attributes) ? null : attrTable(e.attributes)));
    });
    return list;
  }

  // -- model calls (SPEC 15): text only, never markup --------------------------------

  function usageFacts(u) {
    if (!u) return null;
    return h("div", null, h("b", { text: "Tokens" }), h("span", {
      class: "run-usage",
      text: (u.input_tokens + u.output_tokens).toLocaleString() + " (" + u.calls + " model call" + (u.calls === 1 ? "" : "s") + ")" +
        (u.cost_usd ? " · $" + u.cost_usd : ""),
    }));
  }

  function usageTable(u) {
    var body = h("tbody");
    body.append(h("tr", null, h("th", { text: "Model" }), h("th", { text: "Calls" }), h("th", { text: "Input" }),
      h("th", { text: "Output" }), h("th", { text: "Cost (USD)" })));
    var models = u.models || {};
    Object.keys(models).sort().forEach(function (m) {
      var f = models[m];
      body.append(h("tr", null, h("td", { text: m }), h("td", { text: String(f.calls) }),
        h("td", { text: Number(f.input_tokens).toLocaleString() }), h("td", { text: Number(f.output_tokens).toLocaleString() }),
        h("td", { text: f.cost_usd || "–" })));
    });
    body.append(h("tr", { class: "total" }, h("td", { text: "total" }), h("td", { text: String(u.calls) }),
      h("td", { text: Number(u.input_tokens).toLocaleString() }), h("td", { text: Number(u.output_tokens).toLocaleString() }),
      h("td", { text: u.cost_usd || "–" })));
    return h("table", { class: "attrs usage-table" }, body);
  }

  function conversation(messages) {
    if (!messages.length) return h("div", { class: "none", text: "none" });
    var list = h("div", { class: "conversation" });
    messages.forEach(function (m) {
      list.append(h("div", { class: "message " + (m.role === "assistant" ? "assistant" : "other") },
        h("div", { class: "role", text: m.role }), h("pre", { class: "code", text: m.text })));
    });
    return list;
  }

  function detailsOf(d, row) {
    var out = [];
    out.push(h("h2", { text: d.name }));
    out.push(h("div", { class: "tags" }, pill(d.status),
      h("span", { class: "badge " + d.role, text: d.role }), h("span", { class: "badge", text: d.kind }),
      d.replayed ? h("span", { class: "badge replayed", text: "replayed" }) : null));
    var kv = h("dl", { class: "kv" });
    function fact(label, value, mono) {
      kv.append(h("dt", { text: label }), h("dd", { class: mono ? "mono" : "", text: value === null || value === undefined ? "–" : String(value) }));
    }
    fact("Duration", d.duration_ms === null ? "–" : fmtDur(d.duration_ms * 1000));
    fact("Offset", row[5] === null ? "–" : "+" + fmtDur(row[5]));
    fact("Start", d.start, true);
    fact("End", d.end, true);
    fact("Span id", d.span_id, true);
    fact("Parent", d.parent_span_id, true);
    fact("Trace id", d.trace_id, true);
    out.push(kv);
    var exceptions = (d.events || []).filter(function (e) { return e.name === "exception"; });
    var others = (d.events || []).filter(function (e) { return e.name !== "exception"; });
    if (d.error || exceptions.length) {
      var box = h("div");
      if (d.error) {
        box.append(h("div", { class: "error-box" },
          h("div", { class: "etype", text: d.error.type || "error" }),
          h("div", { class: "emsg", text: d.error.message || "" })));
      }
      exceptions.forEach(function (e, i) {
        var a = e.attributes || {};
        if (i === 0 && d.error && a["exception.stacktrace"]) {
          // the status already says what failed: the first exception adds its traceback
          box.firstChild.append(h("pre", { class: "code", text: show(a["exception.stacktrace"]) }));
          return;
        }
        box.append(h("div", { class: "error-box" },
          h("div", { class: "etype", text: show(a["exception.type"] || "exception") }),
          h("div", { class: "emsg", text: show(a["exception.message"] || "") }),
          a["exception.stacktrace"] ? h("pre", { class: "code", text: show(a["exception.stacktrace"]) }) : null));
      });
      out.push(section("Error", null, box));
    }
    var msgs = d.messages || {};  // a model call's prompt and completion (SPEC 15)
    if (d.role !== "session") out.push(section("Input", null, msgs.input && isEmpty(d.input) ? conversation(msgs.input) : valueBlock(d.input)));
    out.push(section(d.role === "session" ? "Answer" : "Output", null, msgs.output && isEmpty(d.output) ? conversation(msgs.output) : valueBlock(d.output)));
    if (d.usage) out.push(section("Usage", d.usage.calls, usageTable(d.usage)));
    out.push(section("Context at call", Object.keys(d.context || {}).length, attrTable(d.context)));
    if (d.role === "session" && d.final_context) {
      // the session's context when it ended (saved runs and live ones alike)
      out.push(section("Context at end", Object.keys(d.final_context).length, attrTable(d.final_context)));
    }
    out.push(section("Context changes", (d.context_changes || []).length, eventList(d.context_changes)));
    out.push(section("Events", others.length, eventList(others)));
    out.push(section("Attributes", Object.keys(d.attributes || {}).length, attrTable(d.attributes), false));
    if (!isEmpty(d.extra)) out.push(section("More", Object.keys(d.extra).length, attrTable(d.extra), false));
    return out;
  }

  // what the compare page (compare.js) builds with
  function ui() {
    return { app: app, h: h, topbar: topbar, pill: pill, fmtDur: fmtDur, runHref: runHref, getJSON: getJSON,
      isCurrent: function (r) { return current === r; } };
  }
  route();
})();
