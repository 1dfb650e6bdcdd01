// Granularity of planning: every layer a unit, or IONN's blocks (the graph
// collapsed to a chain at the layers every input-to-output path crosses, so
// that an inception module or a residual block becomes one unit).
#pragma once

#include <string>
#include <vector>

#include "ionn/cost_graph.h"

namespace ionn {

enum class Granularity { kLayer, kBlock };
const char* GranularityName(Granularity g);
Result<Granularity> ParseGranularity(const std::string& name);

// A cost graph over units, and which layers of the original each unit holds.
struct UnitGraph {
  CostGraph units;
  std::vector<std::vector<int>> layers_of_unit;  // positions in the original
};

// Layer positions k after which the graph can be cut: no tensor made at or
// before k, other than layer k's own, is read after k (outputs count as
// read at the end). The last layer is always one.
std::vector<int> ChainCutPoints(const CostGraph& graph);

// Layer granularity is the identity; block granularity sums the times of
// each block's layers, uploads its weights together and sends only the
// tensor of its last layer across (IONN's block model: a block runs on one
// side). A block's name is the name of its last layer.
UnitGraph MakeUnits(const CostGraph& graph, Granularity granularity);

}  // namespace ionn
