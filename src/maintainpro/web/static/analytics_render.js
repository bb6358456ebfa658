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

  // Rows = first grouping column, columns = second, cells = first measure.
  function pivot(answer) {
    var cols = columns(answer);
    var groups = cols.filter(function (c) { return c.role !== "measure"; });
    var measure = cols.filter(function (c) { return c.role === "measure"; })[0];
    var rowKey = groups[0], colKey = groups[1];
    var rows = [], across = [], values = {};
    (answer.data || []).forEach(function (r) {
      var rv = rowKey ? cell(r[rowKey.key]) : "";
      var cv = colKey ? cell(r[colKey.key]) : (measure ? measure.title : "");
      if (rows.indexOf(rv) < 0) { rows.push(rv); }
      if (across.indexOf(cv) < 0) { across.push(cv); }
      values[rv + "\u0000" + cv] = measure ? r[measure.key] : null;
    });
    return { rowKey: rowKey, colKey: colKey, measure: measure, rows: rows, across: across, values: values };
  }

  function renderPivot(target, answer) {
    var p = pivot(answer);
    var table = el("table");
    var head = table.createTHead().insertRow();
    var corner = el("th", p.rowKey ? p.rowKey.title : ""); corner.scope = "col"; head.appendChild(corner);
    p.across.forEach(function (c) { var th = el("th", c); th.scope = "col"; head.appendChild(th); });
    var body = table.createTBody();
    p.rows.forEach(function (r) {
      var tr = body.insertRow();
      var th = el("th", r); th.scope = "row"; tr.appendChild(th);
      p.across.forEach(function (c) { tr.appendChild(el("td", cell(p.values[r + "\u0000" + c]), "num")); });
    });
    target.replaceChildren(table);
  }

  function renderChart(target, answer, chart) {
    if (chart === "table") { target.replaceChildren(); renderTable(target, answer); return; }
    if (chart === "pivot") { target.replaceChildren(); renderPivot(target, answer); return; }
    var cols = columns(answer);
    var groups = cols.filter(function (c) { return c.role !== "measure"; });
    var measures = cols.filter(function (c) { return c.role === "measure"; });
    var data = answer.data || [];
    var traces = [];
    var layout = { margin: { t: 24, r: 16, b: 48, l: 56 }, legend: { orientation: "h" }, autosize: true };
    if (chart === "heatmap") {
      var p = pivot(answer);
      traces.push({ type: "heatmap", x: p.across, y: p.rows, colorscale: "Blues",
        z: p.rows.map(function (r) { return p.across.map(function (c) { return p.values[r + "\u0000" + c]; }); }) });
    } else {
      var x = groups[0];
      var series = groups[1];
      var type = chart === "line" ? "scatter" : "bar";
      if (series && measures.length) {
        var names = [];
        data.forEach(function (r) { var s = cell(r[series.key]); if (names.indexOf(s) < 0) { names.push(s); } });
        names.forEach(function (name) {
          var rows = data.filter(function (r) { return cell(r[series.key]) === name; });
          traces.push({ type: type, mode: "lines+markers", name: name,
            x: rows.map(function (r) { return x ? r[x.key] : ""; }),
            y: rows.map(function (r) { return r[measures[0].key]; }) });
        });
      } else {
        measures.forEach(function (m) {
          traces.push({ type: type, mode: "lines+markers", name: m.title,
            x: data.map(function (r) { return x ? r[x.key] : m.title; }),
            y: data.map(function (r) { return r[m.key]; }) });
        });
      }
      layout.barmode = chart === "stacked" ? "stack" : "group";
    }
    window.Plotly.react(target, traces, layout, { responsive: true, displaylogo: false });
  }

  window.MPAnalytics = { api: api, columns: columns, renderTable: renderTable, renderChart: renderChart, el: el };
})();
