// The `ionn` subcommands. Each Register* adds its subcommand to the app and
// leaves an action that returns the process exit code: 0 success; 1 only
// when `client --verify` found outputs that differ; 2 any error, with one
// line on stderr naming what was wrong (README, "Exit codes and formats").
#pragma once

#include <signal.h>

#include <functional>
#include <initializer_list>
#include <string>

#include <CLI/CLI.hpp>

#include "options.h"
#include "ionn/client.h"
#include "ionn/cost_graph.h"
#include "ionn/model_costs.h"
#include "ionn/onnx_io.h"
#include "ionn/plan.h"
#include "ionn/sim.h"
#include "ionn/status.h"

namespace ionn::cli {

// Prints `status` as "ionn: error: ..." and returns 2.
int Fail(const Status& status);
// "ionn: warning: ..." on stderr for every layer type of `graph` that
// `regression` (read from `source`) predicts at 0 ms or less: floored at 0,
// those layers count as free on the server.
void WarnNonPositivePredictions(const Graph& graph, const ServerRegression& regression, const std::string& source);
// The same for a failed write of an output the user named: exit 2 (the
// path is the user's argument), whatever the OS said.
int FailOutput(const Status& status);
// Where the shipped data (profiles, cases) lives: $IONN_DATA_DIR or the
// source tree's data/ folder.
std::string DataDir();
std::string PaperProfileDir();
Status WriteTextFile(const std::string& path, const std::string& text);
// A whole file of at most `max_bytes` (certificates, keys, secrets); errors
// name `what` ("--tls-cert") and the path.
Result<std::string> ReadSmallFile(const std::string& path, const std::string& what, size_t max_bytes = 1 << 20);
// A shared secret from its file: the first line, without its line end.
Result<std::string> ReadSecretFile(const std::string& path);

// Runs `gnuplot plots.gp` in `folder` (no shell: any folder name is safe);
// an error says whether gnuplot is missing or failed.
Status RunGnuplot(const std::string& folder);

// A logger for long-running commands: one line on stderr per call,
// "2026-11-27T12:00:00 WHO: LINE".
std::function<void(const std::string&)> StderrLog(const std::string& who);

// SIGINT and SIGTERM for a long-running command: made before any thread is
// started (the threads inherit the blocked mask), so that Wait, not some
// library thread, takes them. Wait returns the name of the one that came
// ("SIGINT").
class StopSignals {
 public:
  // SIGINT, SIGTERM and `more` (signals Wait also returns).
  explicit StopSignals(std::initializer_list<int> more = {});
  std::string Wait();

 private:
  sigset_t set_;
};

// A cost graph and its plan, as `plan` and `simulate` make them.
struct PlannedModel {
  CostGraph costs;
  UploadPlan plan;
  int slices = 1;  // per sliced layer (--slices; auto's choice)
};
Result<PlannedModel> LoadAndPlan(const CostOptions& costs, const PlanOptions& plan);

// The paper's experiment for real in this process (live.cc): an edge
// server, a link shaped as `link` says (ionn link's proxy) and a client
// emulating a slower device (each local segment computed, then padded to
// `client_profile`: the paper's ODROID XU4 for a zoo model), once per algorithm, each run a first meeting
// (the server's held layers ignored); beside each run, the simulator on the
// same cost graph (published client profile, `server_times`, the link,
// link sharing fair). `returning`: then once more as a client that comes
// back (5 queries, held layers used).
struct LiveOptions {
  EngineBackend backend = EngineBackend::kAuto;  // --backend: the server's and the client's engines
  Profile client_profile;  // the emulated client's times (a zoo model's: the published ones)
  LinkSpec link = MakeLinkSpec(80);  // the proxy's and the planner's
  // Each run's planner and upload encoding (DESIGN.md, "Upload unit").
  struct Variant {
    std::string algorithm;
    UploadEncoding encoding = UploadEncoding::kExact;
    int slices = 1;  // --slices: 1 off, 0 auto (SliceForClient)
    // "algorithm", then ", encoding" when not exact and ", N slices" for
    // the count the run used.
    std::string Label(int used_slices = 1) const {
      std::string label = algorithm;
      if (encoding != UploadEncoding::kExact) label += std::string(", ") + UploadEncodingName(encoding);
      if (used_slices > 1) label += ", " + std::to_string(used_slices) + " slices";
      return label;
    }
  };
  std::vector<Variant> variants = {{"recursive-efficiency"}, {"original"}};
  bool returning = false;
  Profile server_times;  // measured here (MeasureServerTimes)
  TensorMap input;
  std::function<void(const std::string& algorithm)> starting;  // before each run
  std::function<void(const ClientProgress&)> progress;
};
struct LiveRun {
  std::string algorithm;  // Variant::Label(), or "returning client"
  ClientResult live;
  SimResult sim;
  CostGraph costs;
};
Result<std::vector<LiveRun>> RunLiveExperiment(const Graph& model, const LiveOptions& options);
// Per-layer server_ms of `model` on this machine (1 thread, median of 9).
Result<Profile> MeasureServerTimes(const Graph& model, const TensorMap& input,
                                   EngineBackend backend = EngineBackend::kAuto);
// A measured run in the simulator's terms (an ExperimentTable "live" row).
SimResult MeasuredResult(const ClientResult& result);

// `ionn experiment --model F.onnx` (own_experiment.cc): every planner at
// every rate on one model; writes the folder `out` and the summary.
struct OwnExperimentOptions {
  ModelOptions model;
  ProfileOptions profiles;  // none given: measured here, the client --client-slowdown times slower
  // --client-slowdown, 10 when not given (the paper's ODROID XU4 took 5 to
  // 14 times a desktop core's time).
  double ClientSlowdown() const { return profiles.client_slowdown > 0 ? profiles.client_slowdown : 10; }
  std::vector<double> rates;
  // --plan NAME=FILE, repeatable: plans made elsewhere, beside the planners.
  std::vector<std::string> plans;
  std::string out, markdown;
  bool no_plots = false;
  EngineBackend backend = EngineBackend::kAuto;  // --backend, where the times are measured here
};
int RunOwnModelExperiment(const OwnExperimentOptions& options);

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
