#include "mtl/report/html.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "mtl/core/error.h"
#include "mtl/core/text.h"
#include "mtl/report/assets.h"
#include "mtl/report/charts.h"

namespace mtl {

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

// JSON that is safe inside a <script> element: no '<' (the only place it can occur is inside strings).
std::string script_json(const nlohmann::json& j) {
  std::string s = j.dump();
  std::string out;
  for (char c : s) out += c == '<' ? std::string("\\u003c") : std::string(1, c);
  return out;
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::string format_value(double v) {
  if (!std::isfinite(v)) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, std::abs(v) >= 1000 ? "%.0f" : "%.4f", v);
  return buf;
}

void flatten(const YAML::Node& n, const std::string& path, std::vector<std::pair<std::string, std::string>>& out) {
  if (n.IsMap()) {
    for (const auto& kv : n) flatten(kv.second, path.empty() ? kv.first.as<std::string>() : path + "." + kv.first.as<std::string>(), out);
    return;
  }
  if (n.IsSequence()) {
    const bool scalars = std::all_of(n.begin(), n.end(), [](const YAML::Node& e) { return e.IsScalar() || e.IsNull(); });
    if (!scalars) {
      for (size_t i = 0; i < n.size(); ++i) flatten(n[i], path + "[" + std::to_string(i) + "]", out);
      return;
    }
    YAML::Emitter e;
    e << YAML::Flow << n;
    out.emplace_back(path, e.c_str());
    return;
  }
  out.emplace_back(path, n.IsNull() ? "null" : n.as<std::string>());
}

// The last evaluation of each run: one row per run, one column per metric (every run's keys, first-seen order).
std::string final_table(const std::vector<RunLog>& runs) {
  std::vector<std::string> columns;
  std::vector<const LogLine*> last(runs.size(), nullptr);
  for (size_t r = 0; r < runs.size(); ++r) {
    auto evals = runs[r].lines_of("eval");
    if (evals.empty()) continue;
    last[r] = evals.back();
    for (const auto& kv : last[r]->values)
      if (kv.first.find("/gate") == std::string::npos && std::find(columns.begin(), columns.end(), kv.first) == columns.end())
        columns.push_back(kv.first);
  }
  std::string html = "<table id=\"final\"><thead><tr><th>run</th><th>epochs</th><th>steps</th><th>train seconds</th>";
  for (const auto& c : columns) html += "<th>" + html_escape(c) + "</th>";
  html += "</tr></thead><tbody>\n";
  for (size_t r = 0; r < runs.size(); ++r) {
    double seconds = 0;
    int64_t epochs = 0, steps = 0;
    for (const LogLine* l : runs[r].lines_of("epoch")) {
      const double s = l->get("seconds");
      if (std::isfinite(s)) seconds += s;
      epochs = std::max<int64_t>(epochs, l->epoch + 1);
    }
    for (const auto& l : runs[r].lines) steps = std::max(steps, l.step);
    html += "<tr><td>" + html_escape(runs[r].name) + "</td><td>" + std::to_string(epochs) + "</td><td>" +
            std::to_string(steps) + "</td><td>" + format_value(seconds) + "</td>";
    for (const auto& c : columns) html += "<td>" + (last[r] ? format_value(last[r]->get(c)) : "") + "</td>";
    html += "</tr>\n";
  }
  html += "</tbody></table>\n";
  if (std::none_of(last.begin(), last.end(), [](const LogLine* l) { return l != nullptr; }))
    html += "<p>No evaluation yet.</p>\n";
  return html;
}

std::string configs_section(const std::vector<RunLog>& runs) {
  if (runs.size() == 1)
    return "<h2>Config</h2>\n<pre id=\"config\">" +
           html_escape(runs[0].config.empty() ? "(the run directory has no config.yaml)" : runs[0].config) + "</pre>\n";
  std::vector<std::string> configs;
  for (const auto& r : runs) configs.push_back(r.config);
  auto diff = config_differences(configs);
  std::string html = "<h2>Config differences</h2>\n";
  if (diff.empty()) return html + "<p>The runs' configs are identical.</p>\n";
  html += "<table id=\"config-diff\"><thead><tr><th>key</th>";
  for (const auto& r : runs) html += "<th>" + html_escape(r.name) + "</th>";
  html += "</tr></thead><tbody>\n";
  for (const auto& [key, values] : diff) {
    html += "<tr><td>" + html_escape(key) + "</td>";
    for (const auto& v : values) html += "<td>" + html_escape(v) + "</td>";
    html += "</tr>\n";
  }
  return html + "</tbody></table>\n";
}

const char* kStyle = R"CSS(
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin-top: 28px; } h3 { font-size: 15px; margin: 18px 0 6px; }
table { border-collapse: collapse; margin: 8px 0; } th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; } th { background: #f3f3f3; }
pre { background: #f7f7f7; padding: 10px; overflow: auto; max-height: 480px; }
.chart { display: inline-block; vertical-align: top; margin: 0 18px 18px 0; }
)CSS";

// Builds one uPlot chart per entry of the embedded data, under its section's heading.
const char* kScript = R"JS(
(function () {
  var data = JSON.parse(document.getElementById('mtl-data').textContent);
  var palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
                 '#bcbd22', '#17becf'];
  var root = document.getElementById('charts');
  // Axis labels that fit: 14000 -> "14k", 0.0125 -> "0.0125".
  function compact(v) {
    if (v == null) return '';
    var a = Math.abs(v);
    if (a >= 1e6) return +(v / 1e6).toPrecision(3) + 'M';
    if (a >= 1e4) return +(v / 1e3).toPrecision(3) + 'k';
    return +v.toPrecision(4) + '';
  }
  var section = null;
  data.charts.forEach(function (c, i) {
    if (c.section !== section) {
      section = c.section;
      var h = document.createElement('h3');
      h.textContent = section;
      root.appendChild(h);
    }
    var box = document.createElement('div');
    box.className = 'chart';
    box.id = 'chart-' + i;
    root.appendChild(box);
    var series = [{label: c.x_label}];
    c.series.forEach(function (s, k) {
      series.push({label: s.label, stroke: palette[k % palette.length], width: 2, spanGaps: true,
                   points: {show: c.x.length <= 30}});
    });
    var opts = {title: c.title, width: 520, height: 280, scales: {x: {time: false}},
                axes: [{label: c.x_label}, {size: 64, values: function (u, vals) { return vals.map(compact); }}],
                series: series};
    new uPlot(opts, [c.x].concat(c.series.map(function (s) { return s.y; })), box);
  });
})();
)JS";

}  // namespace

std::string markdown_table_html(const std::string& markdown) {
  std::string html = "<table class=\"summary\">\n";
  size_t row = 0, pos = 0;
  while (pos < markdown.size()) {
    size_t end = markdown.find('\n', pos);
    if (end == std::string::npos) end = markdown.size();
    std::string line = markdown.substr(pos, end - pos);
    pos = end + 1;
    if (line.size() < 2 || line[0] != '|') continue;
    if (line.find("---") != std::string::npos && line.find_first_not_of("|-: ") == std::string::npos) continue;
    std::vector<std::string> cells;
    size_t a = 1;
    for (size_t b; (b = line.find('|', a)) != std::string::npos; a = b + 1) {
      std::string c = line.substr(a, b - a);
      const size_t l = c.find_first_not_of(' '), r = c.find_last_not_of(' ');
      cells.push_back(l == std::string::npos ? "" : c.substr(l, r - l + 1));
    }
    const char* tag = row++ == 0 ? "th" : "td";
    html += "<tr>";
    for (const auto& c : cells) html += std::string("<") + tag + ">" + html_escape(c) + "</" + tag + ">";
    html += "</tr>\n";
  }
  return html + "</table>\n";
}

std::vector<std::pair<std::string, std::string>> flatten_yaml(const std::string& yaml) {
  std::vector<std::pair<std::string, std::string>> out;
  try {
    flatten(YAML::Load(yaml), "", out);
  } catch (const YAML::Exception& e) {
    out.assign({{"(config)", first_line(e.what())}});
  }
  return out;
}

std::vector<std::pair<std::string, std::vector<std::string>>> config_differences(const std::vector<std::string>& configs) {
  std::vector<std::string> keys;
  std::vector<std::map<std::string, std::string>> maps;
  for (const auto& c : configs) {
    std::map<std::string, std::string> m;
    for (auto& [k, v] : flatten_yaml(c)) {
      if (!m.count(k) && std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
      m[k] = v;
    }
    maps.push_back(std::move(m));
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& k : keys) {
    std::vector<std::string> values;
    for (const auto& m : maps) values.push_back(m.count(k) ? m.at(k) : "");
    if (std::adjacent_find(values.begin(), values.end(), std::not_equal_to<>()) != values.end())
      out.emplace_back(k, std::move(values));
  }
  return out;
}

std::string report_html(const std::vector<RunLog>& runs, const ReportOptions& options) {
  const ChartLibrary lib = chart_library();
  if (*lib.js == '\0')
    throw Error("mtl report", "this build has no charting library: run tools/fetch_uplot.sh (fetches uPlot from npm; "
                              "tools/setup.sh runs it) and rebuild");
  std::vector<std::string> names;
  for (const auto& r : runs) names.push_back(r.name);
  const std::string title = options.title.empty() ? "mtl report: " + join(names) : options.title;
  nlohmann::json charts = nlohmann::json::array();
  for (const Chart& c : report_charts(runs)) {
    nlohmann::json j{{"section", c.section}, {"title", c.title}, {"x_label", c.x_label}, {"x", c.x}};
    j["series"] = nlohmann::json::array();
    for (const auto& s : c.series) {
      nlohmann::json y = nlohmann::json::array();
      for (double v : s.y) y.push_back(number_or_null(v));
      j["series"].push_back({{"label", s.label}, {"y", y}});
    }
    charts.push_back(j);
  }
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" +
                     html_escape(title) + "</title>\n<style>" + lib.css + "</style>\n<style>" + kStyle + "</style>\n";
  html += "</head><body>\n<h1>" + html_escape(title) + "</h1>\n<p>Runs: ";
  for (size_t i = 0; i < runs.size(); ++i) html += (i ? ", " : "") + std::string("<code>") + html_escape(runs[i].dir) + "</code>";
  html += ". Charts: uPlot " + html_escape(lib.version) + ".</p>\n" + options.summary_html;
  html += "<h2>Final evaluation</h2>\n" + final_table(runs);
  html += "<h2>Curves</h2>\n<div id=\"charts\"></div>\n";
  if (charts.empty()) html += "<p>No curves yet.</p>\n";
  html += configs_section(runs);
  html += "<script>" + std::string(lib.js) + "</script>\n";
  html += "<script type=\"application/json\" id=\"mtl-data\">" + script_json({{"charts", charts}}) + "</script>\n";
  html += "<script>" + std::string(kScript) + "</script>\n</body></html>\n";
  return html;
}

}  // namespace mtl
