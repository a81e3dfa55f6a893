/* railtracks view: the compare page of two saved runs (railtracks diff, SPEC 14).
 *
 * Loaded before viewer.js, which calls window.railtracksCompare(route, ui) for
 * #/compare/{run A}/{run B}. Every value from the runs reaches the page as
 * text only (the ui's h() sets textContent), never as markup.
 */
(function () {
  "use strict";

  var MARKS = { added: "+", removed: "−", arguments: "~", status: "!", error: "!", output: "~", answer: "~" };

  window.railtracksCompare = function (route, ui) {
    var h = ui.h;
    var crumbs = h("span", null, h("a", { href: "#/", text: "Runs" }), " › ", h("span", { class: "here", text: "Compare" }));
    ui.app.replaceChildren(ui.topbar(crumbs), h("div", { class: "loading", text: "Comparing runs…" }));
    var url = "/api/compare/" + encodeURIComponent(route.a) + "/" + encodeURIComponent(route.b);
    fetch(url, { cache: "no-store", credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(String(body && body.error ? body.error : "HTTP " + r.status));
        return body;
      });
    }).then(function (result) {
      if (!ui.isCurrent(route)) return;
      document.title = "railtracks · compare";
      ui.app.replaceChildren(ui.topbar(crumbs), page(result, ui));
    }).catch(function (e) {
      if (!ui.isCurrent(route)) return;
      ui.app.replaceChildren(ui.topbar(crumbs), h("div", { class: "errorline", text: "Could not compare these runs: " + e.message }));
    });
  };

  function runCard(label, run, ui) {
    var h = ui.h;
    return h("div", { class: "card compare-run", "data-run": label },
      h("div", { class: "compare-label", text: label }),
      h("a", { class: "run-name", href: ui.runHref("saved", run.run), text: String(run.name || run.run) }),
      h("div", { class: "facts" },
        h("div", null, h("b", { text: "Status" }), ui.pill(run.status)),
        h("div", null, h("b", { text: "Duration" }), h("span", { text: run.duration_seconds === null ? "–" : ui.fmtDur(run.duration_seconds * 1e6) })),
        h("div", null, h("b", { text: "Calls" }), h("span", { text: String(run.calls) })),
        h("div", null, h("b", { text: "Trace" }), h("span", { class: "mono", text: String(run.trace_id || "–") }))));
  }

  function where(change, result, ui) {
    var h = ui.h;
    var side = change.span_b ? ["B", result.b.run, change.span_b] : change.span_a ? ["A", result.a.run, change.span_a] : null;
    if (!side) return h("span", { class: "mono", text: change.where || "session" });
    return h("a", { class: "mono", href: ui.runHref("saved", side[1], side[2]), title: "open in run " + side[0], text: change.where });
  }

  function changeRow(change, result, ui) {
    var h = ui.h;
    var lines = change.lines || [];
    return h("tr", { class: "change " + change.kind, "data-kind": change.kind },
      h("td", { class: "mark mono", text: MARKS[change.kind] || "·" }),
      h("td", null, h("span", { class: "badge", text: change.kind })),
      h("td", null, where(change, result, ui)),
      h("td", null, h("div", { text: String(change.detail) }),
        lines.length ? h("pre", { class: "code value-diff", text: lines.join("\n") }) : null));
  }

  function page(result, ui) {
    var h = ui.h;
    var verdict = result.same ? "Same" : "Different";
    var counts = Object.keys(result.counts).filter(function (k) { return result.counts[k]; })
      .map(function (k) { return result.counts[k] + " " + k; });
    if (result.session.length) counts.push(result.session.length + " in the session");
    var rows = h("tbody");
    result.session.forEach(function (c) { rows.append(changeRow({ kind: c.kind, where: "session", detail: c.detail, lines: c.lines }, result, ui)); });
    result.changes.forEach(function (c) { rows.append(changeRow(c, result, ui)); });
    if (!result.session.length && !result.changes.length) {
      rows.append(h("tr", null, h("td", { colspan: "4" }, h("div", { class: "empty" }, h("strong", { text: "No difference" }),
        "Same calls, statuses, outputs and answer."))));
    }
    var timing = h("tbody");
    result.timing.forEach(function (t) {
      timing.append(h("tr", null, h("td", { class: "mono", text: t.where }),
        h("td", { class: "num", text: ui.fmtDur(t.before_seconds * 1e6) }),
        h("td", { class: "num", text: ui.fmtDur(t.after_seconds * 1e6) })));
    });
    return h("main", { class: "page compare" },
      h("h1", null, h("span", { class: "verdict " + (result.same ? "same" : "different"), text: verdict })),
      h("p", { class: "lead", text: result.aligned + " calls aligned by place" + (counts.length ? "; " + counts.join(", ") : "") }),
      h("div", { class: "compare-runs" }, runCard("A", result.a, ui), runCard("B", result.b, ui)),
      h("div", { class: "card" }, h("table", { class: "runs changes" },
        h("thead", null, h("tr", null, h("th"), h("th", { text: "Change" }), h("th", { text: "Call" }), h("th", { text: "Detail" }))),
        rows)),
      result.timing_changes ? h("h2", { class: "compare-h2", text: "Notable timing changes (" + result.timing_changes + ")" }) : null,
      result.timing_changes ? h("div", { class: "card" }, h("table", { class: "runs timing" },
        h("thead", null, h("tr", null, h("th", { text: "Call" }), h("th", { class: "num", text: "A" }), h("th", { class: "num", text: "B" }))),
        timing)) : null);
  }
})();
