// Shared by the query builder and the dashboards: API calls with the page's CSRF token, and an
// answer of the semantic layer drawn as a table, a pivot table or a Plotly chart.
"use strict";
(function () {
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function api(method, url, body) {
    var options = { method: method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (method !== "GET") {
      options.headers["X-CSRF-Token"] = csrf();
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body === undefined ? null : body);
    }
    return fetch(url, options).then(function (response) {
      if (response.status === 204) { return null; }
      return response.json().then(function (data) {
        if (!response.ok) {
          var error = new Error((data && data.detail) || ("HTTP " + response.status));
          error.status = response.status;
          throw error;
        }
        return data;
      });
    });
  }

  // Time dimensions, then dimensions, then measures, as the annotation lists them.
  function columns(answer) {
    var a = answer.annotation || {};
    var out = [];
    [["timeDimensions", "time"], ["dimensions", "dimension"], ["measures", "measure"]].forEach(function (group) {
      var entries = a[group[0]] || {};
      var keys = Object.keys(entries);
      keys.forEach(function (key) {
        // A bucketed time dimension comes twice (createdAt and createdAt.month): keep the bucket.
        if (keys.some(function (other) { return other.indexOf(key + ".") === 0; })) { return; }
        out.push({ key: key, title: entries[key].shortTitle || entries[key].title || key, role: group[1] });
      });
    });
    return out;
  }

  function cell(value) {
    if (value === null || value === undefined) { return ""; }
    if (typeof value === "number") { return String(Number(value.toPrecision(8))); }
    return String(value);
  }

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined) { node.textContent = text; }
    if (className) { node.className = className; }
    return node;
  }

  function renderTable(target, answer) {
    var cols = columns(answer);
    var table = el("table");
    var head = table.createTHead().insertRow();
    cols.forEach(function (c) { var th = el("th", c.title); th.scope = "col"; head.appendChild(th); });
    var body = table.createTBody();
    (answer.data || []).forEach(function (row) {
      var tr = body.insertRow();
      cols.forEach(function (c) {
        var td = el("td", cell(row[c.key]), typeof row[c.key] === "number" ? "num" : "");
        tr.appendChild(td);
      });
    });
    target.replaceChildren(table);
  }

  // Decimals (money) come as strings so no digit is lost; a chart needs numbers.
  function num(value) {
    if (value === null || value === undefined || value === "") { return null; }
    var n = Number(value);
    return isFinite(n) ? n : null;
  }

  // Rows = every grouping column but the last (joined), columns = the last one and cells = the
  // first measure; with one grouping column (or none), a column per measure.
  function pivot(answer) {
    var cols = columns(answer);
    var groups = cols.filter(function (c) { return c.role !== "measure"; });
    var measures = cols.filter(function (c) { return c.role === "measure"; });
    var across = groups.length > 1 ? groups[groups.length - 1] : null;
    var down = across ? groups.slice(0, -1) : groups;
    var rows = [], heads = [], values = {};
    function put(rv, cv, value) {
      if (rows.indexOf(rv) < 0) { rows.push(rv); }
      if (heads.indexOf(cv) < 0) { heads.push(cv); }
      values[rv + "\u0000" + cv] = value;
    }
    (answer.data || []).forEach(function (r) {
      var rv = down.map(function (g) { return cell(r[g.key]); }).join(" \u00b7 ");
      if (across) { put(rv, cell(r[across.key]), measures.length ? r[measures[0].key] : null); }
      else { measures.forEach(function (m) { put(rv, m.title, r[m.key]); }); }
    });
    var title = down.map(function (g) { return g.title; }).join(" \u00b7 ");
    return { title: title, measure: measures[0], rows: rows, across: heads, values: values };
  }

  function renderPivot(target, answer) {
    var p = pivot(answer);
    var table = el("table", undefined, "pivot");
    var head = table.createTHead().insertRow();
    var corner = el("th", p.title); corner.scope = "col"; head.appendChild(corner);
    p.across.forEach(function (c) { var th = el("th", c); th.scope = "col"; head.appendChild(th); });
    var body = table.createTBody();
    p.rows.forEach(function (r) {
      var tr = body.insertRow();
      var th = el("th", r); th.scope = "row"; tr.appendChild(th);
      p.across.forEach(function (c) { tr.appendChild(el("td", cell(p.values[r + "\u0000" + c]), "num")); });
    });
    target.replaceChildren(table);
  }

  // Plotly keeps state on its element: purge it before the element shows something else.
  function clearChart(target) {
    if (window.Plotly && target.classList.contains("js-plotly-plot")) { window.Plotly.purge(target); }
    target.replaceChildren();
  }

  function renderChart(target, answer, chart) {
    clearChart(target);
    if (chart === "table") { renderTable(target, answer); return; }
    if (chart === "pivot") { renderPivot(target, answer); return; }
    var cols = columns(answer);
    var groups = cols.filter(function (c) { return c.role !== "measure"; });
    var measures = cols.filter(function (c) { return c.role === "measure"; });
    var data = answer.data || [];
    var traces = [];
    var layout = { margin: { t: 24, r: 16, b: 48, l: 56 }, legend: { orientation: "h" }, autosize: true };
    if (chart === "heatmap") {
      var p = pivot(answer);
      traces.push({ type: "heatmap", x: p.across, y: p.rows, colorscale: "Blues",
        z: p.rows.map(function (r) { return p.across.map(function (c) { return num(p.values[r + "\u0000" + c]); }); }) });
      layout.yaxis = { type: "category", automargin: true };
      layout.xaxis = { type: "category", automargin: true };
    } else {
      var x = groups[0];
      var series = groups[1];
      var line = chart === "line";
      var trace = function (name, rows, measure) {
        var t = { type: line ? "scatter" : "bar", name: name,
          x: rows.map(function (r) { return x ? r[x.key] : measure.title; }),
          y: rows.map(function (r) { return num(r[measure.key]); }) };
        if (line) { t.mode = "lines+markers"; }
        return t;
      };
      if (series && measures.length) {
        var names = [];
        data.forEach(function (r) { var s = cell(r[series.key]); if (names.indexOf(s) < 0) { names.push(s); } });
        names.forEach(function (name) {
          traces.push(trace(name, data.filter(function (r) { return cell(r[series.key]) === name; }), measures[0]));
        });
      } else {
        measures.forEach(function (m) { traces.push(trace(m.title, data, m)); });
      }
      if (!line) { layout.barmode = chart === "stacked" ? "stack" : "group"; }
      if (x && x.role !== "time") { layout.xaxis = { type: "category", automargin: true }; }
    }
    window.Plotly.newPlot(target, traces, layout, { responsive: true, displaylogo: false });
  }

  // The first place, row by row from the top left, where a w x h item fits a 12-column grid.
  function freeSpot(layout, w, h) {
    var taken = {};
    layout.forEach(function (item) {
      for (var y = item.y; y < item.y + item.h; y += 1) {
        for (var x = item.x; x < item.x + item.w; x += 1) { taken[x + "," + y] = true; }
      }
    });
    function fits(x0, y0) {
      for (var y = y0; y < y0 + h; y += 1) {
        for (var x = x0; x < x0 + w; x += 1) { if (taken[x + "," + y]) { return false; } }
      }
      return true;
    }
    for (var y0 = 0; ; y0 += 1) {
      for (var x0 = 0; x0 + w <= 12; x0 += 1) { if (fits(x0, y0)) { return { x: x0, y: y0 }; } }
    }
  }

  window.MPAnalytics = { api: api, columns: columns, renderTable: renderTable, renderChart: renderChart,
    clearChart: clearChart, freeSpot: freeSpot, el: el };
})();
