// A custom dashboard: saved questions on a 12-column grid answered in one refresh call (with the
// dashboard-wide time range), live sensor widgets fed by the SSE stream, auto-refresh. The owner
// adds and removes widgets, saves the time range and changes the settings.
"use strict";
(function () {
  var A = window.MPAnalytics;
  var config = JSON.parse(document.getElementById("dashboard-config").textContent);
  var status = document.getElementById("dashboard-status");
  var grid = document.getElementById("dashboard-grid");
  var $ = function (id) { return document.getElementById(id); };
  var dashboard = null;
  var bodies = {};      // question id -> widget body elements
  var live = {};        // sensor id -> [{value element, chart, trace}]
  var busy = false;
  var MAX_POINTS = 300;
  var sensorLabels = {};
  config.sensors.forEach(function (s) { sensorLabels[s.id] = s.label + (s.unit ? " [" + s.unit + "]" : ""); });

  function option(value, label) { var o = document.createElement("option"); o.value = value; o.textContent = label; return o; }

  // The range picked in the bar: null for each question's own range, a phrase, or two dates.
  function pickedRange() {
    var preset = $("filter-preset").value;
    if (preset !== "between") { return { range: preset || null }; }
    var from = $("filter-from").value, to = $("filter-to").value;
    if (!from || !to) { return { error: "Give both dates of the range (From and To)." }; }
    if (from > to) { return { error: "The date range ends before it starts." }; }
    return { range: [from, to] };
  }

  function showRange(range) {
    var preset = $("filter-preset");
    if (Array.isArray(range)) {
      preset.value = "between";
      $("filter-from").value = String(range[0]).slice(0, 10);
      $("filter-to").value = String(range[1]).slice(0, 10);
    } else if (range) {
      if (!Array.prototype.some.call(preset.options, function (o) { return o.value === range; })) {
        preset.insertBefore(option(range, range), preset.lastElementChild);
      }
      preset.value = range;
    } else { preset.value = ""; }
    $("filter-between").hidden = preset.value !== "between";
  }

  function widget(item, index, title) {
    var section = A.el("section", undefined, "widget");
    section.style.gridColumn = (item.x + 1) + " / span " + item.w;
    section.style.gridRow = (item.y + 1) + " / span " + item.h;
    var head = A.el("div", undefined, "widget-head");
    head.appendChild(A.el("h2", title));
    if (config.can_change) {
      var remove = A.el("button", "Remove", "widget-remove");
      remove.type = "button";
      remove.setAttribute("aria-label", "Remove " + title);
      remove.addEventListener("click", function () {
        var layout = dashboard.layout.filter(function (_, i) { return i !== index; });
        save({ layout: layout }).catch(function (error) { status.textContent = "Not removed: " + error.message; });
      });
      head.appendChild(remove);
    }
    section.appendChild(head);
    var body = A.el("div", undefined, "widget-body");
    section.appendChild(body);
    grid.appendChild(section);
    return body;
  }

  function build() {
    Array.prototype.forEach.call(grid.querySelectorAll(".js-plotly-plot"), function (node) { A.clearChart(node); });
    grid.replaceChildren();
    bodies = {}; live = {};
    if (!dashboard.layout.length) {
      grid.appendChild(A.el("p", config.can_change ? "This dashboard is empty: add a question or a live widget below." : "This dashboard is empty.", "hint"));
    }
    dashboard.layout.forEach(function (item, index) {
      if (item.kind === "question") {
        var q = dashboard.questions[String(item.question_id)];
        var body = widget(item, index, q ? q.name : "Question " + item.question_id);
        body.setAttribute("data-question", item.question_id);
        body.appendChild(A.el("p", "Loading\u2026", "hint"));
        (bodies[item.question_id] = bodies[item.question_id] || []).push(body);
      } else {
        var liveBody = widget(item, index, item.title || "Live sensors");
        liveBody.setAttribute("data-sensors", item.sensor_ids.join(","));
        var list = A.el("ul", undefined, "live-values");
        liveBody.appendChild(list);
        var chart = A.el("div", undefined, "live-chart");
        liveBody.appendChild(chart);
        var traces = item.sensor_ids.map(function (id) { return { x: [], y: [], mode: "lines", name: sensorLabels[id] || ("sensor " + id) }; });
        window.Plotly.newPlot(chart, traces, { margin: { t: 8, r: 8, b: 24, l: 40 }, showlegend: false, autosize: true }, { displaylogo: false, responsive: true });
        item.sensor_ids.forEach(function (id, trace) {
          var li = A.el("li"); var name = A.el("span", sensorLabels[id] || ("sensor " + id)); var value = A.el("span", "waiting\u2026");
          li.appendChild(name); li.appendChild(value); list.appendChild(li);
          (live[id] = live[id] || []).push({ value: value, chart: chart, trace: trace });
        });
      }
    });
    if (Object.keys(live).length) { subscribe(); }
  }

  // A promise settled when the widgets are drawn (or the refresh failed or was not needed).
  function refresh() {
    if (busy || !dashboard) { return Promise.resolve(); }
    var picked = pickedRange();
    if (picked.error) { status.textContent = "Not refreshed: " + picked.error; return Promise.resolve(); }
    busy = true;
    var began = performance.now();
    return A.api("POST", "/api/v1/dashboards/" + config.id + "/refresh", { dateRange: picked.range }).then(function (result) {
      Object.keys(result.widgets).forEach(function (id) {
        var w = result.widgets[id];
        (bodies[id] || []).forEach(function (body) {
          if (w.error) { A.clearChart(body); body.appendChild(A.el("p", w.error, "error")); return; }
          A.renderChart(body, w.answer, w.question.chart);
        });
      });
      status.textContent = "Refreshed " + Object.keys(result.widgets).length + " question(s) in " + Math.round(performance.now() - began) + " ms at " + new Date().toLocaleTimeString() + ".";
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

  // Replace the dashboard with some fields changed, then draw it again.
  function save(changes) {
    var body = { name: dashboard.name, description: dashboard.description, layout: dashboard.layout,
      filters: dashboard.filters, refresh_s: dashboard.refresh_s, shared_roles: dashboard.shared_roles };
    Object.keys(changes).forEach(function (key) { body[key] = changes[key]; });
    return A.api("PUT", "/api/v1/dashboards/" + config.id, body).then(load);
  }

  function load() {
    return A.api("GET", "/api/v1/dashboards/" + config.id).then(function (d) { dashboard = d; build(); return refresh(); });
  }

  function size(id, fallback) { var node = $(id); return node ? parseInt(node.value, 10) : fallback; }

  function add(item) {
    var spot = A.freeSpot(dashboard.layout, item.w, item.h);
    item.x = spot.x; item.y = spot.y;
    return save({ layout: dashboard.layout.concat([item]) });
  }

  showRange(config.filters.dateRange);
  $("filter-preset").addEventListener("change", function () { $("filter-between").hidden = $("filter-preset").value !== "between"; });
  $("dashboard-filters").addEventListener("submit", function (event) { event.preventDefault(); refresh(); });
  $("refresh-now").addEventListener("click", refresh);
  if ($("save-filters")) {
    $("save-filters").addEventListener("click", function () {
      var picked = pickedRange();
      if (picked.error) { status.textContent = "Not saved: " + picked.error; return; }
      var filters = picked.range ? { dateRange: picked.range } : {};
      save({ filters: filters }).then(function () { status.textContent = "Saved the dashboard's time range."; })
        .catch(function (error) { status.textContent = "Not saved: " + error.message; });
    });
  }
  if ($("add-question")) {
    $("add-question").addEventListener("submit", function (event) {
      event.preventDefault();
      var id = parseInt($("question-pick").value, 10);
      add({ kind: "question", question_id: id, w: size("question-width", 6), h: size("question-height", 4) })
        .catch(function (error) { status.textContent = "Not added: " + error.message; });
    });
  }
  if ($("add-sensors")) {
    $("add-sensors").addEventListener("submit", function (event) {
      event.preventDefault();
      var ids = Array.prototype.filter.call($("sensor-pick").options, function (o) { return o.selected; }).map(function (o) { return parseInt(o.value, 10); });
      if (ids.length > 8) { status.textContent = "Not added: a live widget shows up to 8 sensors."; return; }
      add({ kind: "sensors", sensor_ids: ids, title: $("sensors-title").value.trim(), w: size("sensors-width", 6), h: 4 })
        .catch(function (error) { status.textContent = "Not added: " + error.message; });
    });
  }
  if ($("dashboard-settings")) {
    $("dashboard-settings").addEventListener("submit", function (event) {
      event.preventDefault();
      var refreshS = Number($("settings-refresh").value);
      if (!Number.isInteger(refreshS) || refreshS < 0 || refreshS > 86400 || (refreshS > 0 && refreshS < 5)) {
        status.textContent = "Not saved: the refresh interval is 0 (off) or 5 to 86400 seconds.";
        return;
      }
      var roles = Array.prototype.filter.call(document.querySelectorAll('#dashboard-settings input[name="shared_roles"]'), function (b) { return b.checked; }).map(function (b) { return b.value; });
      save({ name: $("settings-name").value.trim(), refresh_s: refreshS, shared_roles: roles })
        .then(function () { window.location.reload(); })
        .catch(function (error) { status.textContent = "Not saved: " + error.message; });
    });
    $("delete-dashboard").addEventListener("click", function () {
      if (!window.confirm("Delete this dashboard? Its questions stay.")) { return; }
      A.api("DELETE", "/api/v1/dashboards/" + config.id).then(function () { window.location.assign("/analytics/dashboards"); })
        .catch(function (error) { status.textContent = "Not deleted: " + error.message; });
    });
  }
  load().catch(function (error) { status.textContent = "Could not load the dashboard: " + error.message; });
  if (config.refresh_s > 0) { window.setInterval(refresh, config.refresh_s * 1000); }
})();
