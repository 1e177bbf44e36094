// `mtl report`'s output: one self-contained HTML file (no network: the charting library, the data and the page
// script are inlined) with the runs' final evaluation table, their curves (mtl/report/charts.h), and their
// configs: the whole config for one run, the keys whose values differ for several.
//
//   std::string page = report_html({read_run_log("runs/a"), read_run_log("runs/b")}, {"ew against pcgrad"});
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mtl/report/run_log.h"

namespace mtl {

struct ReportOptions {
  std::string title;         // empty: "mtl report: <run names>"
  std::string summary_html;  // shown before the final table (a sweep's aggregate table); trusted HTML
};

/// Throws mtl::Error when this build has no charting library (tools/fetch_uplot.sh, then rebuild).
std::string report_html(const std::vector<RunLog>& runs, const ReportOptions& options = {});

/// `s` with &, <, > and " escaped for HTML text and attribute values.
std::string html_escape(const std::string& s);

/// A Markdown pipe table (header, separator, rows) as an HTML table; cells are escaped.
std::string markdown_table_html(const std::string& markdown);

/// A YAML document as (key path, value) pairs: maps give "a.b", sequences of scalars one flow value "[1, 2]",
/// other sequences "a[0].b". A document that does not parse gives one pair ("(config)", first line of the error).
std::vector<std::pair<std::string, std::string>> flatten_yaml(const std::string& yaml);

/// The keys whose values differ between the configs (or that some lack: ""), with each config's value.
std::vector<std::pair<std::string, std::vector<std::string>>> config_differences(const std::vector<std::string>& configs);

}  // namespace mtl
