// flowkeeper's pages: the little script they need beyond htmx (chart, graph, live rows).
(function () {
  "use strict";

  // A row of the runs table that arrives by SSE replaces the row of the same run; a new
  // run is let through to htmx, which adds it at the top (on the first page only).
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    if (event.detail.type === "ended") {
      event.preventDefault();
      loadFinalPage();
      return;
    }
    var rows = event.target.closest("[data-live-rows]");
    if (!rows) { return; }
    var holder = document.createElement("tbody");
    holder.innerHTML = event.detail.data;
    var row = holder.firstElementChild;
    var existing = row && document.getElementById(row.id);
    if (existing) {
      event.preventDefault();
      existing.replaceWith(row);
    }
  });

  // A run that has ended: its page is loaded again once, in place, in its final form
  // (buttons for an ended run, the task graph, the reports, lineage, firings); the final
  // page opens no stream, so nothing reconnects. Both streams say `ended`: once is enough.
  var finalPageRequested = false;
  function loadFinalPage() {
    if (finalPageRequested || !window.htmx) { return; }
    finalPageRequested = true;
    window.htmx.ajax("GET", window.location.pathname + window.location.search,
                     { target: "#main", select: "#main", swap: "outerHTML" });
  }

  // A filter form leaves its empty fields out of the address: `/runs?state=Failed`, a
  // link worth sharing, rather than `/runs?state=Failed&flow=&deployment=&tag=&since=`.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form.filters[method=get]")) { return; }
    Array.prototype.forEach.call(form.elements, function (field) {
      if (field.name && field.value === "") { field.disabled = true; }
    });
    setTimeout(function () {
      Array.prototype.forEach.call(form.elements, function (field) { field.disabled = false; });
    }, 0);
  });

  var STATE_COLOURS = {
    Completed: "--ok", Failed: "--bad", Crashed: "--bad", Cancelled: "--warn",
    Cancelling: "--warn", Late: "--warn", Running: "--info", Retrying: "--info",
    AwaitingRetry: "--info"
  };

  function colour(state) {
    var name = STATE_COLOURS[state] || "--idle";
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function drawChart(holder) {
    if (!window.uPlot) { return; }
    fetch(holder.dataset.src, { credentials: "same-origin" })
      .then(function (answer) { return answer.json(); })
      .then(function (data) {
        var states = Object.keys(data.series);
        var series = [{}].concat(states.map(function (state) {
          return { label: state, stroke: colour(state), width: 2, points: { show: false } };
        }));
        var values = [data.x].concat(states.map(function (state) { return data.series[state]; }));
        var width = Math.max(280, holder.clientWidth);
        holder.textContent = "";
        new window.uPlot({ width: width, height: 180, series: series,
          axes: [{ stroke: colour("") }, { stroke: colour("") }] }, values, holder);
      });
  }

  function drawGraph(holder) {
    var data = JSON.parse(document.getElementById("task-graph-data").textContent);
    if (!window.dagre) { return; }
    var graph = new window.dagre.graphlib.Graph();
    graph.setGraph({ rankdir: "LR", nodesep: 20, ranksep: 50 });
    graph.setDefaultEdgeLabel(function () { return {}; });
    data.nodes.forEach(function (node) {
      graph.setNode(node.id, { label: node.label, state: node.state,
        width: Math.max(80, node.label.length * 7 + 20), height: 30 });
    });
    data.edges.forEach(function (edge) { graph.setEdge(edge[0], edge[1]); });
    window.dagre.layout(graph);
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    var size = graph.graph();
    svg.setAttribute("viewBox", "0 0 " + (size.width + 10) + " " + (size.height + 10));
    svg.setAttribute("width", size.width + 10);
    graph.edges().forEach(function (edge) {
      var points = graph.edge(edge).points;
      var path = document.createElementNS(ns, "path");
      path.setAttribute("d", points.map(function (p, i) {
        return (i ? "L" : "M") + (p.x + 5) + " " + (p.y + 5);
      }).join(" "));
      svg.appendChild(path);
    });
    graph.nodes().forEach(function (id) {
      var node = graph.node(id);
      var group = document.createElementNS(ns, "g");
      group.setAttribute("class", "state-" + node.state);
      group.setAttribute("data-testid", "graph-node");
      var rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", node.x - node.width / 2 + 5);
      rect.setAttribute("y", node.y - node.height / 2 + 5);
      rect.setAttribute("width", node.width);
      rect.setAttribute("height", node.height);
      rect.setAttribute("rx", 6);
      var text = document.createElementNS(ns, "text");
      text.setAttribute("x", node.x + 5);
      text.setAttribute("y", node.y + 9);
      text.setAttribute("text-anchor", "middle");
      text.textContent = node.label;
      group.appendChild(rect);
      group.appendChild(text);
      svg.appendChild(group);
    });
    holder.appendChild(svg);
  }

  // A polled part (the workers page) skips its polls while the tab is hidden, and catches
  // up as soon as it is shown again.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (document.hidden && event.target.closest("[data-poll-while-visible]")) {
      event.preventDefault();
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) { return; }
    Array.prototype.forEach.call(document.querySelectorAll("[data-poll-while-visible]"),
      function (part) {
        window.htmx.ajax("GET", part.getAttribute("hx-get"), { target: part, swap: "innerHTML" });
      });
  });

  // each figure is drawn once: at load, and when a swap brings a new one (the run page's
  // final form, loadFinalPage)
  function drawFigures() {
    [["runs-chart", drawChart], ["task-graph", drawGraph]].forEach(function (figure) {
      var holder = document.getElementById(figure[0]);
      if (holder && !holder.dataset.drawn) {
        holder.dataset.drawn = "yes";
        figure[1](holder);
      }
    });
  }
  document.addEventListener("DOMContentLoaded", drawFigures);
  document.addEventListener("htmx:afterSettle", drawFigures);
})();
