// Simulator speed: replaying 1,000 queries (upload + back-to-back queries)
// on each zoo model with its recursive-efficiency plan, per link policy.
#include <cstring>

#include "bench_util.h"
#include "ionn/sim.h"

using namespace ionn;

int main(int argc, char** argv) {
  int queries = 1000;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--queries") && i + 1 < argc) queries = std::atoi(argv[++i]);
  }
  std::printf("simulating %d queries, recursive-efficiency plan, paper profiles at 80 Mbps: median ms per replay\n", queries);
  std::printf("%-14s %7s %11s %10s %10s %10s\n", "model", "layers", "partitions", "none", "fair", "priority");
  for (const auto& e : ZooModels()) {
    const CostGraph g = bench::PaperCosts(e.name);
    PlannerOptions po;
    const UploadPlan plan = MakePlan(g, po).value();
    std::printf("%-14s %7d %11zu", e.name.c_str(), g.num_layers(), plan.partitions.size());
    for (LinkSharing s : {LinkSharing::kNone, LinkSharing::kFair, LinkSharing::kPriority}) {
      SimOptions o;
      o.sharing = s;
      o.min_queries = queries;
      const size_t n = Simulate(g, plan, o)->queries.size();
      const double us = bench::MedianUs([&] { (void)Simulate(g, plan, o); });
      std::printf(" %10.2f", us / 1000);
      if (static_cast<int>(n) < queries) std::printf("(!%zu)", n);
    }
    std::printf("\n");
  }
  return 0;
}
