// The `ionn` subcommands. Each Register* adds its subcommand to the app and
// leaves an action that returns the process exit code: 0 success, 2 bad
// input (with a message on stderr), 1 an internal error.
#pragma once

#include <signal.h>

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "ionn/cost_graph.h"
#include "ionn/plan.h"
#include "ionn/status.h"

namespace ionn::cli {

using Action = std::function<int()>;

// Prints `status` as "ionn: error: ..." and returns its exit code.
int Fail(const Status& status);
// Where the shipped data (profiles, cases) lives: $IONN_DATA_DIR or the
// source tree's data/ folder.
std::string DataDir();
std::string PaperProfileDir();
Status WriteTextFile(const std::string& path, const std::string& text);

// A logger for long-running commands: one line on stderr per call,
// "2026-11-27T12:00:00 WHO: LINE".
std::function<void(const std::string&)> StderrLog(const std::string& who);

// SIGINT and SIGTERM for a long-running command: made before any thread is
// started (the threads inherit the blocked mask), so that Wait, not some
// library thread, takes them. Wait returns "SIGINT" or "SIGTERM".
class StopSignals {
 public:
  StopSignals();
  std::string Wait();

 private:
  sigset_t set_;
};

// The options every command that needs a cost graph shares: either
// --costs FILE, or a model (--model FILE.onnx or --zoo NAME) with profiles
// and a link.
struct CostOptions {
  std::string costs_file, model_file, zoo_name;
  std::string client_profile, server_profile, server_regression;
  double uplink_mbps = 80, downlink_mbps = -1, rtt_ms = 0, partition_overhead_ms = 0;
  bool paper_profiles = false;
  void Add(CLI::App* app);
  Result<CostGraph> Load() const;
  // The model and link for the JSON outputs (unknown for a --costs file).
  RunSetting Setting() const;
};

struct PlanOptions {
  std::string algorithm = "recursive-efficiency";
  std::string granularity = "layer";
  std::string penalties;
  void Add(CLI::App* app, bool with_algorithm = true);
  Result<PlannerOptions> Get() const;
};

// A cost graph and its plan, as `plan` and `simulate` make them.
struct PlannedModel {
  CostGraph costs;
  UploadPlan plan;
};
Result<PlannedModel> LoadAndPlan(const CostOptions& costs, const PlanOptions& plan);

Action RegisterZoo(CLI::App& app);
Action RegisterCosts(CLI::App& app);
Action RegisterPlan(CLI::App& app);
Action RegisterSimulate(CLI::App& app);
Action RegisterPredict(CLI::App& app);
Action RegisterProfile(CLI::App& app);
Action RegisterRun(CLI::App& app);
Action RegisterCalibrate(CLI::App& app);
Action RegisterExperiment(CLI::App& app);
Action RegisterDemo(CLI::App& app);
Action RegisterServe(CLI::App& app);
Action RegisterClient(CLI::App& app);
Action RegisterLink(CLI::App& app);

}  // namespace ionn::cli
