#include <iostream>

#include "commands.h"
#include "ionn/granularity.h"

namespace ionn::cli {

Action RegisterCosts(CLI::App& app) {
  struct Args {
    CostOptions costs;
    std::string out, granularity = "layer";
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("costs", "Build the cost graph (ionn-costs/1) of a model on a client, server and link");
  args->costs.Add(cmd);
  cmd->add_option("-o,--output", args->out, "Output file (default: standard output)")->check(OutputFile());
  cmd->add_option("--granularity", args->granularity,
                  "layer, or block: one unit per IONN block (named after its last layer), as IONN's planner saw it")
      ->capture_default_str();
  return [args]() {
    auto g = args->costs.Load();
    if (!g.ok()) return Fail(g.status());
    auto granularity = ParseGranularity(args->granularity);
    if (!granularity.ok()) return Fail(granularity.status());
    const std::string json = CostGraphToJson(MakeUnits(*g, *granularity).units);
    if (args->out.empty()) {
      std::cout << json;
      return 0;
    }
    Status s = WriteTextFile(args->out, json);
    return s.ok() ? 0 : FailOutput(s);
  };
}

}  // namespace ionn::cli
