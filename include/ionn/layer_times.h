// One layer's measured latency (Engine::ProfileLayers, profiles built
// from it: model_costs.h).
#pragma once

namespace ionn {

// The median and spread of timed runs.
struct LayerTimes {
  double median_ms = 0, min_ms = 0, max_ms = 0;
};

}  // namespace ionn
