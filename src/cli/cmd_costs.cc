#include <iostream>

#include "commands.h"

namespace ionn::cli {

Action RegisterCosts(CLI::App& app) {
  struct Args {
    CostOptions costs;
    std::string out;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("costs", "Build the cost graph (ionn-costs/1) of a model on a client, server and link");
  args->costs.Add(cmd);
  cmd->add_option("-o,--output", args->out, "Output file (default: standard output)");
  return [args]() {
    auto g = args->costs.Load();
    if (!g.ok()) return Fail(g.status());
    const std::string json = CostGraphToJson(*g);
    if (args->out.empty()) {
      std::cout << json;
      return 0;
    }
    Status s = WriteTextFile(args->out, json);
    return s.ok() ? 0 : Fail(s);
  };
}

}  // namespace ionn::cli
