// Monthly contribution income, benefit expense and running balance of the year, per region.
document.querySelectorAll(".chart").forEach(function (node) {
  var m = JSON.parse(node.dataset.monthly);
  var months = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"].map(function (x) { return x + "月"; });
  echarts.init(node).setOption({
    tooltip: { trigger: "axis" },
    legend: { data: ["征缴收入 income", "待遇支出 expense", "结余 balance"] },
    xAxis: { type: "category", data: months },
    yAxis: { type: "value", name: "元 yuan" },
    series: [
      { name: "征缴收入 income", type: "bar", data: m.income },
      { name: "待遇支出 expense", type: "bar", data: m.expense },
      { name: "结余 balance", type: "line", data: m.balance }
    ]
  });
});
