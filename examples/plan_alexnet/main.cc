// Plans the upload of AlexNet to an edge server with IONN's planner
// ("original") and the paper's ("recursive-efficiency"), then replays the
// paper's experiment on each plan: the model uploads partition by partition
// while the client raises queries back to back, each query offloading the
// layers that have arrived. The setting is the paper's: an ODROID XU4
// client, a GTX 1080 Ti server (their published per-layer times), 80 Mbps.
//
// Usage: plan_alexnet [PROFILE_DIR]  (default: the profiles installed with ionn)
#include <cstdio>

#include "ionn/model_costs.h"
#include "ionn/plan.h"
#include "ionn/sim.h"
#include "ionn/zoo.h"

namespace {

int Fail(const ionn::Status& status) {
  std::fprintf(stderr, "plan_alexnet: %s\n", status.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // The layers and their shapes; plans need no weights, only their sizes.
  auto model = ionn::BuildZooModel("alexnet", /*seed=*/1, /*with_weights=*/false);
  if (!model.ok()) return Fail(model.status());

  // The cost graph: each layer's client and server time from the published
  // profiles, its upload and transfer times from its sizes and the link.
  ionn::CostSources sources;
  sources.paper_profiles = true;
  sources.paper_profile_dir = argc > 1 ? argv[1] : IONN_PAPER_PROFILES;
  auto costs = ionn::LoadModelCosts(*model, sources, ionn::MakeLinkSpec(/*uplink_mbps=*/80));
  if (!costs.ok()) return Fail(costs.status());
  std::printf("AlexNet, %d layers, 80 Mbps\n\n", costs->num_layers());

  std::printf("%-22s %10s %10s %12s %12s %21s\n", "algorithm", "partitions", "upload ms", "local ms", "offloaded ms",
              "queries during upload");
  for (const char* algorithm : {"original", "recursive-efficiency"}) {
    ionn::PlannerOptions options;
    options.algorithm = algorithm;
    auto plan = ionn::MakePlan(*costs, options);
    if (!plan.ok()) return Fail(plan.status());
    auto run = ionn::Simulate(*costs, *plan, ionn::SimOptions{});
    if (!run.ok()) return Fail(run.status());
    std::printf("%-22s %10zu %10.1f %12.1f %12.1f %21d\n", algorithm, plan->partitions.size(), run->upload_ms,
                plan->latency_local_ms, plan->latency_optimal_ms, run->queries_during_upload);
  }
  std::printf(
      "\nlocal ms: a query on the client alone; offloaded ms: once the best layers are on the server.\n"
      "The paper measured 56.8 queries during upload with original, 88.1 with recursive-efficiency.\n");
  return 0;
}
