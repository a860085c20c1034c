// The Overview tab (reference, "Container Stats" and "Database Stats"): each node's current figures
// (CPU, memory current / highest / free, swap, size on disk) and charts of the last hour or day with
// uPlot, read from the stats API with the session cookie and refreshed at the sampler's interval.
"use strict";
(function () {
  const section = document.getElementById("overview");
  if (!section) return;
  const nodesBox = document.getElementById("nodes");
  const status = document.getElementById("stats-status");
  const updated = document.getElementById("stats-updated");
  let period = "hour";
  let timer = null;
  const charts = new Map();  // node + kind -> uPlot

  const MiB = 1024 * 1024;
  function bytes(n) {
    if (n === null || n === undefined) return "—";
    if (n >= 1024 * MiB) return (n / 1024 / MiB).toFixed(2) + " GiB";
    if (n >= MiB) return (n / MiB).toFixed(1) + " MiB";
    if (n >= 1024) return (n / 1024).toFixed(1) + " KiB";
    return n + " B";
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function figure(label, value, sub, id) {
    const box = el("div", "figure");
    if (id) box.id = id;
    box.appendChild(el("span", "muted", label));
    box.appendChild(el("b", "", value));
    if (sub) box.appendChild(el("span", "muted", sub));
    return box;
  }

  // What each chart draws: [label, field of a history point, scale]
  const KINDS = {
    cpu: {title: "CPU usage (%)", series: [["CPU %", "cpu_percent"]],
          value: (v) => v == null ? "—" : v.toFixed(v < 10 ? 2 : 1) + " %"},
    memory: {title: "Memory", series: [["used", "memory_used"], ["highest", "memory_highest"]], value: (v) => bytes(v)},
    swap: {title: "Swap", series: [["used", "swap_used"]], value: (v) => bytes(v)},
    disk: {title: "Database on disk size", series: [["on disk", "disk_bytes"]], value: (v) => bytes(v)},
  };
  const COLORS = ["#b4231c", "#1f6feb", "#17803d"];

  function nodeBox(node) {
    let box = document.getElementById("node-" + node.node);
    if (box) return box;
    box = el("section", "card node");
    box.id = "node-" + node.node;
    const role = node.database ? (node.database.role === "master" ? " (primary)" : " (replica)") : "";
    box.appendChild(el("h2", "", (node.role === "data" ? "Node " : node.role + " ") + node.node +
                                 (section.dataset.cluster === "yes" ? role : "")));
    box.appendChild(el("div", "figures"));
    box.appendChild(el("div", "charts"));
    nodesBox.appendChild(box);
    return box;
  }

  function drawFigures(box, node) {
    const figures = box.querySelector(".figures");
    figures.replaceChildren();
    const m = node.memory, s = node.swap;
    figures.appendChild(figure("CPU usage", node.cpu_percent == null ? "—" : node.cpu_percent.toFixed(1) + " %",
                               node.up ? "current" : "node down", "cpu-" + node.node));
    if (m) figures.appendChild(figure("Memory usage", bytes(m.used),
                                      "highest " + bytes(m.highest) + " · free " + bytes(m.free) + " of " + bytes(m.limit),
                                      "memory-" + node.node));
    if (s) figures.appendChild(figure("Swap usage", s.allowed ? bytes(s.used) : (s.note || "no swap allowed"),
                                      s.allowed ? "highest " + bytes(s.highest) + " · free " + bytes(s.free) : "",
                                      "swap-" + node.node));
    if (node.role === "data") figures.appendChild(figure("Database on disk size", bytes(node.disk_bytes),
                                                         "effective physical space used", "disk-" + node.node));
    const db = node.database;
    if (db) {
      const keys = Object.values(db.keys || {}).reduce((a, b) => a + b, 0);
      const lag = db.lag_bytes == null ? "" : " · replication lag " + bytes(db.lag_bytes);
      figures.appendChild(figure("Database", keys + " keys", "used memory " + bytes(db.used_memory) + " · " +
                                 db.connected_clients + " clients · " + db.instantaneous_ops_per_sec + " ops/s" + lag,
                                 "database-" + node.node));
    }
  }

  function chartData(points, kind) {
    const xs = points.map((p) => p.at);
    return [xs, ...KINDS[kind].series.map(([, field]) => points.map((p) => p[field] == null ? null : p[field]))];
  }

  function drawChart(box, node, kind, points) {
    const key = node.node + "/" + kind;
    let holder = box.querySelector(".chart[data-kind='" + kind + "']");
    if (!holder) {
      holder = el("div", "chart");
      holder.dataset.kind = kind;
      holder.appendChild(el("h3", "", KINDS[kind].title));
      box.querySelector(".charts").appendChild(holder);
    }
    const data = chartData(points, kind);
    holder.dataset.points = String(data[0].length);
    if (typeof window.uPlot !== "function") return;  // the page says the chart library is missing
    const existing = charts.get(key);
    if (existing) { existing.setData(data); return; }
    const width = Math.max(300, holder.clientWidth || 480);
    const plot = new window.uPlot({
      width: width, height: 180,
      scales: {x: {time: true}},
      series: [{}, ...KINDS[kind].series.map(([label], i) => ({label: label, stroke: COLORS[i], width: 2,
                                                               spanGaps: false, value: (u, v) => KINDS[kind].value(v)}))],
      axes: [{}, {size: 70, values: (u, ticks) => ticks.map((v) => KINDS[kind].value(v))}],
    }, data, holder);
    charts.set(key, plot);
  }

  async function read(url) {
    const response = await fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}});
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((body.error && body.error.message) || ("HTTP " + response.status));
    return body;
  }

  async function refresh() {
    clearTimeout(timer);
    let interval = 10;
    try {
      const [current, history] = await Promise.all([
        read(section.dataset.stats), read(section.dataset.history + "?period=" + period)]);
      interval = Math.max(2, current.interval_s || 10);
      for (const node of current.nodes) {
        const box = nodeBox(node);
        drawFigures(box, node);
        if (node.role !== "data") continue;
        const points = (history.nodes || {})[node.node] || [];
        for (const kind of Object.keys(KINDS)) {
          if (kind === "swap" && !(node.swap && node.swap.allowed)) continue;
          drawChart(box, node, kind, points);
        }
      }
      status.textContent = current.nodes.length ? "" : "No node to show.";
      updated.textContent = current.sampled_at ? "sampled " + new Date(current.sampled_at * 1000).toLocaleTimeString() : "";
    } catch (e) {
      status.textContent = "Stats unavailable: " + e.message;
    }
    timer = setTimeout(refresh, interval * 1000);
  }

  for (const button of document.querySelectorAll(".period-choice")) {
    button.addEventListener("click", () => {
      period = button.dataset.period;
      for (const b of document.querySelectorAll(".period-choice")) b.classList.toggle("active", b === button);
      refresh();
    });
  }
  window.addEventListener("load", refresh);
})();
