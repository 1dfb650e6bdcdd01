#include "ionn/granularity.h"

#include <algorithm>

namespace ionn {

const char* GranularityName(Granularity g) { return g == Granularity::kLayer ? "layer" : "block"; }

Result<Granularity> ParseGranularity(const std::string& name) {
  if (name == "layer") return Granularity::kLayer;
  if (name == "block") return Granularity::kBlock;
  return Status::Invalid("unknown granularity '" + name + "' (expected layer or block)");
}

std::vector<int> ChainCutPoints(const CostGraph& g) {
  const int n = g.num_layers();
  std::vector<int> last_use(g.num_tensors(), -1);
  for (int t = 0; t < g.num_tensors(); ++t) {
    for (int c : g.consumers(t)) last_use[t] = std::max(last_use[t], c);
    if (g.is_output(t)) last_use[t] = n;
  }
  std::vector<int> cuts;
  int reach = -1;  // latest read of any tensor made before layer k
  for (int t = 0; t < g.num_inputs(); ++t) reach = std::max(reach, last_use[t]);
  for (int k = 0; k < n; ++k) {
    if (reach <= k) cuts.push_back(k);
    reach = std::max(reach, last_use[g.tensor_of_layer(k)]);
  }
  if (cuts.empty() || cuts.back() != n - 1) cuts.push_back(n - 1);
  return cuts;
}

UnitGraph MakeUnits(const CostGraph& g, Granularity granularity) {
  if (granularity == Granularity::kLayer) {
    UnitGraph u{g, {}};
    for (int k = 0; k < g.num_layers(); ++k) u.layers_of_unit.push_back({k});
    return u;
  }
  std::vector<CostInput> inputs = g.inputs();
  std::vector<CostLayer> units;
  std::vector<std::vector<int>> members;
  int begin = 0;
  for (int end : ChainCutPoints(g)) {
    CostLayer unit;
    const CostLayer& last = g.layer(end);
    unit.name = last.name;
    if (units.empty()) {
      for (const auto& in : inputs) unit.inputs.push_back(in.name);
    } else {
      unit.inputs.push_back(units.back().name);
    }
    std::vector<int> layers;
    for (int k = begin; k <= end; ++k) {
      unit.client_ms += g.layer(k).client_ms;
      unit.server_ms += g.layer(k).server_ms;
      unit.upload_ms += g.layer(k).upload_ms;
      layers.push_back(k);
    }
    unit.up_ms = last.up_ms;
    unit.down_ms = last.down_ms;
    units.push_back(std::move(unit));
    members.push_back(std::move(layers));
    begin = end + 1;
  }
  auto made = CostGraph::Create(std::move(inputs), std::move(units), {g.layers().back().name},
                                g.partition_overhead_ms(), /*block_units=*/true);
  // Names and times come from a valid graph, so creation cannot fail.
  return UnitGraph{std::move(made.value()), std::move(members)};
}

}  // namespace ionn
