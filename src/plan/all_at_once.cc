// The baseline without IONN: the whole model as one partition.
#include "ionn/plan.h"

namespace ionn {

UnitPartitions PlanAllAtOnce(const LatencyModel& model) {
  std::vector<int> all(model.graph().num_layers());
  for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
  return {all};
}

}  // namespace ionn
