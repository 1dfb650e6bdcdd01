#include <grpc/support/log.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <string>
#include <iostream>
#include <new>
#include <vector>

#include "commands.h"
#include "ionn/server.h"
#include "ionn/version.h"

int main(int argc, char** argv) {
  ionn::TuneAllocatorForQuerySteps();
  // gRPC's own log lines say again, in its words, what ionn reports as a
  // one-line error ("cannot listen on ...: Address already in use");
  // GRPC_VERBOSITY, when the user sets it, brings them back.
  if (!std::getenv("GRPC_VERBOSITY")) gpr_set_log_function([](gpr_log_func_args*) {});
  CLI::App app{
      "ionn: incremental offloading of neural networks to edge servers.\n"
      "Plans the upload of a DNN model partition by partition (IONN's penalty method and the\n"
      "efficiency-based planners of Shin et al., EMDL'19), predicts what each plan does, and runs\n"
      "it for real: an edge server (serve) and a client (client) over gRPC."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("ionn ") + ionn::kVersion);
  std::vector<std::pair<CLI::App*, ionn::cli::Action>> actions;
  auto reg = [&](ionn::cli::Action (*f)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    ionn::cli::Action a = f(app);
    actions.emplace_back(app.get_subcommands({})[before], std::move(a));
  };
  reg(ionn::cli::RegisterDemo);
  reg(ionn::cli::RegisterZoo);
  reg(ionn::cli::RegisterCosts);
  reg(ionn::cli::RegisterPlan);
  reg(ionn::cli::RegisterSimulate);
  reg(ionn::cli::RegisterRun);
  reg(ionn::cli::RegisterProfile);
  reg(ionn::cli::RegisterCalibrate);
  reg(ionn::cli::RegisterPredict);
  reg(ionn::cli::RegisterExperiment);
  reg(ionn::cli::RegisterServe);
  reg(ionn::cli::RegisterClient);
  reg(ionn::cli::RegisterLink);
  // Renamed flags keep their old names for a release (options.h).
  std::vector<std::string> args = ionn::cli::RenameDeprecated(std::vector<std::string>(argv + 1, argv + argc));
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::string command;
    for (CLI::App* sub : app.get_subcommands()) command = sub->get_name();
    std::fprintf(stderr, "ionn: error: %s (see: ionn %s--help)\n", e.what(),
                 command.empty() ? "" : (command + " ").c_str());
    return 2;
  }
  for (auto& [sub, action] : actions) {
    if (!sub->parsed()) continue;
    int code = 2;
    try {
      code = action();
    } catch (const std::bad_alloc&) {  // a file that declares more than this machine holds
      std::fprintf(stderr, "ionn: error: out of memory (the model, its input or a declared shape is too large here)\n");
      return 2;
    }
    // Standard output is an output too: a full disk or a closed pipe must
    // not pass for success.
    std::cout.flush();
    if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout) {
      std::fprintf(stderr, "ionn: error: cannot write standard output: %s\n", std::strerror(errno));
      return code == 0 ? 2 : code;
    }
    return code;
  }
  return 2;
}
