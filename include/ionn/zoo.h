// The model zoo: the five CNNs of the paper, with the Caffe layer names of
// the published profiles and deterministic seeded weights (no pretrained
// weights can be downloaded here).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ionn/graph.h"

namespace ionn {

struct ZooEntry {
  std::string name;          // "alexnet", ...
  std::string description;
  std::string profile_file;  // base name of its profile CSV
};

const std::vector<ZooEntry>& ZooModels();

// Builds a zoo model. `with_weights` false leaves weight data empty (shapes
// only), which is enough for costs and plans and much faster.
Result<Graph> BuildZooModel(const std::string& name, uint64_t seed = 1, bool with_weights = true);

}  // namespace ionn
