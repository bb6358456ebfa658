// A custom dashboard: saved questions on a 12-column grid answered in one refresh call (with the
// dashboard-wide date range), live sensor widgets fed by the SSE stream, auto-refresh.
"use strict";
(function () {
  var A = window.MPAnalytics;
  var config = JSON.parse(document.getElementById("dashboard-config").textContent);
  var status = document.getElementById("dashboard-status");
  var grid = document.getElementById("dashboard-grid");
  var dashboard = null;
  var bodies = {};      // question id -> widget body element
  var live = {};        // sensor id -> {widget body, value element}
  var busy = false;
  var MAX_POINTS = 300;
  var sensorLabels = {};
  config.sensors.forEach(function (s) { sensorLabels[s.id] = s.label + (s.unit ? " [" + s.unit + "]" : ""); });

  function dateRange() {
    var from = document.getElementById("filter-from").value, to = document.getElementById("filter-to").value;
    return from && to ? [from, to] : null;
  }

  function widget(item, title) {
    var section = A.el("section", undefined, "widget");
    section.style.gridColumn = (item.x + 1) + " / span " + item.w;
    section.style.gridRow = (item.y + 1) + " / span " + item.h;
    var heading = A.el("h2", title);
    section.appendChild(heading);
    var body = A.el("div", undefined, "widget-body");
    section.appendChild(body);
    grid.appendChild(section);
    return body;
  }

  function build() {
    grid.replaceChildren();
    bodies = {}; live = {};
    if (!dashboard.layout.length) { grid.appendChild(A.el("p", "This dashboard is empty: add a question below.", "hint")); }
    dashboard.layout.forEach(function (item) {
      if (item.kind === "question") {
        var q = dashboard.questions[String(item.question_id)];
        var body = widget(item, q ? q.name : "Question " + item.question_id);
        body.setAttribute("data-question", item.question_id);
        (bodies[item.question_id] = bodies[item.question_id] || []).push(body);
      } else {
        var liveBody = widget(item, item.title || "Live sensors");
        var list = A.el("ul", undefined, "live-values");
        liveBody.appendChild(list);
        var chart = A.el("div"); chart.style.height = "160px"; liveBody.appendChild(chart);
        var traces = item.sensor_ids.map(function (id) { return { x: [], y: [], mode: "lines", name: sensorLabels[id] || ("sensor " + id) }; });
        window.Plotly.newPlot(chart, traces, { margin: { t: 8, r: 8, b: 24, l: 40 }, showlegend: false }, { displaylogo: false, responsive: true });
        item.sensor_ids.forEach(function (id, index) {
          var li = A.el("li"); var name = A.el("span", sensorLabels[id] || ("sensor " + id)); var value = A.el("span", "waiting…");
          li.appendChild(name); li.appendChild(value); list.appendChild(li);
          (live[id] = live[id] || []).push({ value: value, chart: chart, trace: index });
        });
      }
    });
    if (Object.keys(live).length) { subscribe(); }
  }

  function refresh() {
    if (busy || !dashboard) { return; }
    busy = true;
    var began = performance.now();
    var range = dateRange();
    A.api("POST", "/api/v1/dashboards/" + config.id + "/refresh", range ? { dateRange: range } : null).then(function (result) {
      Object.keys(result.widgets).forEach(function (id) {
        var w = result.widgets[id];
        (bodies[id] || []).forEach(function (body) {
          if (w.error) { body.replaceChildren(A.el("p", w.error, "error")); return; }
          body.replaceChildren();
          A.renderChart(body, w.answer, w.question.chart);
        });
      });
      status.textContent = "Refreshed " + Object.keys(result.widgets).length + " question(s) in " + Math.round(performance.now() - began) + " ms.";
    }).catch(function (error) { status.textContent = "Refresh failed: " + error.message; })
      .then(function () { busy = false; });
  }

  var source = null;
  function subscribe() {
    if (source || !window.EventSource) { return; }
    source = new window.EventSource("/api/v1/stream?type=reading");
    source.onmessage = function (message) {
      var event = JSON.parse(message.data);
      if (event.type !== "reading") { return; }
      (live[event.data.sensor_id] || []).forEach(function (target) {
        target.value.textContent = String(Number(Number(event.data.value).toPrecision(6))) + (event.data.unit ? " " + event.data.unit : "");
        window.Plotly.extendTraces(target.chart, { x: [[event.ts]], y: [[event.data.value]] }, [target.trace], MAX_POINTS);
      });
    };
  }

  function save(layout) {
    var body = { name: dashboard.name, description: dashboard.description, layout: layout,
      filters: dashboard.filters, refresh_s: dashboard.refresh_s, shared_roles: dashboard.shared_roles };
    return A.api("PUT", "/api/v1/dashboards/" + config.id, body).then(load);
  }

  function nextRow() {
    return dashboard.layout.reduce(function (row, item) { return Math.max(row, item.y + item.h); }, 0);
  }

  function load() {
    return A.api("GET", "/api/v1/dashboards/" + config.id).then(function (d) { dashboard = d; build(); refresh(); });
  }

  var range = config.filters.dateRange;
  if (Array.isArray(range)) { document.getElementById("filter-from").value = range[0]; document.getElementById("filter-to").value = range[1]; }
  document.getElementById("dashboard-filters").addEventListener("submit", function (event) { event.preventDefault(); refresh(); });
  document.getElementById("refresh-now").addEventListener("click", refresh);
  var addQuestion = document.getElementById("add-question");
  if (addQuestion) {
    addQuestion.addEventListener("submit", function (event) {
      event.preventDefault();
      var id = parseInt(document.getElementById("question-pick").value, 10);
      var layout = dashboard.layout.concat([{ kind: "question", question_id: id, x: 0, y: nextRow(), w: 12, h: 4 }]);
      save(layout).catch(function (error) { status.textContent = "Not added: " + error.message; });
    });
  }
  var addSensors = document.getElementById("add-sensors");
  if (addSensors) {
    addSensors.addEventListener("submit", function (event) {
      event.preventDefault();
      var ids = Array.prototype.filter.call(document.getElementById("sensor-pick").options, function (o) { return o.selected; }).map(function (o) { return parseInt(o.value, 10); });
      var layout = dashboard.layout.concat([{ kind: "sensors", sensor_ids: ids, title: "Live sensors", x: 0, y: nextRow(), w: 6, h: 4 }]);
      save(layout).catch(function (error) { status.textContent = "Not added: " + error.message; });
    });
  }
  load().catch(function (error) { status.textContent = "Could not load the dashboard: " + error.message; });
  if (config.refresh_s > 0) { window.setInterval(refresh, config.refresh_s * 1000); }
})();
