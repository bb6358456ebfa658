// Query builder: pickers filled from the semantic model (/api/v1/questions/meta), any number of
// filter rows, a time range (a relative preset or two dates), Run answers the query as the
// signed-in user (their sites only), Save stores it as a question and may add it to a dashboard.
// The server checks every query again; its messages name the row ("filters[1]: ...").
"use strict";
(function () {
  var A = window.MPAnalytics;
  var cubes = [];
  var members = {};       // member name -> {title, type, kind: "measure" | "dimension"}
  var extraFilters = [];  // or/and groups of a saved question: kept as they are, not edited
  var lastAnswer = null;
  var form = document.getElementById("builder");
  var status = document.getElementById("builder-status");
  var errors = document.getElementById("builder-errors");
  var questionId = form.getAttribute("data-question") || "";
  var $ = function (id) { return document.getElementById(id); };
  var MAX_FILTERS = 20;
  var MAX_LIMIT = 50000;
  // Operators offered per member type, as the semantic layer accepts them.
  var OPERATORS = {
    string: [["equals", "is"], ["notEquals", "is not"], ["contains", "contains"], ["notContains", "does not contain"],
      ["startsWith", "starts with"], ["endsWith", "ends with"], ["set", "is set"], ["notSet", "is not set"]],
    number: [["equals", "="], ["notEquals", "\u2260"], ["gt", ">"], ["gte", "\u2265"], ["lt", "<"], ["lte", "\u2264"],
      ["set", "is set"], ["notSet", "is not set"]],
    boolean: [["equals", "is"], ["notEquals", "is not"], ["set", "is set"], ["notSet", "is not set"]],
  };
  var NO_VALUES = ["set", "notSet"];

  function option(value, label) { var o = document.createElement("option"); o.value = value; o.textContent = label; return o; }

  function cubeNamed(name) { return cubes.filter(function (c) { return c.name === name; })[0]; }

  function filterable() {
    var cube = cubeNamed($("cube").value);
    if (!cube) { return []; }
    var out = [];
    var reachable = [cube].concat(cube.joins.map(cubeNamed).filter(Boolean));
    reachable.forEach(function (c) {
      c.dimensions.forEach(function (d) { if (d.type !== "time") { out.push(d.name); } });
    });
    cube.measures.forEach(function (m) { out.push(m.name); });
    return out;
  }

  function fillMembers() {
    var cube = cubeNamed($("cube").value);
    if (!cube) { return; }
    members = {};
    var reachable = [cube].concat(cube.joins.map(cubeNamed).filter(Boolean));
    $("measures").replaceChildren.apply($("measures"), cube.measures.map(function (m) { return option(m.name, m.title); }));
    cube.measures.forEach(function (m) { members[m.name] = { title: m.title, type: "number", kind: "measure" }; });
    var dims = [], times = [];
    reachable.forEach(function (c) {
      c.dimensions.forEach(function (d) {
        members[d.name] = { title: d.title, type: d.type, kind: "dimension" };
        if (d.type === "time") { if (c === cube) { times.push(d); } }
        else if (!d.primaryKey) { dims.push(d); }
      });
    });
    $("dimensions").replaceChildren.apply($("dimensions"), dims.map(function (d) { return option(d.name, d.title); }));
    $("time-dimension").replaceChildren.apply($("time-dimension"), [option("", "(none)")].concat(times.map(function (d) { return option(d.name, d.title); })));
    // Filters on the old cube's members no longer apply.
    $("filter-rows").replaceChildren();
    extraFilters = [];
    showExtra();
    renumber();
  }

  // ------------------------------------------------------------------------- filter rows

  function rows() { return Array.prototype.slice.call($("filter-rows").querySelectorAll(".filter-row")); }

  function memberPicker() {
    var select = A.el("select", undefined, "filter-member");
    select.appendChild(option("", "(choose)"));
    var groups = { dimension: document.createElement("optgroup"), measure: document.createElement("optgroup") };
    groups.dimension.label = "Dimensions";
    groups.measure.label = "Measures (of the grouped rows)";
    filterable().forEach(function (name) {
      var m = members[name];
      if (m) { groups[m.kind].appendChild(option(name, m.title)); }
    });
    select.appendChild(groups.dimension);
    select.appendChild(groups.measure);
    return select;
  }

  function fillOperators(row, keep) {
    var member = members[row.querySelector(".filter-member").value];
    var ops = OPERATORS[member ? member.type : "string"] || OPERATORS.string;
    var select = row.querySelector(".filter-operator");
    select.replaceChildren.apply(select, ops.map(function (o) { return option(o[0], o[1]); }));
    if (keep && ops.some(function (o) { return o[0] === keep; })) { select.value = keep; }
    toggleValues(row);
  }

  function toggleValues(row) {
    var values = row.querySelector(".filter-values");
    var none = NO_VALUES.indexOf(row.querySelector(".filter-operator").value) >= 0;
    values.disabled = none;
    if (none) { values.value = ""; }
  }

  function addRow(filter) {
    if (rows().length >= MAX_FILTERS) { showErrors(["At most " + MAX_FILTERS + " filters."]); return null; }
    var row = A.el("div", undefined, "filter-row");
    var member = memberPicker();
    var operator = A.el("select", undefined, "filter-operator");
    var values = A.el("input", undefined, "filter-values");
    values.type = "text";
    values.maxLength = 500;
    values.placeholder = "values, comma-separated";
    var remove = A.el("button", "Remove", "remove-filter");
    remove.type = "button";
    [member, operator, values, remove].forEach(function (node) { row.appendChild(node); });
    $("filter-rows").appendChild(row);
    if (filter) { member.value = filter.member; }
    fillOperators(row, filter ? filter.operator : null);
    if (filter && filter.values) { values.value = filter.values.join(", "); }
    member.addEventListener("change", function () { fillOperators(row, operator.value); row.removeAttribute("data-invalid"); });
    operator.addEventListener("change", function () { toggleValues(row); });
    remove.addEventListener("click", function () { row.remove(); renumber(); });
    renumber();
    return row;
  }

  // Labels say which row is which, for screen readers and for the error messages.
  function renumber() {
    rows().forEach(function (row, index) {
      var n = index + 1;
      row.setAttribute("data-row", String(n));
      row.querySelector(".filter-member").setAttribute("aria-label", "Filter " + n + " member");
      row.querySelector(".filter-operator").setAttribute("aria-label", "Filter " + n + " operator");
      row.querySelector(".filter-values").setAttribute("aria-label", "Filter " + n + " values");
      row.querySelector(".remove-filter").setAttribute("aria-label", "Remove filter " + n);
    });
  }

  function showExtra() {
    var note = $("filter-extra");
    note.hidden = !extraFilters.length;
    note.textContent = extraFilters.length ? "Plus " + extraFilters.length + " grouped (or/and) filter(s) of the saved question, kept as they are." : "";
  }

  // --------------------------------------------------------------------------- the query

  function selected(select) { return Array.prototype.filter.call(select.options, function (o) { return o.selected; }).map(function (o) { return o.value; }); }

  function splitValues(text) { return text.split(",").map(function (v) { return v.trim(); }).filter(Boolean); }

  function dateRange() {
    var preset = $("date-preset").value;
    if (preset === "between") { return [$("date-from").value, $("date-to").value]; }
    return preset || null;
  }

  // The query and the problems a person can fix before asking the server.
  function build() {
    var problems = [];
    var q = { measures: selected($("measures")), dimensions: selected($("dimensions")) };
    if (!q.measures.length) { problems.push("Choose at least one measure."); }
    var time = $("time-dimension").value;
    var range = dateRange();
    if (!time && (range || $("granularity").value)) {
      problems.push("Choose a time dimension for the time range or the grouping by " + ($("granularity").value || "date") + ".");
    }
    if (Array.isArray(range)) {
      if (!range[0] || !range[1]) { problems.push("Give both dates of the range (From and To)."); }
      else if (range[0] > range[1]) { problems.push("The date range ends before it starts."); }
    }
    if (time) {
      var entry = { dimension: time };
      if ($("granularity").value) { entry.granularity = $("granularity").value; }
      if (range) { entry.dateRange = range; }
      q.timeDimensions = [entry];
    }
    var filters = [];
    rows().forEach(function (row, index) {
      var n = index + 1;
      var member = row.querySelector(".filter-member").value;
      var operator = row.querySelector(".filter-operator").value;
      var values = splitValues(row.querySelector(".filter-values").value);
      var before = problems.length;
      var info = members[member];
      if (!member) { problems.push("Filter " + n + ": choose what to filter on, or remove the row."); }
      else if (NO_VALUES.indexOf(operator) >= 0) { filters.push({ member: member, operator: operator }); }
      else if (!values.length) { problems.push("Filter " + n + ": enter at least one value."); }
      else if (info && info.type === "number" && values.some(function (v) { return !isFinite(Number(v)); })) {
        problems.push("Filter " + n + ": " + info.title + " is compared with numbers only.");
      } else if (info && info.type === "boolean" && values.some(function (v) { return v !== "true" && v !== "false"; })) {
        problems.push("Filter " + n + ": " + info.title + " is true or false.");
      } else {
        filters.push({ member: member, operator: operator, values: values });
      }
      if (problems.length > before) { row.setAttribute("data-invalid", "true"); } else { row.removeAttribute("data-invalid"); }
    });
    filters = filters.concat(extraFilters);
    if (filters.length) { q.filters = filters; }
    var limitText = $("limit").value.trim();
    var limit = Number(limitText);
    if (limitText && (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)) {
      problems.push("The row limit is a whole number from 1 to " + MAX_LIMIT + ".");
    } else if (limitText) { q.limit = limit; }
    return { query: q, problems: problems };
  }

  // The server names a refused row as filters[i]: say it as the builder does.
  function serverMessage(message) {
    return String(message).replace(/filters\[(\d+)\]/g, function (_, i) { return "Filter " + (Number(i) + 1); })
      .replace(/timeDimensions\[\d+\]/g, "Time range");
  }

  function showErrors(list) {
    errors.replaceChildren.apply(errors, list.map(function (m) { return A.el("li", m); }));
    errors.hidden = !list.length;
  }

  function setSelected(select, values) {
    Array.prototype.forEach.call(select.options, function (o) { o.selected = values.indexOf(o.value) >= 0; });
  }

  function setRange(range) {
    var preset = $("date-preset");
    if (Array.isArray(range)) {
      preset.value = "between";
      $("date-from").value = String(range[0]).slice(0, 10);
      $("date-to").value = String(range[1]).slice(0, 10);
    } else if (range) {
      if (!Array.prototype.some.call(preset.options, function (o) { return o.value === range; })) {
        preset.insertBefore(option(range, range), preset.lastElementChild);
      }
      preset.value = range;
    } else { preset.value = ""; }
    $("date-between").hidden = preset.value !== "between";
  }

  function load(question) {
    var q = question.query;
    var first = (q.measures || [])[0] || (q.dimensions || [])[0] || "";
    $("cube").value = first.split(".")[0];
    fillMembers();
    setSelected($("measures"), q.measures || []);
    setSelected($("dimensions"), q.dimensions || []);
    var t = (q.timeDimensions || [])[0];
    if (t) {
      $("time-dimension").value = t.dimension;
      $("granularity").value = t.granularity || "";
      setRange(t.dateRange);
    }
    (q.filters || []).forEach(function (f) {
      if (f.member || f.dimension) { addRow({ member: f.member || f.dimension, operator: f.operator, values: f.values }); }
      else { extraFilters.push(f); }
    });
    showExtra();
    if (q.limit) { $("limit").value = q.limit; }
    $("chart-type").value = question.chart;
    $("question-name").value = question.name;
    document.querySelectorAll('input[name="shared_roles"]').forEach(function (box) { box.checked = question.shared_roles.indexOf(box.value) >= 0; });
    if (question.mine) { showExports(question.id); } else { questionId = ""; }  // saving copies someone else's
  }

  function showExports(id) {
    $("export-csv").href = "/api/v1/questions/" + id + "/export.csv";
    $("export-xlsx").href = "/api/v1/questions/" + id + "/export.xlsx";
    $("question-exports").hidden = false;
  }

  // ------------------------------------------------------------------------- run, draw, save

  function draw() {
    if (!lastAnswer) { return; }
    var chart = $("chart-type").value;
    var target = $("result-chart");
    target.setAttribute("data-chart", chart);
    if (chart === "table") { A.clearChart(target); target.hidden = true; }
    else { target.hidden = false; A.renderChart(target, lastAnswer, chart); }
    A.renderTable($("result-table"), lastAnswer);
  }

  function run(event) {
    if (event) { event.preventDefault(); }
    var built = build();
    showErrors(built.problems);
    if (built.problems.length) { status.textContent = "Check the question: " + built.problems.join(" "); return; }
    status.textContent = "Running\u2026";
    var began = performance.now();
    A.api("POST", "/api/v1/questions/preview", { query: built.query }).then(function (answer) {
      lastAnswer = answer;
      draw();
      status.textContent = (answer.data || []).length + " row(s) in " + Math.round(performance.now() - began) + " ms.";
    }).catch(function (error) {
      var message = serverMessage(error.message);
      showErrors([message]);
      status.textContent = "Could not run the question: " + message;
    });
  }

  function addToDashboard(dashboardId, question) {
    return A.api("GET", "/api/v1/dashboards/" + dashboardId).then(function (board) {
      var size = { w: 6, h: 4 };
      var spot = A.freeSpot(board.layout, size.w, size.h);
      var layout = board.layout.concat([{ kind: "question", question_id: question.id, x: spot.x, y: spot.y, w: size.w, h: size.h }]);
      return A.api("PUT", "/api/v1/dashboards/" + dashboardId, {
        name: board.name, description: board.description, layout: layout, filters: board.filters,
        refresh_s: board.refresh_s, shared_roles: board.shared_roles,
      });
    });
  }

  function save(event) {
    event.preventDefault();
    var saveStatus = $("save-status");
    var built = build();
    if (!$("question-name").value.trim()) { built.problems.unshift("Give the question a name."); }
    showErrors(built.problems);
    if (built.problems.length) { saveStatus.textContent = "Not saved: " + built.problems.join(" "); return; }
    var body = {
      name: $("question-name").value.trim(),
      query: built.query,
      chart: $("chart-type").value,
      shared_roles: Array.prototype.filter.call(document.querySelectorAll('input[name="shared_roles"]'), function (b) { return b.checked; }).map(function (b) { return b.value; }),
    };
    var saving = questionId ? A.api("PUT", "/api/v1/questions/" + questionId, body) : A.api("POST", "/api/v1/questions", body);
    var dashboardId = $("save-dashboard").value;
    saving.then(function (question) {
      questionId = String(question.id);
      showExports(question.id);
      var saved = "Saved question \u201c" + question.name + "\u201d.";
      saveStatus.textContent = saved;
      if (!dashboardId) { return null; }
      return addToDashboard(dashboardId, question).then(function (board) {
        saveStatus.replaceChildren(saved + " Added to ");
        var link = A.el("a", board.name);
        link.href = "/analytics/dashboards/" + board.id;
        saveStatus.appendChild(link);
        saveStatus.appendChild(document.createTextNode("."));
        $("save-dashboard").value = "";
      }).catch(function (error) { saveStatus.textContent = saved + " Not added to the dashboard: " + serverMessage(error.message); });
    }).catch(function (error) {
      var message = serverMessage(error.message);
      showErrors([message]);
      saveStatus.textContent = "Not saved: " + message;
    });
  }

  A.api("GET", "/api/v1/questions/meta").then(function (meta) {
    cubes = meta.cubes;
    $("cube").replaceChildren.apply($("cube"), cubes.map(function (c) { return option(c.name, c.title); }));
    fillMembers();
    if (questionId) {
      return A.api("GET", "/api/v1/questions/" + questionId).then(function (q) { load(q); run(); }, function (error) {
        questionId = "";
        status.textContent = "Could not open the question: " + error.message;
      });
    }
    return null;
  }, function (error) { status.textContent = "Could not load the model: " + error.message; });
  $("cube").addEventListener("change", fillMembers);
  $("add-filter").addEventListener("click", function () {
    var row = addRow(null);
    if (row) { row.querySelector(".filter-member").focus(); }
  });
  $("date-preset").addEventListener("change", function () { $("date-between").hidden = $("date-preset").value !== "between"; });
  $("chart-type").addEventListener("change", draw);
  form.addEventListener("submit", run);
  $("save-form").addEventListener("submit", save);
})();
