// Live charts of an asset page: the last hour comes with the page, then readings arrive over
// Server-Sent Events (the page cookie signs the stream in) and are drawn once per frame.
"use strict";
(function () {
  var MAX_POINTS = 3600; // one hour at 1 Hz: the window slides, memory stays flat
  var MAX_PENDING = 120; // a hidden tab must not pile up readings without bound
  var config = null;
  var sensors = {};
  var pending = {};
  var scheduled = false;
  var source = null;

  function formatValue(value) {
    if (!isFinite(value)) { return String(value); }
    return String(Number(value.toPrecision(6)));
  }

  function formatTime(iso) {
    // The pages show UTC everywhere; ISO strings carry it, so cut rather than convert.
    return iso.slice(0, 10) + " " + iso.slice(11, 19) + " UTC";
  }

  function layoutOf(sensor) {
    var shapes = [];
    var annotations = [];
    sensor.thresholds.forEach(function (t) {
      shapes.push({
        type: "line", xref: "paper", x0: 0, x1: 1, y0: t.value, y1: t.value,
        line: { color: t.color, width: 1, dash: t.dash },
      });
      // Clear levels are labelled on the left so they never cover the alarm level next to them.
      var left = t.dash === "dot";
      annotations.push({
        xref: "paper", x: left ? 0 : 1, y: t.value, text: t.label, showarrow: false,
        xanchor: left ? "left" : "right", yanchor: "bottom", font: { color: t.color, size: 11 },
      });
    });
    return {
      title: { text: sensor.name + (sensor.unit ? " (" + sensor.unit + ")" : ""), font: { size: 13 } },
      margin: { l: 48, r: 12, t: 32, b: 32 },
      height: 220,
      xaxis: { type: "date" },
      yaxis: { title: { text: sensor.unit } },
      shapes: shapes,
      annotations: annotations,
      showlegend: false,
    };
  }

  function draw(sensor) {
    var target = document.getElementById("live-" + sensor.id);
    if (!target || !window.Plotly) { return; }
    sensors[sensor.id] = {
      target: target,
      unit: sensor.unit,
      value: document.querySelector('[data-live-value][data-sensor-id="' + sensor.id + '"]'),
      time: document.querySelector('[data-live-time-for="' + sensor.id + '"]'),
    };
    var trace = {
      type: "scatter", mode: "lines", name: sensor.name, x: sensor.x, y: sensor.y,
      line: { color: sensor.color, width: 2 },
      hovertemplate: "%{y} " + sensor.unit + "<extra></extra>",
    };
    window.Plotly.newPlot(target, [trace], layoutOf(sensor), {
      responsive: true, displaylogo: false, displayModeBar: false,
    });
  }

  function flush() {
    scheduled = false;
    Object.keys(pending).forEach(function (id) {
      var list = pending[id];
      var sensor = sensors[id];
      if (!list.length || !sensor) { return; }
      pending[id] = [];
      var last = list[list.length - 1];
      if (sensor.value) {
        sensor.value.textContent = formatValue(last.value) + (sensor.unit ? " " + sensor.unit : "");
        sensor.value.dataset.quality = last.quality;
      }
      if (sensor.time) { sensor.time.textContent = formatTime(last.ts); }
      window.Plotly.extendTraces(
        sensor.target,
        { x: [list.map(function (r) { return r.ts; })], y: [list.map(function (r) { return r.value; })] },
        [0],
        MAX_POINTS
      );
    });
  }

  function schedule() {
    if (scheduled) { return; }
    scheduled = true;
    // requestAnimationFrame does not run in a hidden tab; catch up once a second instead.
    if (document.hidden) { window.setTimeout(flush, 1000); } else { window.requestAnimationFrame(flush); }
  }

  function onReading(event) {
    var reading = JSON.parse(event.data);
    var id = String(reading.sensor_id);
    if (!sensors[id]) { return; }
    var list = pending[id] || (pending[id] = []);
    list.push(reading);
    if (list.length > MAX_PENDING) { list.shift(); }
    schedule();
  }

  function setStatus(text, ready) {
    var status = document.getElementById("live-status");
    if (status) { status.textContent = text; }
    document.body.dataset.liveReady = ready ? "true" : "false";
  }

  function onAlert(event) {
    var note = document.getElementById("live-alert-note");
    var data = JSON.parse(event.data);
    var what = event.type === "alert.cleared" ? "Alert cleared" : "New alert";
    if (note) { note.textContent = what + ": " + (data.title || "") + ". Reload the page to update the list."; }
  }

  function connect() {
    source = new window.EventSource("/api/v1/events/stream?asset_id=" + encodeURIComponent(config.asset_id));
    source.addEventListener("open", function () { setStatus("live", true); });
    source.addEventListener("error", function () {
      // EventSource reconnects by itself unless the server refused the stream (signed out).
      var closed = source.readyState === window.EventSource.CLOSED;
      setStatus(closed ? "disconnected: reload the page" : "reconnecting…", false);
    });
    source.addEventListener("reading", onReading);
    ["alert.raised", "alert.escalated", "alert.cleared"].forEach(function (type) {
      source.addEventListener(type, onAlert);
    });
  }

  function start() {
    var node = document.getElementById("live-config");
    if (!node) { return; }
    config = JSON.parse(node.textContent);
    config.sensors.forEach(draw);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { flush(); }
    });
    if (window.EventSource) { connect(); } else { setStatus("live updates need a newer browser", false); }
  }

  document.addEventListener("DOMContentLoaded", start);
  window.addEventListener("pagehide", function () { if (source) { source.close(); } });
})();
