// The charting library that `mtl report` inlines into its HTML: uPlot (MIT, from npm), embedded by the build
// from third_party/uplot/ (tools/fetch_uplot.sh; cmake/embed_uplot.cmake generates the definition).
#pragma once

namespace mtl {

struct ChartLibrary {
  const char* js;       // uPlot.iife.min.js; "" when the build had no copy
  const char* css;      // uPlot.min.css
  const char* version;  // e.g. "1.6.32"; "" when the build had no copy
};

ChartLibrary chart_library();

}  // namespace mtl
