#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "ionn/file.h"
#include "ionn/model_costs.h"

namespace ionn {
namespace {

std::vector<std::string> SplitCsvLine(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) {
    while (!cell.empty() && (cell.back() == '\r' || cell.back() == ' ')) cell.pop_back();
    while (!cell.empty() && cell.front() == ' ') cell.erase(cell.begin());
    cells.push_back(cell);
  }
  if (!line.empty() && line.back() == ',') cells.push_back("");
  return cells;
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

Result<Profile> ParseProfileCsv(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line)) return Status::Invalid("empty profile");
  const auto header = SplitCsvLine(line);
  int col_client = -1, col_server = -1;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == "client_ms") col_client = int(i);
    if (header[i] == "server_ms") col_server = int(i);
  }
  if (header.empty() || header[0] != "layer" || (col_client < 0 && col_server < 0)) {
    return Status::Invalid("line 1: expected the header layer,client_ms,server_ms");
  }
  Profile p;
  for (int lineno = 2; std::getline(in, line); ++lineno) {
    if (line.empty() || line == "\r") continue;
    const auto cells = SplitCsvLine(line);
    const std::string where = "line " + std::to_string(lineno) + " ('" + cells[0] + "')";
    if (cells[0].empty()) return Status::Invalid("line " + std::to_string(lineno) + ": empty layer name");
    ProfileRow row;
    for (auto [col, dst] : {std::pair{col_client, &row.client_ms}, std::pair{col_server, &row.server_ms}}) {
      if (col < 0) continue;
      auto v = Number(col < int(cells.size()) ? cells[col] : "", where, false);
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
    out += graph.layers[k].name + ",";
    if (k < client_ms.size()) std::snprintf(buf, sizeof buf, "%.6g", client_ms[k]), out += buf;
    out += ",";
    if (k < server_ms.size()) std::snprintf(buf, sizeof buf, "%.6g", server_ms[k]), out += buf;
    out += "\n";
  }
  return out;
}

Result<ServerRegression> ParseRegressionCsv(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || SplitCsvLine(line) != std::vector<std::string>{"layer_type", "a_ms_per_unit", "b_ms"}) {
    return Status::Invalid("line 1: expected the header layer_type,a_ms_per_unit,b_ms");
  }
  ServerRegression r;
  for (int lineno = 2; std::getline(in, line); ++lineno) {
    if (line.empty() || line == "\r") continue;
    const auto cells = SplitCsvLine(line);
    const std::string where = "line " + std::to_string(lineno);
    if (cells.size() != 3) return Status::Invalid(where + ": expected 3 cells");
    auto a = Number(cells[1], where + " a", true), b = Number(cells[2], where + " b", true);
    if (!a.ok()) return a.status();
    if (!b.ok()) return b.status();
    if (!a->has_value() || !b->has_value()) return Status::Invalid(where + ": empty coefficient");
    r.by_type[cells[0]] = {**a, **b};
  }
  return r;
}

Result<ServerRegression> ReadRegressionCsv(const std::string& path) { return ParseFile(path, ParseRegressionCsv); }

std::string RegressionToCsv(const ServerRegression& regression) {
  std::string out = "layer_type,a_ms_per_unit,b_ms\n";
  char line[128];
  for (const auto& [type, ab] : regression.by_type) {
    std::snprintf(line, sizeof line, "%s,%.6g,%.6g\n", type.c_str(), ab.first, ab.second);
    out += line;
  }
  return out;
}

}  // namespace ionn
