#include <iostream>

#include "commands.h"

namespace ionn::cli {

Action RegisterPlan(CLI::App& app) {
  struct Args {
    CostOptions costs;
    PlanOptions plan;
    OutputOptions out;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("plan", "Plan the upload: partitions, their order, and the latency after each");
  args->costs.Add(cmd);
  args->plan.Add(cmd, /*with_algorithm=*/true, /*with_plan_file=*/true);
  args->out.Add(cmd, {"table", "json"});
  return args->out.Wrap([args]() {
    auto m = LoadAndPlan(args->costs, args->plan);
    if (!m.ok()) return Fail(m.status());
    RunSetting setting = args->costs.Setting();
    setting.slices = m->slices;
    std::cout << (args->out.format == "json" ? PlanToJson(m->costs, m->plan, setting)
                                             : PlanToTable(m->costs, m->plan));
    return 0;
  });
}

}  // namespace ionn::cli
