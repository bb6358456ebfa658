// Trends page: fetches server-downsampled series for the chosen sensors and range, draws them
// on one chart (min/max band and average when bucketed, one y-axis per unit), refetches on
// zoom for more detail, and exports CSV (a server route) and PNG (plotly, offline).
"use strict";
(function () {
  var PALETTE = ["#1f5fa8", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0f766e"];
  var BAND_ALPHA = "33"; // hex alpha appended to a palette colour for the min/max band
  var form, chart, status, csvLink, rangeSelect, customRange;
  var zoom = null; // {start, end} while zoomed in, else null
  var drawn = false;
  var request = 0;

  function selectedSensors() {
    return Array.prototype.filter.call(form.elements.sensor_id.options, function (o) {
      return o.selected;
    }).map(function (o) { return o.value; });
  }

  function utcIso(value) {
    // datetime-local and plotly ranges have no zone: the pages work in UTC.
    if (!value) { return ""; }
    var text = value.replace(" ", "T");
    if (text.length === 16) { text += ":00"; }
    return text + "Z";
  }

  function query() {
    var params = new URLSearchParams();
    selectedSensors().forEach(function (id) { params.append("sensor_id", id); });
    var range = rangeSelect.value;
    if (zoom) {
      params.set("range", "custom");
      params.set("start", zoom.start);
      params.set("end", zoom.end);
    } else {
      params.set("range", range);
      if (range === "custom") {
        if (form.elements.start.value) { params.set("start", utcIso(form.elements.start.value)); }
        if (form.elements.end.value) { params.set("end", utcIso(form.elements.end.value)); }
      }
    }
    return params;
  }

  function axisKey(index) { return index === 0 ? "y" : "y" + (index + 1); }
  function axisName(index) { return index === 0 ? "yaxis" : "yaxis" + (index + 1); }

  function describe(item) {
    if (item.resolution === "raw") { return "raw readings"; }
    var s = item.bucket_seconds;
    var width = s >= 86400 ? s / 86400 + " d" : s >= 3600 ? s / 3600 + " h" : s >= 60 ? s / 60 + " min" : s + " s";
    return width + " buckets (average, min–max band)";
  }

  function render(data) {
    var units = [];
    var traces = [];
    data.series.forEach(function (item, i) {
      if (units.indexOf(item.unit) < 0) { units.push(item.unit); }
      var axis = axisKey(units.indexOf(item.unit));
      var color = PALETTE[i % PALETTE.length];
      var name = item.name + " (" + item.label + ")" + (item.unit ? " [" + item.unit + "]" : "");
      if (item.min) {
        traces.push({ type: "scatter", mode: "lines", x: item.x, y: item.min, yaxis: axis,
          line: { width: 0, color: color }, showlegend: false, hoverinfo: "skip", legendgroup: name });
        traces.push({ type: "scatter", mode: "lines", x: item.x, y: item.max, yaxis: axis,
          fill: "tonexty", fillcolor: color + BAND_ALPHA, line: { width: 0, color: color },
          showlegend: false, hoverinfo: "skip", legendgroup: name });
      }
      traces.push({ type: "scatter", mode: item.x.length < 60 ? "lines+markers" : "lines",
        name: name, x: item.x, y: item.y, yaxis: axis, legendgroup: name,
        line: { color: color, width: 2 },
        hovertemplate: "%{y} " + item.unit + "<extra>" + item.name + "</extra>" });
    });
    var extra = Math.max(0, units.length - 2);
    var layout = {
      margin: { l: 60, r: 60 + extra * 50, t: 20, b: 40 },
      height: 460,
      xaxis: { type: "date", domain: [0, 1 - extra * 0.07] },
      legend: { orientation: "h", y: -0.15 },
      hovermode: "x unified",
    };
    if (zoom) { layout.xaxis.range = [zoom.start.replace("Z", ""), zoom.end.replace("Z", "")]; }
    units.forEach(function (unit, index) {
      var axis = { title: { text: unit || "value" } };
      if (index > 0) {
        axis.overlaying = "y";
        axis.side = "right";
        if (index > 1) { axis.anchor = "free"; axis.position = 1 - (index - 2) * 0.07; }
        axis.showgrid = false;
      }
      layout[axisName(index)] = axis;
    });
    window.Plotly.react(chart, traces, layout, { responsive: true, displaylogo: false });
    if (!drawn) {
      drawn = true;
      chart.on("plotly_relayout", onRelayout);
    }
    var parts = data.series.map(function (item) { return item.name + ": " + describe(item); });
    status.textContent = "From " + data.start.slice(0, 19).replace("T", " ") + " to " +
      data.end.slice(0, 19).replace("T", " ") + " UTC. " + parts.join("; ") + "." +
      (data.series.length ? " Drag to zoom in, double-click to zoom out." : " No data.");
  }

  function load() {
    var ids = selectedSensors();
    csvLink.href = "/trends/readings.csv?" + query().toString();
    if (!ids.length) {
      status.textContent = "Choose at least one sensor.";
      return;
    }
    var mine = ++request;
    status.textContent = "Loading…";
    fetch("/trends/data?" + query().toString(), {
      credentials: "same-origin", headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) {
        return response.json().then(function (body) {
          throw new Error(body.detail || body.title || response.statusText);
        }, function () { throw new Error(response.statusText); });
      }
      return response.json();
    }).then(function (data) {
      if (mine === request) { render(data); }
    }).catch(function (error) {
      if (mine === request) { status.textContent = "Could not load the data: " + error.message; }
    });
  }

  function onRelayout(event) {
    if (event["xaxis.range[0]"] !== undefined && event["xaxis.range[1]"] !== undefined) {
      zoom = { start: utcIso(String(event["xaxis.range[0]"])), end: utcIso(String(event["xaxis.range[1]"])) };
      load();
    } else if (event["xaxis.autorange"] && zoom) {
      zoom = null;
      load();
    }
  }

  function syncCustom() {
    customRange.disabled = rangeSelect.value !== "custom";
  }

  function start() {
    form = document.getElementById("trend-form");
    chart = document.getElementById("trend-chart");
    if (!form || !chart || !window.Plotly) { return; }
    status = document.getElementById("trend-status");
    csvLink = document.getElementById("csv-link");
    rangeSelect = document.getElementById("range-select");
    customRange = document.getElementById("custom-range");
    syncCustom();
    rangeSelect.addEventListener("change", syncCustom);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      zoom = null;
      window.history.replaceState(null, "", "/trends?" + query().toString());
      load();
    });
    document.getElementById("png-button").addEventListener("click", function () {
      if (!drawn) { status.textContent = "Show a chart first."; return; }
      window.Plotly.downloadImage(chart, { format: "png", filename: "trends", width: chart.offsetWidth || 1000, height: 460 });
    });
    load();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
