#include "ionn/slices.h"

#include <map>

namespace ionn {

Result<CostGraph> SliceCosts(const CostGraph& costs, const std::vector<LayerSlices>& slices, double rtt_ms) {
  if (slices.empty()) return costs;  // as it was, to the bit
  std::map<int, const LayerSlices*> by_layer;
  for (const LayerSlices& s : slices) {
    if (s.layer < 0 || s.layer >= costs.num_layers() || costs.layer(s.layer).name != s.name) {
      return Status::Invalid("slices: the cost graph has no layer '" + s.name + "' at position " +
                             std::to_string(s.layer));
    }
    by_layer[s.layer] = &s;
  }
  std::vector<CostLayer> layers;
  std::vector<double> upload_ms;
  for (int k = 0; k < costs.num_layers(); ++k) {
    const CostLayer& l = costs.layer(k);
    auto it = by_layer.find(k);
    if (it == by_layer.end()) {
      layers.push_back(l);
      upload_ms.push_back(l.upload_ms);
      continue;
    }
    int64_t total = 0;
    for (int64_t n : it->second->outputs) total += n;
    if (total <= 0) return Status::Invalid("slices: layer '" + l.name + "' has no outputs to slice");
    CostLayer join{l.name, {}, 0, 0, 0, l.up_ms, l.down_ms};
    for (size_t i = 0; i < it->second->outputs.size(); ++i) {
      const double share = static_cast<double>(it->second->outputs[i]) / static_cast<double>(total);
      // The bytes' time shared out, the latency not.
      const auto transfer = [&](double ms) { return ms > 0 ? (ms - rtt_ms / 2) * share + rtt_ms / 2 : ms; };
      CostLayer s{SliceName(l.name, static_cast<int>(i)), l.inputs, l.client_ms * share, l.server_ms * share,
                  l.upload_ms * share, transfer(l.up_ms), transfer(l.down_ms)};
      join.inputs.push_back(s.name);
      upload_ms.push_back(s.upload_ms);
      layers.push_back(std::move(s));
    }
    layers.push_back(std::move(join));
    upload_ms.push_back(0);
  }
  IONN_ASSIGN_OR_RETURN(const CostGraph sliced, CostGraph::Create(costs.inputs(), std::move(layers),
                                                                  costs.output_names(), costs.partition_overhead_ms(),
                                                                  costs.block_units()));
  IONN_ASSIGN_OR_RETURN(const CostGraph encoded, sliced.WithUploads(costs.upload_encoding(), upload_ms));
  return encoded.WithFp32Upload(costs.fp32_all_at_once_ms() - costs.partition_overhead_ms());
}

Profile SliceProfile(const Profile& profile, const std::vector<LayerSlices>& slices) {
  Profile out = profile;
  for (const LayerSlices& s : slices) {
    auto whole = profile.rows.find(s.name);
    if (whole == profile.rows.end()) continue;
    int64_t total = 0;
    for (int64_t n : s.outputs) total += n;
    if (total <= 0) continue;
    const auto times = [](const std::optional<double>& ms, double share) {
      return ms ? std::optional<double>(*ms * share) : std::nullopt;
    };
    for (size_t i = 0; i < s.outputs.size(); ++i) {
      const double share = static_cast<double>(s.outputs[i]) / static_cast<double>(total);
      const std::string name = SliceName(s.name, static_cast<int>(i));
      out.rows[name] = ProfileRow{times(whole->second.client_ms, share), times(whole->second.server_ms, share)};
      out.order.push_back(name);
    }
    out.rows[s.name] = ProfileRow{times(whole->second.client_ms, 0), times(whole->second.server_ms, 0)};
  }
  return out;
}

}  // namespace ionn
