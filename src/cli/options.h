// The option groups the `ionn` commands share, each declared once here: one
// name, one range, one default and one help line for a flag in every
// command that takes it, under the same heading of `--help`. A command adds
// the groups it needs and declares only what is its own.
//
// Renamed flags keep their old name for a release: `RenameDeprecated`
// rewrites the command line before it is parsed and says so on stderr.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "image_input.h"
#include "ionn/cost_graph.h"
#include "ionn/engine.h"
#include "ionn/link_trace.h"
#include "ionn/model_costs.h"
#include "ionn/onnx_io.h"
#include "ionn/plan.h"
#include "ionn/replan.h"
#include "ionn/slices.h"
#include "ionn/sim.h"
#include "ionn/status.h"

namespace ionn::cli {

using Action = std::function<int()>;

// The headings of `--help`, in the order every command shows them.
inline constexpr const char* kModelGroup = "Model";
inline constexpr const char* kInputGroup = "Input";
inline constexpr const char* kProfileGroup = "Profiles";
inline constexpr const char* kLinkGroup = "Link";
inline constexpr const char* kPlanGroup = "Plan";
inline constexpr const char* kEngineGroup = "Engine";
inline constexpr const char* kArrivalGroup = "Arrivals";
inline constexpr const char* kOutputGroup = "Output";

// A number option in [lo, hi] and finite, or in (lo, hi] when
// `lo_exclusive`: CLI::Range lets NaN through and prints its bounds with
// 300 digits. The message names the option's unit (`what`, e.g. "a rate in
// Mbps").
CLI::Validator FiniteIn(double lo, double hi, const std::string& what, bool lo_exclusive = false);
// The one range of each kind of number: a link rate, a time.
CLI::Validator RateMbps();
CLI::Validator TimeMs();
// Output options, checked when the command line is parsed, before any
// work: a file whose folder exists and is writable (and which, if it
// exists, is a writable file), or a folder that exists writable or can be
// made.
CLI::Validator OutputFile();
CLI::Validator OutputFolder();

// --input-shape [NAME=]DxDxD..., repeatable: the shape of a model input
// whose dimensions the file leaves symbolic (OnnxImportOptions).
struct InputShapeOptions {
  std::vector<std::string> specs;
  CLI::Option* Add(CLI::App* app);
  // The specs parsed; errors name --input-shape and the spec.
  Result<OnnxImportOptions> Get() const;
};

// Model: the model file (positional MODEL or --model FILE.onnx), --zoo
// NAME, --input-shape.
struct ModelOptions {
  std::string file, zoo;
  InputShapeOptions shapes;
  CLI::Option* file_option = nullptr;
  CLI::Option* zoo_option = nullptr;
  CLI::Option* shape_option = nullptr;
  void Add(CLI::App* app);
  bool given() const { return !file.empty() || !zoo.empty(); }
  // The model; "give a model" when neither is given.
  Result<Graph> Load(bool with_weights) const;
  // The zoo name or the file, as reports record it.
  std::string Name() const { return zoo.empty() ? file : zoo; }
  // The model file's SHA-256 in hex; empty for a zoo model or a file that
  // cannot be read.
  std::string FileSha256() const;
};

// Input: the model input of the commands that run a model (run, client,
// profile): --input FILE (.npy or raw float32), --image PHOTO with its
// preparation, or a seeded random input (--seed).
struct InputOptions {
  std::string file, image;
  int seed = 1;
  ImageOptions image_options;
  void Add(CLI::App* app);
  // One tensor per model input; --input and --image need a one-input model.
  Result<TensorMap> Get(const Graph& model) const;
};

// Profiles: where layer times come from. Which of them a command takes:
enum ProfileFlag : unsigned {
  kClientProfile = 1,  // --client-profile CSV
  kServerProfile = 2,  // --server-profile CSV
  kRegression = 4,     // --regression CSV (the server's prediction functions)
  kPaperProfiles = 8,  // --paper-profiles (a zoo model's published times)
  kClientSlowdown = 16,  // --client-slowdown X (a client X times slower than this machine, emulated)
};
struct ProfileOptions {
  std::string client_profile, server_profile, regression;
  bool paper_profiles = false;
  double client_slowdown = 0;  // 0: not given
  std::vector<CLI::Option*> options;  // those added but --client-slowdown
  void Add(CLI::App* app, unsigned which);
  CLI::Option* regression_option = nullptr;
  CLI::Option* slowdown_option = nullptr;
  // Whether any profile file or --paper-profiles was given.
  bool any() const { return !client_profile.empty() || !server_profile.empty() || !regression.empty() || paper_profiles; }
  // As LoadModelCosts takes them.
  CostSources Sources() const;
};

// Link: the link the planner assumes (and `ionn link` makes): --uplink-mbps
// (80, the paper's), --downlink-mbps (the uplink's), --rtt-ms (0).
struct LinkRateOptions {
  double uplink_mbps = 80, downlink_mbps = -1, rtt_ms = 0;
  std::vector<CLI::Option*> options;
  void Add(CLI::App* app);
  double downlink() const { return downlink_mbps > 0 ? downlink_mbps : uplink_mbps; }
  LinkSpec Spec(double partition_overhead_ms = 0) const;
};

// A link whose rate changes: --uplink-trace F, --downlink-trace F
// (link_trace.h: mahimahi's format or t_ms,mbps CSV).
struct LinkTraceOptions {
  std::string uplink, downlink;
  std::vector<CLI::Option*> options;
  void Add(CLI::App* app);
  bool any() const { return !uplink.empty() || !downlink.empty(); }
  // Both traces (read and checked; errors name the option, the file and the
  // line; null where none was given), and `link`'s rates where its options
  // were not given: an uplink trace's planning rate
  // (RateTrace::PlanningBytesPerMs), the downlink trace's, or the uplink's.
  struct Traces {
    std::shared_ptr<const RateTrace> uplink, downlink;
  };
  Result<Traces> Load(LinkRateOptions* link) const;
};

// Re-planning from the upload (replan.h): --replan passive|off (and
// oracle, for the simulator), --replan-band F.
struct ReplanFlags {
  std::string mode = "passive";
  double band = ReplanOptions{}.band;
  CLI::Option* option = nullptr;
  void Add(CLI::App* app, bool with_oracle = true);
  // Re-planning needs the plan's planner and exact uploads: where either
  // is missing, the default (passive) becomes off, and --replan given
  // explicitly is an error naming `why_not` (empty: it can re-plan).
  Result<ReplanMode> Resolve(ReplanMode asked, const std::string& why_not) const;
  // Checked: oracle only where offered and with an uplink trace to read.
  Result<ReplanOptions> Get(bool with_oracle, bool has_uplink_trace) const;
};

// Arrivals: --arrivals SPEC (back-to-back, periodic:FPS,
// poisson:RATE[:SEED], trace:FILE), --max-queue N, --deadline-ms D.
struct ArrivalOptions {
  std::string spec = "back-to-back";
  int max_queue = -1;
  double deadline_ms = -1;
  void Add(CLI::App* app);
  // The arrivals (a trace's file read and checked).
  Result<Arrivals> Get() const;
};

// Engine: --threads, --backend auto|onednn|xnnpack.
struct EngineFlags {
  int threads = 1;
  std::string backend = "auto";
  void Add(CLI::App* app, bool with_threads = true);  // --backend alone where the command fixes the threads
  // The options every engine of the command is made with; --backend xnnpack
  // where this build or CPU has no XNNPACK is refused here.
  Result<EngineOptions> Get() const;
};

// Output: -o/--output FILE (the report; default standard output) and
// --format, one of `formats` (the first is the default). Wrap runs a
// command with its standard output in that file: written to a temporary
// file beside it and renamed into place only when the command succeeds.
struct OutputOptions {
  std::string path, format;
  void Add(CLI::App* app, const std::vector<std::string>& formats);
  Action Wrap(Action action) const;
};

// --output-tensor [NAME=]FILE.npy, repeatable (run, client): model outputs
// written as .npy. A value that starts with an output's name and '=' is
// that output; the others take the outputs in order (one alone: the first).
struct OutputTensorOptions {
  std::vector<std::string> specs;
  void Add(CLI::App* app, const std::string& whose);
  // The (output, file) pairs for `model`; an error naming the value that
  // names no output, names one twice, or is one more than the outputs.
  Result<std::vector<std::pair<std::string, std::string>>> Get(const Graph& model) const;
  // Writes each from `outputs` (by output name); an error for one missing.
  Status Write(const Graph& model, const TensorMap& outputs) const;
};

// Plan: --algorithm, --granularity, --penalties, and --plan FILE (a plan
// made anywhere, PlanFromJson) where a command takes one.
struct PlanOptions {
  std::string algorithm = "recursive-efficiency";
  std::string granularity = "layer";
  std::string penalties;
  std::string plan_file;
  void Add(CLI::App* app, bool with_algorithm = true, bool with_plan_file = false);
  Result<PlannerOptions> Get() const;
  // The plan for `costs`: --plan's file evaluated on it, or the planner's.
  Result<UploadPlan> Make(const CostGraph& costs) const;
};

// What every command that needs a cost graph takes: either --costs FILE,
// or a model with profiles and a link.
// --upload-encoding NAME (weight_codec.h), in the link group; checked.
CLI::Option* AddUploadEncodingOption(CLI::App* app, std::string* name);
// --slices off|N|auto (slices.h), and its value as a count: 1 for off, 0
// for auto (the planner chooses: PlanBestSlices).
CLI::Option* AddSlicesOption(CLI::App* app, std::string* value);
int SliceCount(const std::string& value);

struct CostOptions {
  std::string costs_file;
  ModelOptions model;
  ProfileOptions profiles;
  LinkRateOptions link;
  double partition_overhead_ms = 0;
  std::string upload_encoding = "exact";  // weight_codec.h
  std::string slices = "off";             // slices.h: off, N (2 to 64) or auto (LoadAndPlan chooses)
  void Add(CLI::App* app);
  Result<CostGraph> Load() const;
  // With the large layers in `slices` slices each (1: none), whatever --slices says.
  Result<CostGraph> LoadSliced(int slices) const;
  // --slices as a count: 1 for off; 0 for auto.
  int SliceCount() const;
  // The model and link for the JSON outputs (unknown for a --costs file).
  RunSetting Setting() const;
};

// The command line with every deprecated flag name replaced by today's, a
// warning on stderr for each ("--paper-profile is now --paper-profiles").
// `args` holds argv[1..]; the first that is not an option names the command.
std::vector<std::string> RenameDeprecated(const std::vector<std::string>& args);

}  // namespace ionn::cli
