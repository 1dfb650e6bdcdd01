#include <iostream>

#include "commands.h"

namespace ionn::cli {

Action RegisterPlan(CLI::App& app) {
  struct Args {
    CostOptions costs;
    PlanOptions plan;
    std::string format = "table";
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("plan", "Plan the upload: partitions, their order, and the latency after each");
  args->costs.Add(cmd);
  args->plan.Add(cmd);
  cmd->add_option("--format", args->format, "table or json")->capture_default_str()->check(CLI::IsMember({"table", "json"}));
  return [args]() {
    auto m = LoadAndPlan(args->costs, args->plan);
    if (!m.ok()) return Fail(m.status());
    std::cout << (args->format == "json" ? PlanToJson(m->costs, m->plan, args->costs.Setting()) : PlanToTable(m->costs, m->plan));
    return 0;
  };
}

}  // namespace ionn::cli
