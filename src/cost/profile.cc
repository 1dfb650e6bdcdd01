#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "ionn/csv.h"
#include "ionn/file.h"
#include "ionn/model_costs.h"

namespace ionn {
namespace {

// The header's columns: `first`, then some of `optional` (each once, at
// least one); an unknown column is an error naming it.
Result<std::vector<int>> Columns(const CsvRow& header, const std::string& first,
                                 const std::vector<std::string>& optional, const std::string& expected) {
  std::vector<int> col(optional.size(), -1);
  if (header.cells.empty() || header.cells[0] != first) return Status::Invalid("line 1: expected the header " + expected);
  for (size_t i = 1; i < header.cells.size(); ++i) {
    size_t k = 0;
    while (k < optional.size() && optional[k] != header.cells[i]) ++k;
    if (k == optional.size()) {
      return Status::Invalid("line 1: unknown column '" + header.cells[i].substr(0, 64) + "' (expected " + expected + ")");
    }
    if (col[k] >= 0) return Status::Invalid("line 1: column '" + optional[k] + "' twice");
    col[k] = static_cast<int>(i);
  }
  return col;
}

Result<std::optional<double>> Number(const std::string& cell, const std::string& where, bool allow_negative) {
  if (cell.empty()) return std::optional<double>();
  char* end = nullptr;
  const double v = std::strtod(cell.c_str(), &end);
  if (end == cell.c_str() || *end != '\0' || !std::isfinite(v)) {
    return Status::Invalid(where + ": '" + cell + "' is not a number");
  }
  if (!allow_negative && v < 0) return Status::Invalid(where + ": negative time " + cell);
  return std::optional<double>(v);
}

}  // namespace

// One policy for both files: RFC 4180 (ionn/csv.h), known columns only,
// no row with more cells than the header, no key twice. Rows for layers or
// types the model does not have are ignored where the file is used (a
// profile may cover several models); missing ones are errors there.
Result<Profile> ParseProfileCsv(const std::string& text) {
  IONN_ASSIGN_OR_RETURN(const std::vector<CsvRow> rows, ParseCsv(text));
  if (rows.empty()) return Status::Invalid("empty profile");
  IONN_ASSIGN_OR_RETURN(const std::vector<int> col,
                        Columns(rows[0], "layer", {"client_ms", "server_ms"}, "layer,client_ms,server_ms"));
  if (col[0] < 0 && col[1] < 0) return Status::Invalid("line 1: expected the header layer,client_ms,server_ms");
  Profile p;
  for (size_t r = 1; r < rows.size(); ++r) {
    const auto& cells = rows[r].cells;
    const std::string line = "line " + std::to_string(rows[r].line);
    if (cells[0].empty()) return Status::Invalid(line + ": empty layer name");
    const std::string where = line + " ('" + cells[0].substr(0, 64) + "')";
    if (cells.size() > rows[0].cells.size()) return Status::Invalid(where + ": more cells than the header has columns");
    ProfileRow row;
    for (auto [c, dst] : {std::pair{col[0], &row.client_ms}, std::pair{col[1], &row.server_ms}}) {
      if (c < 0) continue;
      auto v = Number(c < int(cells.size()) ? cells[c] : "", where, false);
      if (!v.ok()) return v.status();
      *dst = *v;
    }
    if (!p.rows.emplace(cells[0], row).second) return Status::Invalid(where + ": duplicate layer");
    p.order.push_back(cells[0]);
  }
  return p;
}

Result<Profile> ReadProfileCsv(const std::string& path) { return ParseFile(path, ParseProfileCsv); }

std::string ProfileToCsv(const Graph& graph, const std::vector<double>& client_ms,
                         const std::vector<double>& server_ms) {
  std::string out = "layer,client_ms,server_ms\n";
  char buf[64];
  for (size_t k = 0; k < graph.layers.size(); ++k) {
    out += CsvField(graph.layers[k].name) + ",";
    if (k < client_ms.size()) std::snprintf(buf, sizeof buf, "%.6g", client_ms[k]), out += buf;
    out += ",";
    if (k < server_ms.size()) std::snprintf(buf, sizeof buf, "%.6g", server_ms[k]), out += buf;
    out += "\n";
  }
  return out;
}

Profile ProfileFromTimes(const Graph& graph, const std::vector<LayerTimes>& times, bool server_column,
                         double scale) {
  Profile p;
  for (size_t k = 0; k < graph.layers.size() && k < times.size(); ++k) {
    const std::string& name = graph.layers[k].name;
    p.order.push_back(name);
    (server_column ? p.rows[name].server_ms : p.rows[name].client_ms) = times[k].median_ms * scale;
  }
  return p;
}

nlohmann::json ProfileToJson(const Graph& graph, const std::vector<LayerTimes>& times, int threads, int warmup,
                             int repeats) {
  nlohmann::json doc = {{"format", "ionn-profile/1"}, {"threads", threads}, {"repeats", repeats}, {"warmup", warmup}};
  doc["layers"] = nlohmann::json::array();
  for (size_t k = 0; k < graph.layers.size() && k < times.size(); ++k) {
    doc["layers"].push_back({{"layer", graph.layers[k].name}, {"kind", LayerKindName(graph.layers[k].kind)},
                             {"median_ms", times[k].median_ms}, {"min_ms", times[k].min_ms},
                             {"max_ms", times[k].max_ms}});
  }
  return doc;
}

Result<ServerRegression> ParseRegressionCsv(const std::string& text) {
  IONN_ASSIGN_OR_RETURN(const std::vector<CsvRow> rows, ParseCsv(text));
  const std::string expected = "layer_type,a_ms_per_unit,b_ms";
  if (rows.empty()) return Status::Invalid("line 1: expected the header " + expected);
  IONN_ASSIGN_OR_RETURN(const std::vector<int> col, Columns(rows[0], "layer_type", {"a_ms_per_unit", "b_ms"}, expected));
  if (col[0] < 0 || col[1] < 0) return Status::Invalid("line 1: expected the header " + expected);
  ServerRegression r;
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& cells = rows[i].cells;
    const std::string where = "line " + std::to_string(rows[i].line) + " ('" + cells[0].substr(0, 64) + "')";
    if (cells[0].empty()) return Status::Invalid("line " + std::to_string(rows[i].line) + ": empty layer type");
    if (cells.size() != rows[0].cells.size()) return Status::Invalid(where + ": expected " + std::to_string(rows[0].cells.size()) + " cells");
    auto a = Number(cells[col[0]], where + " a", true), b = Number(cells[col[1]], where + " b", true);
    if (!a.ok()) return a.status();
    if (!b.ok()) return b.status();
    if (!a->has_value() || !b->has_value()) return Status::Invalid(where + ": empty coefficient");
    if (!r.by_type.emplace(cells[0], std::make_pair(**a, **b)).second) return Status::Invalid(where + ": duplicate layer type");
  }
  return r;
}

Result<ServerRegression> ReadRegressionCsv(const std::string& path) { return ParseFile(path, ParseRegressionCsv); }

std::string RegressionToCsv(const ServerRegression& regression) {
  std::string out = "layer_type,a_ms_per_unit,b_ms\n";
  char line[128];
  for (const auto& [type, ab] : regression.by_type) {
    std::snprintf(line, sizeof line, ",%.6g,%.6g\n", ab.first, ab.second);
    out += CsvField(type) + line;
  }
  return out;
}

}  // namespace ionn
