// Shared by the benchmarks: median wall time of repeated runs, and the
// paper-setup cost graphs of the zoo models.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "ionn/model_costs.h"
#include "ionn/zoo.h"

namespace ionn::bench {

// Runs `f` at least `min_reps` times and for at least `min_seconds`;
// returns the median time of one run in microseconds.
inline double MedianUs(const std::function<void()>& f, int min_reps = 5, double min_seconds = 0.2) {
  std::vector<double> us;
  const auto start = std::chrono::steady_clock::now();
  while (static_cast<int>(us.size()) < min_reps ||
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < min_seconds) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    if (us.size() >= 100000) break;
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

inline CostGraph PaperCosts(const std::string& model, double mbps = 80) {
  const std::string dir = std::string(IONN_SOURCE_DIR) + "/data/profiles/odroid-xu4_gtx1080ti/";
  const ZooEntry* entry = nullptr;
  for (const auto& e : ZooModels()) {
    if (e.name == model) entry = &e;
  }
  Graph g = BuildZooModel(model, 1, false).value();
  Profile client = ReadProfileCsv(dir + entry->profile_file).value();
  LinkSpec link;
  link.uplink_mbps = link.downlink_mbps = mbps;
  if (model == "mobilenet") {
    ServerRegression reg = ReadRegressionCsv(dir + "server_regression.csv").value();
    return BuildCostGraph(g, client, nullptr, &reg, link).value();
  }
  return BuildCostGraph(g, client, &client, nullptr, link).value();
}

}  // namespace ionn::bench
