// Sub-layer slices (DESIGN.md, "Upload unit"): a large fully connected
// layer split by output neurons, or a convolution (group 1) by output
// channels, into slices that upload separately, joined by a Concat along
// axis 1 that takes the layer's name, so every reader, every model output
// and every tensor name stays as it was. A rewrite of the layer graph and
// of the cost graph, so that planners, schedule, simulator, engine and
// runtime need no special case. Pure code.
#pragma once

#include <string>
#include <vector>

#include "ionn/cost_graph.h"
#include "ionn/graph.h"
#include "ionn/model_costs.h"
#include "ionn/status.h"

namespace ionn {

// One layer to slice: its position in the unsliced graph, and each slice's
// output channels (or neurons), in order, summing to the layer's.
struct LayerSlices {
  int layer = 0;
  std::string name;
  std::vector<int64_t> outputs;
};

// The slices' names: "<layer>/slice<i>"; the join keeps "<layer>".
std::string SliceName(const std::string& layer, int i);

struct SliceOptions {
  int slices = 1;                 // per sliced layer (1: none)
  double min_weight_share = 0.1;  // slice layers holding at least this share of the model's weight bytes
};

// The layers `options` slices: fully connected layers and convolutions of
// group 1 with at least `slices` outputs and `min_weight_share` of the
// weights, each cut into `slices` as equal as can be (the first ones one
// larger). Empty for slices <= 1.
std::vector<LayerSlices> ChooseSlices(const Graph& graph, const SliceOptions& options);

// `graph` with each listed layer replaced by its slices (weights cut by
// rows of dimension 0, where the graph holds weight data) and the join.
// The result passed Finalize. Errors name the layer.
Result<Graph> SliceGraph(const Graph& graph, const std::vector<LayerSlices>& slices);

// The cost graph of SliceGraph's result from that of `graph` (one cost
// layer per layer, same names): a slice takes its share of the layer's
// execution, upload and output transfer times; the join runs in no time
// (it only places the slices' outputs side by side) and sends what the
// layer sent. A transfer's `rtt_ms`/2 (the link's, as in LinkSpec::UpMs)
// is not shared out: each slice's output pays it whole, as BuildCostGraph
// charges it on the sliced model. Keeps the upload encoding and the fp32
// window.
Result<CostGraph> SliceCosts(const CostGraph& costs, const std::vector<LayerSlices>& slices, double rtt_ms = 0);

// A profile of the unsliced graph (client_ms and server_ms per layer) as
// one of SliceGraph's result, by SliceCosts' rule: each slice its share of
// the layer's times, the join none. A sliced layer the profile lacks stays
// absent (BuildCostGraph names it).
Profile SliceProfile(const Profile& profile, const std::vector<LayerSlices>& slices);

}  // namespace ionn
