// A custom dashboard: saved questions on a 12-column grid answered in one refresh call (with the
// dashboard-wide time range and member filters), live sensor widgets fed by the SSE stream,
// auto-refresh. Anyone who may open it changes the filters for their own view; the owner adds,
// removes, moves and resizes widgets (with the buttons, or by dragging a widget's head or its
// corner handle), saves the filters and changes the settings.
"use strict";
(function () {
  var A = window.MPAnalytics;
  var config = JSON.parse(document.getElementById("dashboard-config").textContent);
  var status = document.getElementById("dashboard-status");
  var grid = document.getElementById("dashboard-grid");
  var $ = function (id) { return document.getElementById(id); };
  var dashboard = null;
  var bodies = {};      // question id -> [{body, note}] of its widgets
  var live = {};        // sensor id -> [{value element, chart, trace}]
  var busy = false;
  var MAX_POINTS = 300;
  var COLUMNS = 12, MAX_ROWS = 200, MAX_HEIGHT = 12, MAX_FILTERS = 8;
  var filterRows = $("member-filter-rows");
  var filtersShown = false;
  var valueLists = {};  // member -> promise of its values (for the datalists)
  // Warehouse reads of the page go one at a time: a busy warehouse answers a second one with 503.
  var reads = Promise.resolve();
  function serial(call) {
    var next = reads.then(call, call);
    reads = next.catch(function () { return null; });
    return next;
  }
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

  function memberTitle(member) {
    var found = (dashboard && dashboard.filter_members || []).filter(function (m) { return m.member === member; })[0];
    return found ? found.title : member;
  }

  // The values a member takes for this viewer (their sites only), offered while typing.
  function suggest(member, list) {
    list.replaceChildren();
    if (!member) { return; }
    if (!valueLists[member]) {
      valueLists[member] = serial(function () { return A.api("POST", "/api/v1/questions/preview", { query: { dimensions: [member], limit: 500 } }); })
        .then(function (answer) { return (answer.data || []).map(function (row) { return row[member]; }).filter(function (v) { return v !== null && v !== undefined; }); })
        .catch(function () { return []; });
    }
    valueLists[member].then(function (values) {
      list.replaceChildren();
      values.forEach(function (v) { list.appendChild(option(String(v), String(v))); });
    });
  }

  function renumber() {
    Array.prototype.forEach.call(filterRows.children, function (row, i) {
      var n = i + 1;
      row.setAttribute("data-row", String(n));
      row.querySelector(".filter-member").setAttribute("aria-label", "Dashboard filter " + n + " member");
      row.querySelector(".filter-operator").setAttribute("aria-label", "Dashboard filter " + n + " operator");
      row.querySelector(".filter-values").setAttribute("aria-label", "Dashboard filter " + n + " values");
      row.querySelector(".filter-remove").setAttribute("aria-label", "Remove dashboard filter " + n);
    });
    $("add-member-filter").disabled = filterRows.children.length >= MAX_FILTERS;
  }

  function addFilterRow(filter) {
    var row = A.el("div", undefined, "filter-row");
    var member = A.el("select", undefined, "filter-member");
    member.appendChild(option("", "(pick a member)"));
    var offered = dashboard.filter_members || [];
    offered.forEach(function (m) { member.appendChild(option(m.member, m.title)); });
    if (filter && !offered.some(function (m) { return m.member === filter.member; })) {
      member.appendChild(option(filter.member, filter.member));
    }
    var operator = A.el("select", undefined, "filter-operator");
    operator.appendChild(option("equals", "is"));
    operator.appendChild(option("notEquals", "is not"));
    var values = A.el("input", undefined, "filter-values");
    values.type = "text";
    values.placeholder = "values, comma-separated";
    var list = A.el("datalist");
    list.id = "member-values-" + Math.random().toString(36).slice(2);
    values.setAttribute("list", list.id);
    var remove = A.el("button", "Remove", "filter-remove");
    remove.type = "button";
    remove.addEventListener("click", function () { row.remove(); renumber(); });
    member.addEventListener("change", function () { row.removeAttribute("data-invalid"); suggest(member.value, list); });
    values.addEventListener("input", function () { row.removeAttribute("data-invalid"); });
    if (filter) {
      member.value = filter.member;
      operator.value = filter.operator || "equals";
      values.value = (filter.values || []).join(", ");
      suggest(filter.member, list);
    }
    [member, operator, values, list, remove].forEach(function (node) { row.appendChild(node); });
    filterRows.appendChild(row);
    renumber();
    return row;
  }

  // The member filters of the bar, or the first problem with them (the row is marked).
  function pickedMembers() {
    var members = [];
    var error = null;
    Array.prototype.forEach.call(filterRows.children, function (row, i) {
      if (error) { return; }
      var member = row.querySelector(".filter-member").value;
      var values = row.querySelector(".filter-values").value.split(",").map(function (v) { return v.trim(); }).filter(Boolean);
      if (!member) { error = "Filter " + (i + 1) + ": pick a member."; }
      else if (!values.length) { error = "Filter " + (i + 1) + ": enter at least one value."; }
      if (error) { row.setAttribute("data-invalid", ""); return; }
      members.push({ member: member, operator: row.querySelector(".filter-operator").value, values: values });
    });
    return error ? { error: error } : { members: members };
  }

  // Why an item cannot be placed there, or null when it can (the server checks again).
  function placeProblem(item, index) {
    if (item.w < 1 || item.h < 1) { return "it is as small as a widget can be."; }
    if (item.h > MAX_HEIGHT) { return "a widget is at most " + MAX_HEIGHT + " rows tall."; }
    if (item.x < 0 || item.y < 0) { return "it is at the edge of the grid."; }
    if (item.x + item.w > COLUMNS) { return "it would reach past column " + COLUMNS + "."; }
    if (item.y + item.h > MAX_ROWS) { return "it would reach past row " + MAX_ROWS + "."; }
    var clash = dashboard.layout.some(function (other, i) {
      return i !== index && item.x < other.x + other.w && other.x < item.x + item.w &&
        item.y < other.y + other.h && other.y < item.y + item.h;
    });
    return clash ? "another widget is in the way." : null;
  }

  function place(index, change, done) {
    var item = dashboard.layout[index];
    var next = {};
    Object.keys(item).forEach(function (key) { next[key] = item[key]; });
    ["x", "y", "w", "h"].forEach(function (key) { next[key] = item[key] + (change[key] || 0); });
    var problem = placeProblem(next, index);
    if (problem) { status.textContent = "Not changed: " + problem; return; }
    var layout = dashboard.layout.map(function (other, i) { return i === index ? next : other; });
    save({ layout: layout }).then(function () { status.textContent = done; })
      .catch(function (error) { status.textContent = "Not changed: " + error.message; });
  }

  var TOOLS = [
    ["\u2190", "Move %s left", { x: -1 }, "Moved"], ["\u2192", "Move %s right", { x: 1 }, "Moved"],
    ["\u2191", "Move %s up", { y: -1 }, "Moved"], ["\u2193", "Move %s down", { y: 1 }, "Moved"],
    ["W+", "Make %s wider", { w: 1 }, "Resized"], ["W\u2212", "Make %s narrower", { w: -1 }, "Resized"],
    ["H+", "Make %s taller", { h: 1 }, "Resized"], ["H\u2212", "Make %s shorter", { h: -1 }, "Resized"]
  ];

  function tools(index, title) {
    var box = A.el("div", undefined, "widget-tools");
    TOOLS.forEach(function (tool) {
      var button = A.el("button", tool[0]);
      button.type = "button";
      button.title = tool[1].replace("%s", "the widget");
      button.setAttribute("aria-label", tool[1].replace("%s", title));
      button.addEventListener("click", function () { place(index, tool[2], tool[3] + " \u201c" + title + "\u201d."); });
      box.appendChild(button);
    });
    return box;
  }

  // Direct manipulation: a widget's head drags it, its corner handle resizes it. The pointer snaps
  // to whole cells, a preview shows where the widget would land (marked when it may not), and
  // the layout is saved once, on the drop, through the same save as the buttons.
  var drag = null;      // the gesture under way
  var placing = false;  // a dropped layout is being saved: the next gesture waits for it
  var DRAG_START_PX = 4;  // less than this is a click on the head, not a drag

  // One column and one row step in pixels, or null when the grid is not 12 columns wide (a narrow
  // screen stacks the widgets in one column, where a place on the grid cannot be pointed at).
  function cellPitch() {
    var style = window.getComputedStyle(grid);
    var tracks = style.gridTemplateColumns.split(" ").filter(Boolean);
    if (tracks.length !== COLUMNS) { return null; }
    var x = parseFloat(tracks[0]) + (parseFloat(style.columnGap) || 0);
    var y = parseFloat(style.gridAutoRows) + (parseFloat(style.rowGap) || 0);
    return x > 0 && y > 0 ? { x: x, y: y } : null;
  }

  function putAt(node, item) {
    node.style.gridColumn = (item.x + 1) + " / span " + item.w;
    node.style.gridRow = (item.y + 1) + " / span " + item.h;
  }

  function clamp(value, low, high) { return Math.max(low, Math.min(high, value)); }

  // The item as it would be after the pointer moved dx, dy pixels: whole cells, inside the grid.
  function dragged(gesture, dx, dy) {
    var item = gesture.item;
    var columns = Math.round(dx / gesture.pitch.x), rows = Math.round(dy / gesture.pitch.y);
    var next = {};
    Object.keys(item).forEach(function (key) { next[key] = item[key]; });
    if (gesture.mode === "move") {
      next.x = clamp(item.x + columns, 0, COLUMNS - item.w);
      next.y = clamp(item.y + rows, 0, MAX_ROWS - item.h);
    } else {
      next.w = clamp(item.w + columns, 1, COLUMNS - item.x);
      next.h = clamp(item.h + rows, 1, Math.min(MAX_HEIGHT, MAX_ROWS - item.y));
    }
    return next;
  }

  function draggable(grip, mode, index, title, section) {
    grip.addEventListener("pointerdown", function (event) {
      if (drag || placing || !event.isPrimary || event.button !== 0) { return; }
      if (mode === "move" && event.target.closest("button")) { return; }
      var pitch = cellPitch();
      if (!pitch) { return; }
      event.preventDefault();
      grip.setPointerCapture(event.pointerId);
      drag = { mode: mode, index: index, title: title, section: section, grip: grip, pitch: pitch,
        pointer: event.pointerId, item: dashboard.layout[index], x0: event.clientX, y0: event.clientY,
        next: null, problem: null, preview: null };
    });
    grip.addEventListener("pointermove", function (event) {
      if (drag && drag.grip === grip && event.pointerId === drag.pointer) { follow(event); }
    });
    grip.addEventListener("pointerup", function (event) {
      if (drag && drag.grip === grip && event.pointerId === drag.pointer) { drop(event); }
    });
    ["pointercancel", "lostpointercapture"].forEach(function (type) {
      grip.addEventListener(type, function (event) {
        if (drag && drag.grip === grip && event.pointerId === drag.pointer) { stopDrag(); }
      });
    });
  }

  function follow(event) {
    var dx = event.clientX - drag.x0, dy = event.clientY - drag.y0;
    if (!drag.preview) {
      if (Math.abs(dx) < DRAG_START_PX && Math.abs(dy) < DRAG_START_PX) { return; }
      drag.preview = A.el("div", undefined, "drop-preview");
      drag.preview.setAttribute("aria-hidden", "true");
      grid.appendChild(drag.preview);
      drag.section.classList.add(drag.mode === "move" ? "dragging" : "resizing");
    }
    if (drag.mode === "move") { drag.section.style.transform = "translate(" + dx + "px, " + dy + "px)"; }
    var next = dragged(drag, dx, dy);
    drag.next = next;
    drag.problem = placeProblem(next, drag.index);
    putAt(drag.preview, next);
    drag.preview.classList.toggle("refused", Boolean(drag.problem));
    drag.preview.replaceChildren();
    if (drag.problem) { drag.preview.appendChild(A.el("span", "Not here: " + drag.problem)); }
  }

  // End the gesture: the preview goes; the widget slides back to its place, or is put at the
  // place it was dropped on (landing) while that is saved.
  function stopDrag(landing) {
    var gesture = drag;
    drag = null;
    if (gesture.preview) { gesture.preview.remove(); }
    gesture.section.classList.remove("dragging", "resizing");
    if (landing) {
      gesture.section.style.transition = "none";
      putAt(gesture.section, landing);
    }
    gesture.section.style.transform = "";
    if (gesture.grip.hasPointerCapture(gesture.pointer)) { gesture.grip.releasePointerCapture(gesture.pointer); }
  }

  function drop(event) {
    follow(event);
    var gesture = drag;
    var next = gesture.next;
    var moved = next && ["x", "y", "w", "h"].some(function (key) { return next[key] !== gesture.item[key]; });
    stopDrag(moved && !gesture.problem ? next : null);
    if (!moved) { return; }
    var moving = gesture.mode === "move";
    var refused = moving ? "Not moved: " : "Not resized: ";
    if (gesture.problem) { status.textContent = refused + gesture.problem; return; }
    var layout = dashboard.layout.map(function (other, i) { return i === gesture.index ? next : other; });
    placing = true;
    save({ layout: layout })
      .then(function () { status.textContent = (moving ? "Moved" : "Resized") + " \u201c" + gesture.title + "\u201d."; })
      .catch(function (error) {
        // Refused by the server: back to the saved place (a successful save draws the grid anew).
        putAt(gesture.section, gesture.item);
        status.textContent = refused + error.message;
      })
      .then(function () { placing = false; });
  }

  document.addEventListener("keydown", function (event) {
    if (drag && event.key === "Escape") {
      var moving = drag.mode === "move";
      stopDrag();
      status.textContent = moving ? "Move cancelled." : "Resize cancelled.";
    }
  });

  function widget(item, index, title) {
    var section = A.el("section", undefined, "widget");
    putAt(section, item);
    var head = A.el("div", undefined, "widget-head");
    head.appendChild(A.el("h2", title));
    if (config.can_change) {
      section.classList.add("widget-editable");
      head.title = "Drag to move";
      draggable(head, "move", index, title, section);
      head.appendChild(tools(index, title));
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
    var note = A.el("p", "", "hint filter-note");
    note.hidden = true;
    section.appendChild(note);
    var body = A.el("div", undefined, "widget-body");
    section.appendChild(body);
    if (config.can_change) {
      // Pointer only: the W and H buttons in the head resize from the keyboard.
      var corner = A.el("div", undefined, "widget-resize");
      corner.title = "Drag to resize";
      corner.setAttribute("aria-hidden", "true");
      draggable(corner, "resize", index, title, section);
      section.appendChild(corner);
    }
    grid.appendChild(section);
    return { body: body, note: note };
  }

  function build() {
    if (drag) { stopDrag(); }
    Array.prototype.forEach.call(grid.querySelectorAll(".js-plotly-plot"), function (node) { A.clearChart(node); });
    grid.replaceChildren();
    bodies = {}; live = {};
    if (!dashboard.layout.length) {
      grid.appendChild(A.el("p", config.can_change ? "This dashboard is empty: add a question or a live widget below." : "This dashboard is empty.", "hint"));
    }
    dashboard.layout.forEach(function (item, index) {
      if (item.kind === "question") {
        var q = dashboard.questions[String(item.question_id)];
        var parts = widget(item, index, q ? q.name : "Question " + item.question_id);
        parts.body.setAttribute("data-question", item.question_id);
        parts.body.appendChild(A.el("p", "Loading\u2026", "hint"));
        (bodies[item.question_id] = bodies[item.question_id] || []).push(parts);
      } else {
        var liveBody = widget(item, index, item.title || "Live sensors").body;
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
    var chosen = pickedMembers();
    if (chosen.error) { status.textContent = "Not refreshed: " + chosen.error; return Promise.resolve(); }
    busy = true;
    var began = performance.now();
    var body = { dateRange: picked.range, members: chosen.members };
    return serial(function () { return A.api("POST", "/api/v1/dashboards/" + config.id + "/refresh", body); }).then(function (result) {
      Object.keys(result.widgets).forEach(function (id) {
        var w = result.widgets[id];
        var skipped = (w.notApplicable || []).map(memberTitle);
        (bodies[id] || []).forEach(function (parts) {
          // Said, not hidden: these figures are not narrowed by the filters named.
          parts.note.textContent = skipped.length ? "Filter not applicable: " + skipped.join(", ") + "." : "";
          parts.note.hidden = !skipped.length;
          if (w.error) { A.clearChart(parts.body); parts.body.appendChild(A.el("p", w.error, "error")); return; }
          A.renderChart(parts.body, w.answer, w.question.chart);
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
    return A.api("GET", "/api/v1/dashboards/" + config.id).then(function (d) {
      dashboard = d;
      // The bar starts from the saved filters; later saves keep what the viewer has in it.
      if (!filtersShown) { (d.filters.members || []).forEach(addFilterRow); filtersShown = true; renumber(); }
      build();
      return refresh();
    });
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
  $("add-member-filter").addEventListener("click", function () {
    if (dashboard) { addFilterRow(null).querySelector(".filter-member").focus(); }
  });
  if ($("save-filters")) {
    $("save-filters").addEventListener("click", function () {
      var picked = pickedRange();
      if (picked.error) { status.textContent = "Not saved: " + picked.error; return; }
      var chosen = pickedMembers();
      if (chosen.error) { status.textContent = "Not saved: " + chosen.error; return; }
      var filters = picked.range ? { dateRange: picked.range } : {};
      if (chosen.members.length) { filters.members = chosen.members; }
      save({ filters: filters }).then(function () { status.textContent = "Saved the dashboard's filters."; })
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
