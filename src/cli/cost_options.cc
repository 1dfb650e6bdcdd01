#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "ionn/granularity.h"
#include "ionn/model_costs.h"
#include "ionn/model_source.h"

namespace ionn::cli {

int Fail(const Status& status) {
  std::cerr << "ionn: error: " << status.message() << "\n";
  switch (status.code()) {
    case StatusCode::kInternal:
    case StatusCode::kIoError:
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kCancelled: return 1;  // not the input's fault
    default: return 2;
  }
}

void WarnNonPositivePredictions(const Graph& graph, const ServerRegression& regression, const std::string& source) {
  for (const auto& [type, p] : NonPositivePredictions(graph, regression)) {
    std::fprintf(stderr,
                 "ionn: warning: %s predicts %.4g ms for %s layer '%s'%s: floored at 0 ms, taken as free on the "
                 "server (a fit with a negative intercept; refit with more small %s layers, or edit its b_ms)\n",
                 source.c_str(), p.first_ms, type.c_str(), p.first.c_str(),
                 p.layers > 1 ? (" and " + std::to_string(p.layers - 1) + " more").c_str() : "", type.c_str());
  }
}

int FailOutput(const Status& status) {
  std::cerr << "ionn: error: " << status.message() << "\n";
  return 2;
}

namespace {

// Why `folder` cannot take a new file, or "".
std::string FolderProblem(const std::string& folder) {
  struct stat st {};
  if (stat(folder.c_str(), &st) != 0) return "folder '" + folder + "' does not exist";
  if (!S_ISDIR(st.st_mode)) return "'" + folder + "' is not a folder";
  if (access(folder.c_str(), W_OK | X_OK) != 0) return "cannot write in folder '" + folder + "'";
  return "";
}

std::string ParentOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

CLI::Validator OutputFile() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        struct stat st {};
        if (stat(path.c_str(), &st) == 0) {
          if (S_ISDIR(st.st_mode)) return "'" + path + "' is a folder, not a file";
          if (access(path.c_str(), W_OK) != 0) return "cannot write '" + path + "'";
          return "";
        }
        return FolderProblem(ParentOf(path));
      },
      "FILE", "OutputFile");
}

CLI::Validator OutputFolder() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        struct stat st {};
        if (stat(path.c_str(), &st) == 0) return FolderProblem(path);
        return FolderProblem(ParentOf(path));
      },
      "DIR", "OutputFolder");
}

std::string DataDir() {
  if (const char* env = std::getenv("IONN_DATA_DIR")) return env;
  return IONN_DEFAULT_DATA_DIR;
}

std::string PaperProfileDir() { return DataDir() + "/profiles/odroid-xu4_gtx1080ti/"; }

Status WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  if (!out) return Status::Io("cannot write '" + path + "': " + std::strerror(errno));
  out << text;
  out.flush();
  return out ? Status::Ok() : Status::Io("cannot write '" + path + "': " + std::strerror(errno));
}

Result<std::string> ReadSmallFile(const std::string& path, const std::string& what, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(what + ": cannot open '" + path + "'");
  std::string bytes(max_bytes + 1, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (in.bad()) return Status::Invalid(what + ": cannot read '" + path + "'");
  bytes.resize(static_cast<size_t>(in.gcount()));
  if (bytes.size() > max_bytes) {
    return Status::Invalid(what + ": '" + path + "' is larger than " + std::to_string(max_bytes) + " bytes");
  }
  if (bytes.empty()) return Status::Invalid(what + ": '" + path + "' is empty");
  return bytes;
}

Result<std::string> ReadSecretFile(const std::string& path) {
  IONN_ASSIGN_OR_RETURN(std::string secret, ReadSmallFile(path, "--secret-file", 4096));
  const size_t end = secret.find_first_of("\r\n");
  if (end != std::string::npos) secret.resize(end);
  return secret;  // checked where it is used (printable, 16 to 1024 bytes)
}

std::function<void(const std::string&)> StderrLog(const std::string& who) {
  return [who](const std::string& line) {
    const std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", std::gmtime(&now));
    std::fprintf(stderr, "%s %s: %s\n", stamp, who.c_str(), line.c_str());
  };
}

StopSignals::StopSignals(std::initializer_list<int> more) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  for (int sig : more) sigaddset(&set_, sig);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
}

std::string StopSignals::Wait() {
  int sig = 0;
  sigwait(&set_, &sig);
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGHUP: return "SIGHUP";
    default: return "signal " + std::to_string(sig);
  }
}

void InputShapeOptions::Add(CLI::App* app) {
  app->add_option("--input-shape", specs,
                  "The shape of a model input the file leaves symbolic, [NAME=]DxDxD... (e.g. x=1x3x224x224; the "
                  "name may be left out for a model with one input); repeat it for each such input")
      ->type_name("[NAME=]SHAPE")
      ->allow_extra_args(false);  // one shape per --input-shape: a model file after it stays the model
}

Result<OnnxImportOptions> InputShapeOptions::Get() const {
  OnnxImportOptions options;
  for (const std::string& spec : specs) {
    const std::string quoted = "'" + spec.substr(0, 80) + (spec.size() > 80 ? "...'" : "'");
    const size_t eq = spec.rfind('=');
    const std::string name = eq == std::string::npos ? "" : spec.substr(0, eq);
    const std::string dims = eq == std::string::npos ? spec : spec.substr(eq + 1);
    if (eq == 0) return Status::Invalid("--input-shape: " + quoted + " has no input name before '='");
    Shape shape;
    std::stringstream in(dims);
    std::string d;
    while (std::getline(in, d, 'x')) {
      const bool digits = !d.empty() && d.size() <= 12 && d.find_first_not_of("0123456789") == std::string::npos;
      if (!digits || std::stoll(d) < 1) {
        return Status::Invalid("--input-shape: " + quoted + ": '" + d.substr(0, 20) +
                               "' is not a dimension (an integer >= 1; the shape is DxDx..., e.g. 1x3x224x224)");
      }
      shape.push_back(std::stoll(d));
    }
    if (shape.empty() || dims.back() == 'x') {
      return Status::Invalid("--input-shape: " + quoted +
                             " has an empty dimension (the shape is DxDx..., e.g. 1x3x224x224)");
    }
    if (!options.input_shapes.emplace(name, shape).second) {
      const std::string what = name.empty() ? "a shape without a name" : "input '" + name + "'";
      return Status::Invalid("--input-shape: " + what + " given twice");
    }
  }
  return options;
}

Result<Graph> LoadCommandModel(const std::string& onnx_file, const std::string& zoo_name, bool with_weights,
                               const InputShapeOptions& input_shapes) {
  IONN_ASSIGN_OR_RETURN(const OnnxImportOptions onnx, input_shapes.Get());
  return LoadModel(onnx_file, zoo_name, with_weights, onnx);
}

void CostOptions::Add(CLI::App* app) {
  auto* costs = app->add_option("--costs", costs_file, "Cost graph (ionn-costs/1 JSON) instead of a model");
  auto* model = app->add_option("model,--model", model_file, "Model file (.onnx)");
  auto* zoo = app->add_option("--zoo", zoo_name, "A zoo model by name instead of a file (alexnet, googlenet, resnet50, inception_bn, mobilenet)");
  costs->excludes(model)->excludes(zoo);
  model->excludes(zoo);
  // One rule for options that would be ignored: given together, they are
  // refused (exit 2) rather than letting one silently win.
  std::vector<CLI::Option*> sources = {
      app->add_option("--client-profile", client_profile, "CSV layer,client_ms,server_ms with the client's times"),
      app->add_option("--server-profile", server_profile, "CSV with the server's times (its server_ms column)"),
      app->add_option("--server-regression", server_regression,
                      "CSV layer_type,a_ms_per_unit,b_ms: predict server times per layer type")};
  auto* paper = app->add_flag("--paper-profiles", paper_profiles,
                              "Use the paper's published profiles for a zoo model (ODROID XU4 client, GTX 1080 Ti "
                              "server; MobileNet's server times from the published regression)");
  for (auto* o : sources) paper->excludes(o);
  sources.push_back(paper);
  sources.push_back(app->add_option("--uplink-mbps", uplink_mbps, "Uplink bandwidth, Mbps (1 Mbps = 1024*1024/8000 bytes/ms)")
      ->capture_default_str()->check(FiniteIn(0, 1e9, "a rate in Mbps", /*lo_exclusive=*/true)));
  sources.push_back(app->add_option("--downlink-mbps", downlink_mbps, "Downlink bandwidth, Mbps (default: the uplink's)")
      ->check(FiniteIn(0, 1e9, "a rate in Mbps", /*lo_exclusive=*/true)));
  sources.push_back(app->add_option("--rtt-ms", rtt_ms, "Round-trip time; each transfer costs rtt/2 + bytes/bandwidth")
      ->capture_default_str()->check(FiniteIn(0, 1e7, "a time in ms")));
  sources.push_back(app->add_option("--partition-overhead-ms", partition_overhead_ms, "Fixed cost of uploading one partition")
      ->capture_default_str()->check(FiniteIn(0, 1e9, "a time in ms")));
  // A cost graph already holds the times and the link.
  for (auto* o : sources) costs->excludes(o);
  input_shapes.Add(app);
  costs->excludes(app->get_option("--input-shape"));
}

CLI::Validator FiniteIn(double lo, double hi, const std::string& what, bool lo_exclusive) {
  char range[96];
  std::snprintf(range, sizeof range, lo_exclusive ? "more than %g and at most %g" : "%g to %g", lo, hi);
  const std::string expected = what + ", " + range;
  return CLI::Validator(
      [lo, hi, lo_exclusive, expected](std::string& s) -> std::string {
        try {
          size_t used = 0;
          const double v = std::stod(s, &used);
          const bool above = lo_exclusive ? v > lo : v >= lo;
          if (used == s.size() && std::isfinite(v) && above && v <= hi) return {};
        } catch (const std::exception&) {
        }
        return "must be " + expected + ", not '" + s.substr(0, 64) + "'";
      },
      "NUMBER");
}

Result<CostGraph> CostOptions::Load() const {
  if (!costs_file.empty()) return ReadCostGraphFile(costs_file);
  if (model_file.empty() && zoo_name.empty()) {
    return Status::Invalid("give a cost graph (--costs FILE) or a model (--model FILE.onnx or --zoo NAME)");
  }
  IONN_ASSIGN_OR_RETURN(const Graph graph,
                        LoadCommandModel(model_file, zoo_name, /*with_weights=*/false, input_shapes));
  CostSources sources;
  sources.client_profile = client_profile;
  sources.server_profile = server_profile;
  sources.server_regression = server_regression;
  sources.paper_profiles = paper_profiles;
  sources.paper_profile_dir = PaperProfileDir();
  if (!server_regression.empty()) {
    IONN_ASSIGN_OR_RETURN(const ServerRegression regression, ReadRegressionCsv(server_regression));
    WarnNonPositivePredictions(graph, regression, "--server-regression '" + server_regression + "'");
  }
  return LoadModelCosts(graph, sources, MakeLinkSpec(uplink_mbps, downlink_mbps, rtt_ms, partition_overhead_ms));
}

void PlanOptions::Add(CLI::App* app, bool with_algorithm) {
  if (with_algorithm) {
    std::string names;
    for (const auto& n : PlannerNames()) names += (names.empty() ? "" : ", ") + n;
    app->add_option("--algorithm,-a", algorithm, "Planner: " + names)->capture_default_str();
  }
  app->add_option("--granularity", granularity, "layer (every layer a unit) or block (IONN's blocks)")
      ->capture_default_str();
  app->add_option("--penalties", penalties, "Penalty schedule for original, e.g. 1,0.5,0.25,0 (default: 1 to 1/64, 0)");
}

Result<PlannerOptions> PlanOptions::Get() const {
  PlannerOptions o;
  o.algorithm = algorithm;
  auto g = ParseGranularity(granularity);
  if (!g.ok()) return g.status();
  o.granularity = *g;
  if (!penalties.empty()) {
    o.penalties.clear();
    std::stringstream ss(penalties);
    std::string cell;
    while (std::getline(ss, cell, ',')) {
      char* end = nullptr;
      const double p = std::strtod(cell.c_str(), &end);
      if (cell.empty() || *end != '\0' || !(p >= 0)) {
        return Status::Invalid("--penalties: '" + cell + "' is not a number >= 0");
      }
      o.penalties.push_back(p);
    }
  }
  return o;
}

}  // namespace ionn::cli

namespace ionn::cli {

RunSetting CostOptions::Setting() const {
  RunSetting s;
  if (!costs_file.empty()) return s;  // the file's times already include the link
  s.model = !zoo_name.empty() ? zoo_name : model_file;
  s.uplink_mbps = uplink_mbps;
  s.downlink_mbps = downlink_mbps > 0 ? downlink_mbps : uplink_mbps;
  s.rtt_ms = rtt_ms;
  return s;
}

Result<PlannedModel> LoadAndPlan(const CostOptions& costs, const PlanOptions& plan) {
  auto g = costs.Load();
  if (!g.ok()) return g.status();
  auto options = plan.Get();
  if (!options.ok()) return options.status();
  auto made = MakePlan(*g, *options);
  if (!made.ok()) return made.status();
  return PlannedModel{std::move(g).value(), std::move(made).value()};
}

}  // namespace ionn::cli
