// Planning time of every planner on the five zoo models (paper profiles,
// 80 Mbps, both granularities) and on synthetic chains and module DAGs of
// growing size. Prints a table; --json FILE writes the rows as JSON;
// --costs FILE (repeatable: ionn-costs/1 JSON, e.g. a transformer's from
// `ionn costs`) adds its rows at layer and block granularity; --only-costs
// measures those alone; --algorithm NAME (repeatable) times only those.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "ionn/cost_graph.h"
#include "ionn/plan.h"

using namespace ionn;

namespace {

// A synthetic model with AlexNet-like magnitudes: n layers, each with
// weights every third layer; `modules` makes inception-like blocks of four
// branches of two layers instead of a chain.
CostGraph Synthetic(int n, bool modules, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<CostLayer> layers;
  std::string entry = "in";
  for (int k = 0; static_cast<int>(layers.size()) < n; ++k) {
    auto layer = [&](const std::string& name, const std::string& input) {
      CostLayer l;
      l.name = name;
      l.inputs = {input};
      l.client_ms = 1 + 50 * u(rng);
      l.server_ms = 0.01 + 0.1 * u(rng);
      l.upload_ms = layers.size() % 3 == 0 ? 500 * u(rng) : 0;
      l.up_ms = l.down_ms = 1 + 60 * u(rng);
      return l;
    };
    const std::string id = std::to_string(k);
    if (!modules || n - static_cast<int>(layers.size()) < 9) {
      layers.push_back(layer("L" + id, entry));
      entry = layers.back().name;
      continue;
    }
    CostLayer merge = layer("M" + id, entry);
    merge.inputs.clear();
    for (int b = 0; b < 4; ++b) {
      const std::string bid = id + "_" + std::to_string(b);
      layers.push_back(layer("B" + bid + "a", entry));
      layers.push_back(layer("B" + bid + "b", layers.back().name));
      merge.inputs.push_back(layers.back().name);
    }
    layers.push_back(merge);
    entry = merge.name;
  }
  return CostGraph::Create({{"in", 60}}, layers, {layers.back().name}).value();
}

std::vector<std::string> algorithms;  // --algorithm: those timed (empty: all)

struct Row {
  std::string graph, granularity;
  int layers = 0, units = 0;
  std::vector<int> partitions;
  std::vector<double> us;
};

Row Measure(const std::string& name, const CostGraph& g, Granularity gran, double min_seconds) {
  Row row{name, GranularityName(gran), g.num_layers(), MakeUnits(g, gran).units.num_layers(), {}, {}};
  for (const auto& alg : algorithms) {
    PlannerOptions o;
    o.algorithm = alg;
    o.granularity = gran;
    UploadPlan plan = MakePlan(g, o).value();
    row.partitions.push_back(static_cast<int>(plan.partitions.size()));
    row.us.push_back(bench::MedianUs([&] { (void)MakePlan(g, o); }, 3, min_seconds));
  }
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  std::vector<std::string> cost_files;
  double min_seconds = 0.2;
  bool only_costs = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) {
      json_path = argv[++i];
    } else if (!std::strcmp(argv[i], "--costs") && i + 1 < argc) {
      cost_files.push_back(argv[++i]);
    } else if (!std::strcmp(argv[i], "--algorithm") && i + 1 < argc) {
      algorithms.push_back(argv[++i]);
    } else if (!std::strcmp(argv[i], "--quick")) {
      min_seconds = 0.02;
    } else if (!std::strcmp(argv[i], "--only-costs")) {
      only_costs = true;
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--json FILE] [--costs FILE]... [--only-costs] [--algorithm NAME]...\n", argv[0]);
      return 2;
    }
  }
  for (const auto& a : algorithms) {
    const auto names = PlannerNames();
    if (std::find(names.begin(), names.end(), a) == names.end()) {
      std::fprintf(stderr, "plan_bench: --algorithm %s is not a planner\n", a.c_str());
      return 2;
    }
  }
  if (algorithms.empty()) algorithms = PlannerNames();
  std::vector<Row> rows;
  for (const auto& path : cost_files) {
    Result<CostGraph> g = ReadCostGraphFile(path);
    if (!g.ok()) {
      std::fprintf(stderr, "plan_bench: %s\n", g.status().message().c_str());
      return 2;
    }
    std::string name = path.substr(path.find_last_of('/') + 1);
    name = name.substr(0, name.find('.'));
    for (const std::string_view suffix : {"_costs", "_layer"}) {  // bench/data: vit_b_16_layer_costs.json
      if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        name.resize(name.size() - suffix.size());
      }
    }
    for (Granularity gran : {Granularity::kLayer, Granularity::kBlock}) {
      rows.push_back(Measure(name, *g, gran, min_seconds));
    }
  }
  for (const auto& e : only_costs ? std::vector<ZooEntry>{} : ZooModels()) {
    const CostGraph g = bench::PaperCosts(e.name);
    for (Granularity gran : {Granularity::kLayer, Granularity::kBlock}) rows.push_back(Measure(e.name, g, gran, min_seconds));
  }
  for (int n : only_costs ? std::vector<int>{} : std::vector<int>{100, 250, 500, 1000}) {
    rows.push_back(Measure("chain-" + std::to_string(n), Synthetic(n, false, n), Granularity::kLayer, min_seconds));
  }
  for (int n : only_costs ? std::vector<int>{} : std::vector<int>{100, 250, 500, 1000}) {
    rows.push_back(Measure("modules-" + std::to_string(n), Synthetic(n, true, n), Granularity::kLayer, min_seconds));
  }
  std::printf("planning time, median of repeated runs (us); partitions in brackets\n");
  std::printf("%-14s %-6s %6s %6s", "graph", "gran", "layers", "units");
  for (const auto& alg : algorithms) std::printf(" %24s", alg.c_str());
  std::printf("\n");
  nlohmann::json out = nlohmann::json::array();
  for (const Row& r : rows) {
    std::printf("%-14s %-6s %6d %6d", r.graph.c_str(), r.granularity.c_str(), r.layers, r.units);
    nlohmann::json j = {{"graph", r.graph}, {"granularity", r.granularity}, {"layers", r.layers}, {"units", r.units}};
    for (size_t a = 0; a < r.us.size(); ++a) {
      char cell[64];
      std::snprintf(cell, sizeof cell, "%.1f [%d]", r.us[a], r.partitions[a]);
      std::printf(" %24s", cell);
      j[algorithms[a]] = {{"us", r.us[a]}, {"partitions", r.partitions[a]}};
    }
    std::printf("\n");
    out.push_back(j);
  }
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(1) << "\n";
  return 0;
}
