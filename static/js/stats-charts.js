// The dashboard's charts (templates/stats/dashboard.html), drawn with the vendored ECharts.
// The page puts every chart's numbers and translated labels, as JSON, in the `data-charts`
// attribute of #stats (no inline script: the CSP forbids it); each chart fills the element
// with its id. The tables beside the charts carry the same numbers, so nothing is lost without
// JavaScript. Tooltips render inside the canvas (richText): HTML tooltips carry style
// attributes, which the CSP refuses.
(function () {
  "use strict";
  var source = document.getElementById("stats");
  if (!source || !source.dataset.charts || typeof window.echarts === "undefined") { return; }
  var page = JSON.parse(source.dataset.charts);
  var locale = page.lang === "zh" ? "ZH" : "EN";
  var numbers = new Intl.NumberFormat(page.lang === "zh" ? "zh-CN" : "en");
  var COLOURS = ["#0b5cad", "#1c7c3c", "#9a6700", "#7a3ea1", "#b42318"];
  var ROW_PX = 26;  // a horizontal bar chart's height grows with its rows
  var charts = [];

  function format(value) { return value === null || value === undefined ? "" : numbers.format(value); }

  function baseOption(chart, narrow) {
    return {
      color: COLOURS,
      animation: false,
      textStyle: { fontFamily: "system-ui, \"PingFang SC\", \"Noto Sans CJK SC\", \"Microsoft YaHei\", sans-serif" },
      tooltip: { trigger: "axis", renderMode: "richText", axisPointer: { type: "shadow" },
        valueFormatter: format },
      legend: { type: "scroll", top: 0, left: 0, right: 0, itemGap: narrow ? 8 : 16 },
      grid: { left: 16, right: narrow ? 16 : 32, top: chart.series.length > 1 ? 36 : 12,
        bottom: 8, containLabel: true }
    };
  }

  function truncate(text, max) {
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }

  function horizontal(chart, narrow) {
    var option = baseOption(chart, narrow);
    var labelChars = narrow ? 10 : 20;
    option.yAxis = { type: "category", inverse: true, data: chart.categories,
      axisLabel: { formatter: function (v) { return truncate(v, labelChars); } } };
    option.xAxis = { type: "value", axisLabel: { formatter: format, hideOverlap: true },
      splitNumber: narrow ? 3 : 5 };
    option.series = chart.series.map(function (s) {
      if (s.target) {
        // A target is a mark on its row, not a bar of its own.
        return { name: s.name, type: "scatter", symbol: "rect", symbolSize: [3, 16], data: s.data,
          itemStyle: { color: "#1d2733" }, z: 3 };
      }
      return { name: s.name, type: "bar", data: s.data, barMaxWidth: 14 };
    });
    return option;
  }

  function progress(chart, narrow) {
    var option = horizontal(chart, narrow);
    option.legend = { show: false };
    option.grid.right = 56;  // room for the label of a bar that reaches the end
    option.xAxis = { type: "value", min: 0, max: function (v) { return Math.min(Math.max(100, Math.ceil(v.max / 50) * 50), 200); },
      axisLabel: { formatter: "{value}%" }, splitNumber: narrow ? 2 : 5 };
    option.series = [{ name: chart.series[0].name, type: "bar", data: chart.series[0].data,
      barMaxWidth: 18, label: { show: true, position: "right", formatter: "{c}%" },
      markLine: { silent: true, symbol: "none", data: [{ xAxis: 100 }], label: { show: false },
        lineStyle: { color: "#1c7c3c", type: "dashed" } } }];
    option.tooltip.valueFormatter = function (v) { return format(v) + "%"; };
    return option;
  }

  function line(chart, narrow) {
    var option = baseOption(chart, narrow);
    option.xAxis = { type: "category", data: chart.categories, boundaryGap: false,
      axisLabel: { interval: narrow ? 1 : 0 } };
    option.yAxis = { type: "value", axisLabel: { formatter: format }, splitNumber: 4 };
    option.tooltip.axisPointer = { type: "line" };
    option.series = chart.series.map(function (s) {
      return { name: s.name, type: "line", data: s.data, symbolSize: 6 };
    });
    return option;
  }

  var BUILD = { hbar: horizontal, progress: progress, line: line };

  function draw(entry) {
    var narrow = entry.element.clientWidth < 520;
    entry.instance.setOption(BUILD[entry.chart.kind](entry.chart, narrow), true);
  }

  page.charts.forEach(function (chart) {
    var element = document.getElementById(chart.id);
    if (!element || !BUILD[chart.kind]) { return; }
    if (chart.kind !== "line") {
      var legend = chart.series.length > 1 ? 40 : 0;
      element.style.height = Math.max(160, chart.categories.length * ROW_PX + 56 + legend) + "px";
    }
    element.classList.add("is-drawn");
    var entry = { element: element, chart: chart,
      instance: window.echarts.init(element, null, { locale: locale }) };
    draw(entry);
    charts.push(entry);
  });

  var pending = null;
  function resizeAll() {
    charts.forEach(function (entry) { entry.instance.resize(); draw(entry); });
  }
  window.addEventListener("resize", function () {
    if (pending) { window.clearTimeout(pending); }
    pending = window.setTimeout(resizeAll, 120);
  });
  // Printing lays the page out at the paper's width: draw again for it and for the screen after.
  window.addEventListener("beforeprint", resizeAll);
  window.addEventListener("afterprint", resizeAll);
})();
