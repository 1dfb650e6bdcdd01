#include "ionn/slices.h"

#include <algorithm>
#include <map>

namespace ionn {

std::string SliceName(const std::string& layer, int i) { return layer + "/slice" + std::to_string(i); }

std::vector<LayerSlices> ChooseSlices(const Graph& graph, const SliceOptions& options) {
  std::vector<LayerSlices> out;
  if (options.slices <= 1) return out;
  int64_t total = 0;
  for (const Layer& l : graph.layers) total += LayerWeightBytes(l);
  for (size_t k = 0; k < graph.layers.size(); ++k) {
    const Layer& l = graph.layers[k];
    const bool sliceable = l.kind == LayerKind::kFc || (l.kind == LayerKind::kConv && l.group == 1);
    if (!sliceable || l.out_channels < options.slices || total <= 0) continue;
    if (LayerWeightBytes(l) < options.min_weight_share * static_cast<double>(total)) continue;
    LayerSlices s{static_cast<int>(k), l.name, {}};
    for (int i = 0; i < options.slices; ++i) {
      s.outputs.push_back(l.out_channels / options.slices + (i < l.out_channels % options.slices ? 1 : 0));
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<Graph> SliceGraph(const Graph& graph, const std::vector<LayerSlices>& slices) {
  std::map<int, const LayerSlices*> by_layer;
  for (const LayerSlices& s : slices) {
    if (s.layer < 0 || s.layer >= static_cast<int>(graph.layers.size()) || graph.layers[s.layer].name != s.name) {
      return Status::Invalid("slices: no layer '" + s.name + "' at position " + std::to_string(s.layer));
    }
    by_layer[s.layer] = &s;
  }
  Graph out = graph;
  out.layers.clear();
  for (size_t k = 0; k < graph.layers.size(); ++k) {
    const Layer& l = graph.layers[k];
    auto it = by_layer.find(static_cast<int>(k));
    if (it == by_layer.end()) {
      out.layers.push_back(l);
      continue;
    }
    const std::string where = "slices: layer '" + l.name + "'";
    const bool sliceable = l.kind == LayerKind::kFc || (l.kind == LayerKind::kConv && l.group == 1);
    if (!sliceable) return Status::Invalid(where + " is not a fully connected layer or a convolution of group 1");
    const std::vector<int64_t>& outputs = it->second->outputs;
    int64_t sum = 0;
    for (int64_t n : outputs) {
      if (n <= 0) return Status::Invalid(where + ": a slice of " + std::to_string(n) + " outputs");
      sum += n;
    }
    if (outputs.size() < 2 || sum != l.out_channels) {
      return Status::Invalid(where + ": slices of " + std::to_string(sum) + " outputs in all, the layer has " +
                             std::to_string(l.out_channels) + " (and at least 2 slices)");
    }
    Layer join;
    join.name = l.name;
    join.kind = LayerKind::kConcat;
    join.axis = 1;
    int64_t first = 0;
    for (size_t i = 0; i < outputs.size(); ++i) {
      Layer s = l;
      s.name = SliceName(l.name, static_cast<int>(i));
      s.out_channels = static_cast<int>(outputs[i]);
      for (Weight& w : s.weights) {  // every weight of these kinds has the outputs as dimension 0
        const Weight& whole = l.weights[&w - s.weights.data()];
        const int64_t per = whole.shape[0] > 0 ? ElementCount(whole.shape) / whole.shape[0] : 0;
        w.shape[0] = outputs[i];
        if (!whole.data.empty()) {
          w.data.assign(whole.data.begin() + first * per, whole.data.begin() + (first + outputs[i]) * per);
        }
      }
      join.inputs.push_back(s.name);
      out.layers.push_back(std::move(s));
      first += outputs[i];
    }
    out.layers.push_back(std::move(join));
  }
  IONN_RETURN_IF_ERROR(out.Finalize());
  return out;
}

}  // namespace ionn
