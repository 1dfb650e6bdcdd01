// IONN's penalty method: shortest paths with the server edge of every
// not-yet-uploaded layer weighted by server time + penalty x upload time.
#include "ionn/plan.h"

namespace ionn {

UnitPartitions PlanOriginal(const LatencyModel& model, const std::vector<double>& penalties) {
  const CostGraph& g = model.graph();
  const int n = g.num_layers();
  const LayerMask all(n, 1);
  const LayerMask optimal = model.Best(all).on_server;
  std::vector<double> schedule = penalties;
  if (schedule.empty() || schedule.back() != 0) schedule.push_back(0);

  UnitPartitions parts;
  LayerMask uploaded(n, 0);
  std::vector<double> extra(n);
  for (double penalty : schedule) {
    bool done = true;
    for (int k = 0; k < n; ++k) done = done && (!optimal[k] || uploaded[k]);
    if (done) break;
    for (int k = 0; k < n; ++k) extra[k] = uploaded[k] ? 0 : penalty * g.layer(k).upload_ms;
    const Placement p = model.Best(all, nullptr, &extra);
    std::vector<int> part;
    for (int k = 0; k < n; ++k) {
      if (p.on_server[k] && !uploaded[k]) part.push_back(k), uploaded[k] = 1;
    }
    if (!part.empty()) parts.push_back(std::move(part));
  }
  return parts;
}

}  // namespace ionn
