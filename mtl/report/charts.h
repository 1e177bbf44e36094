// The curves of `mtl report`: what to plot from one or more runs' metrics logs (mtl/report/run_log.h), as plain
// data that the HTML writer hands to the charting library. One chart per measure (training loss, each test metric,
// delta-m, task weights, learning rate, gradient diagnostics, throughput); its series are the tasks of one run,
// or every run's tasks ("run: task") when several runs are compared, on one x axis (steps or epochs).
//
//   for (const Chart& c : report_charts(runs)) ...;   // c.x, c.series[i].y (NaN: no point there)
#pragma once

#include <string>
#include <vector>

#include "mtl/report/run_log.h"

namespace mtl {

struct ChartSeries {
  std::string label;
  std::vector<double> y;  // one entry per x; NaN where the series has no point
};

struct Chart {
  std::string section;  // heading the chart goes under, e.g. "Training" or "Gradient diagnostics"
  std::string title;    // e.g. "test accuracy"
  std::string x_label;  // "step" or "epoch"
  std::vector<double> x;  // increasing
  std::vector<ChartSeries> series;
};

/// Every chart the runs have data for, in display order. Each chart has at most `max_points` x values (longer
/// curves keep every k-th point and the last one).
std::vector<Chart> report_charts(const std::vector<RunLog>& runs, size_t max_points = 1500);

}  // namespace mtl
