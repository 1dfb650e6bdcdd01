#include <iostream>

#include "commands.h"
#include "ionn/granularity.h"

namespace ionn::cli {

Action RegisterCosts(CLI::App& app) {
  struct Args {
    CostOptions costs;
    OutputOptions out;
    std::string granularity = "layer";
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("costs", "Build the cost graph (ionn-costs/1 JSON) of a model on a client, server and link");
  args->costs.Add(cmd);
  args->out.Add(cmd, {});  // a cost graph is JSON
  cmd->add_option("--granularity", args->granularity,
                  "layer, or block: one unit per IONN block (named after its last layer), as IONN's planner saw it")
      ->capture_default_str()
      ->group(kPlanGroup);
  return args->out.Wrap([args]() {
    auto g = args->costs.Load();
    if (!g.ok()) return Fail(g.status());
    auto granularity = ParseGranularity(args->granularity);
    if (!granularity.ok()) return Fail(granularity.status());
    std::cout << CostGraphToJson(MakeUnits(*g, *granularity).units);
    return 0;
  });
}

}  // namespace ionn::cli
