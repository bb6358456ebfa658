// Query builder: pickers filled from the semantic model (/api/v1/questions/meta), Run answers
// the query as the signed-in user (their sites only), Save stores it as a question.
"use strict";
(function () {
  var A = window.MPAnalytics;
  var cubes = [];
  var form = document.getElementById("builder");
  var status = document.getElementById("builder-status");
  var questionId = form.getAttribute("data-question") || "";
  var $ = function (id) { return document.getElementById(id); };

  function option(value, label) { var o = document.createElement("option"); o.value = value; o.textContent = label; return o; }

  function cubeNamed(name) { return cubes.filter(function (c) { return c.name === name; })[0]; }

  function fillMembers() {
    var cube = cubeNamed($("cube").value);
    if (!cube) { return; }
    var reachable = [cube].concat(cube.joins.map(cubeNamed).filter(Boolean));
    $("measures").replaceChildren.apply($("measures"), cube.measures.map(function (m) { return option(m.name, m.title); }));
    var dims = [], times = [];
    reachable.forEach(function (c) {
      c.dimensions.forEach(function (d) {
        if (d.type === "time") { if (c === cube) { times.push(d); } }
        else if (!d.primaryKey) { dims.push(d); }
      });
    });
    $("dimensions").replaceChildren.apply($("dimensions"), dims.map(function (d) { return option(d.name, d.title); }));
    $("time-dimension").replaceChildren.apply($("time-dimension"), [option("", "(none)")].concat(times.map(function (d) { return option(d.name, d.title); })));
    $("filter-member").replaceChildren.apply($("filter-member"), [option("", "(no filter)")].concat(dims.map(function (d) { return option(d.name, d.title); })));
  }

  function selected(select) { return Array.prototype.filter.call(select.options, function (o) { return o.selected; }).map(function (o) { return o.value; }); }

  function query() {
    var q = { measures: selected($("measures")), dimensions: selected($("dimensions")) };
    var time = $("time-dimension").value;
    if (time) {
      var entry = { dimension: time };
      if ($("granularity").value) { entry.granularity = $("granularity").value; }
      if ($("date-from").value && $("date-to").value) { entry.dateRange = [$("date-from").value, $("date-to").value]; }
      q.timeDimensions = [entry];
    }
    var member = $("filter-member").value;
    var values = $("filter-values").value.split(",").map(function (v) { return v.trim(); }).filter(Boolean);
    if (member && values.length) { q.filters = [{ member: member, operator: $("filter-operator").value, values: values }]; }
    var limit = parseInt($("limit").value, 10);
    if (limit > 0) { q.limit = limit; }
    return q;
  }

  function setSelected(select, values) {
    Array.prototype.forEach.call(select.options, function (o) { o.selected = values.indexOf(o.value) >= 0; });
  }

  function load(question) {
    var q = question.query;
    var first = (q.measures || [])[0] || "";
    $("cube").value = first.split(".")[0];
    fillMembers();
    setSelected($("measures"), q.measures || []);
    setSelected($("dimensions"), q.dimensions || []);
    var t = (q.timeDimensions || [])[0];
    if (t) {
      $("time-dimension").value = t.dimension;
      $("granularity").value = t.granularity || "";
      if (Array.isArray(t.dateRange)) { $("date-from").value = t.dateRange[0]; $("date-to").value = t.dateRange[1]; }
    }
    var f = (q.filters || [])[0];
    if (f && f.member) { $("filter-member").value = f.member; $("filter-operator").value = f.operator; $("filter-values").value = (f.values || []).join(", "); }
    if (q.limit) { $("limit").value = q.limit; }
    $("chart-type").value = question.chart;
    $("question-name").value = question.name;
    document.querySelectorAll('input[name="shared_roles"]').forEach(function (box) { box.checked = question.shared_roles.indexOf(box.value) >= 0; });
    if (!question.mine) { questionId = ""; }  // saving makes a copy of someone else's question
  }

  function run(event) {
    if (event) { event.preventDefault(); }
    var q = query();
    if (!q.measures.length) { status.textContent = "Choose at least one measure."; return; }
    status.textContent = "Running…";
    var began = performance.now();
    A.api("POST", "/api/v1/questions/preview", { query: q }).then(function (answer) {
      var chart = $("chart-type").value;
      A.renderChart($("result-chart"), answer, chart === "table" ? "bar" : chart);
      A.renderTable($("result-table"), answer);
      status.textContent = (answer.data || []).length + " row(s) in " + Math.round(performance.now() - began) + " ms.";
    }).catch(function (error) { status.textContent = "Could not run the question: " + error.message; });
  }

  function save(event) {
    event.preventDefault();
    var body = {
      name: $("question-name").value,
      query: query(),
      chart: $("chart-type").value,
      shared_roles: Array.prototype.filter.call(document.querySelectorAll('input[name="shared_roles"]'), function (b) { return b.checked; }).map(function (b) { return b.value; }),
    };
    var saving = questionId ? A.api("PUT", "/api/v1/questions/" + questionId, body) : A.api("POST", "/api/v1/questions", body);
    saving.then(function (question) {
      questionId = String(question.id);
      $("save-status").textContent = "Saved question \u201c" + question.name + "\u201d.";
    }).catch(function (error) { $("save-status").textContent = "Not saved: " + error.message; });
  }

  A.api("GET", "/api/v1/questions/meta").then(function (meta) {
    cubes = meta.cubes;
    $("cube").replaceChildren.apply($("cube"), cubes.map(function (c) { return option(c.name, c.title); }));
    fillMembers();
    if (questionId) {
      return A.api("GET", "/api/v1/questions/" + questionId).then(function (q) { load(q); run(); });
    }
    return null;
  }).catch(function (error) { status.textContent = "Could not load the model: " + error.message; });
  $("cube").addEventListener("change", fillMembers);
  form.addEventListener("submit", run);
  $("save-form").addEventListener("submit", save);
})();
