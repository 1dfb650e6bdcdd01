#include "options.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "ionn/granularity.h"
#include "ionn/model_source.h"
#include "ionn/npy.h"

namespace ionn::cli {

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
      "");  // no text after the type in --help (FLOAT, not FLOAT:NUMBER)
}

CLI::Validator RateMbps() { return FiniteIn(0, 1e9, "a rate in Mbps", /*lo_exclusive=*/true); }
CLI::Validator TimeMs() { return FiniteIn(0, 1e7, "a time in ms"); }

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

mode_t CurrentUmask() {
  const mode_t mask = umask(0);
  umask(mask);
  return mask;
}

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
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
      "", "OutputFile");
}

CLI::Validator OutputFolder() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        struct stat st {};
        if (stat(path.c_str(), &st) == 0) return FolderProblem(path);
        return FolderProblem(ParentOf(path));
      },
      "", "OutputFolder");
}

// --- Output tensors --------------------------------------------------------

void OutputTensorOptions::Add(CLI::App* app, const std::string& whose) {
  app->add_option("--output-tensor", specs,
                  "Write " + whose + " outputs as .npy (float32): FILE.npy for the first, NAME=FILE.npy for the "
                  "output NAME (as `ionn run` lists them); repeat it for more (unnamed ones take the outputs in "
                  "order)")
      ->type_name("[NAME=]FILE.npy")
      ->group(kOutputGroup);
}

Result<std::vector<std::pair<std::string, std::string>>> OutputTensorOptions::Get(const Graph& model) const {
  std::vector<std::pair<std::string, std::string>> out;
  size_t unnamed = 0;
  std::string names;
  for (const auto& o : model.outputs) names += (names.empty() ? "" : ", ") + o;
  for (const std::string& spec : specs) {
    std::string output, file = spec;
    for (const std::string& o : model.outputs) {  // the longest name that fits (outputs "a" and "a=b")
      if (spec.size() > o.size() && o.size() >= output.size() && spec.compare(0, o.size(), o) == 0 &&
          spec[o.size()] == '=') {
        output = o;
        file = spec.substr(o.size() + 1);
      }
    }
    const std::string quoted = "--output-tensor '" + spec.substr(0, 200) + "'";
    if (output.empty() && spec.find('=') != std::string::npos) {
      return Status::Invalid(quoted + ": the model has no output '" + spec.substr(0, std::min<size_t>(spec.find('='), 200)) +
                             "' (its outputs: " + names + ")");
    }
    if (output.empty()) {
      if (unnamed >= model.outputs.size()) {
        return Status::Invalid(quoted + ": the model has " + std::to_string(model.outputs.size()) +
                               " output(s) (" + names + "), this is one more; NAME=FILE.npy names one");
      }
      output = model.outputs[unnamed++];
    }
    for (const auto& [o, f] : out) {
      if (o == output) return Status::Invalid(quoted + ": output '" + output + "' is already written to '" + f + "'");
    }
    std::string checked = file;
    const std::string problem = OutputFile()(checked);
    if (!problem.empty()) return Status::Invalid(quoted + ": " + problem);
    out.emplace_back(output, file);
  }
  return out;
}

Status OutputTensorOptions::Write(const Graph& model, const TensorMap& outputs) const {
  IONN_ASSIGN_OR_RETURN(auto files, Get(model));
  for (const auto& [output, file] : files) {
    auto it = outputs.find(output);
    if (it == outputs.end()) return Status::Invalid("--output-tensor: output '" + output + "' was not computed");
    IONN_RETURN_IF_ERROR(WriteNpyFile(file, it->second));
  }
  return Status::Ok();
}

// --- Model ---------------------------------------------------------------

CLI::Option* InputShapeOptions::Add(CLI::App* app) {
  return app
      ->add_option("--input-shape", specs,
                   "The shape of a model input the file leaves symbolic, [NAME=]DxDxD... (e.g. x=1x3x224x224; the "
                   "name may be left out for a model with one input); repeat it for each such input")
      ->type_name("[NAME=]SHAPE")
      ->allow_extra_args(false)  // one shape per --input-shape: a model file after it stays the model
      ->group(kModelGroup);
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

void ModelOptions::Add(CLI::App* app) {
  file_option = app->add_option("model,--model", file, "Model file (.onnx)")->type_name("FILE")->group(kModelGroup);
  zoo_option = app->add_option("--zoo", zoo,
                               "A zoo model by name instead of a file (alexnet, googlenet, resnet50, inception_bn, "
                               "mobilenet)")
                   ->type_name("NAME")
                   ->group(kModelGroup);
  file_option->excludes(zoo_option);
  shape_option = shapes.Add(app);
}

Result<Graph> ModelOptions::Load(bool with_weights) const {
  if (!given()) return Status::Invalid("give a model: MODEL.onnx (or --model FILE.onnx) or --zoo NAME");
  IONN_ASSIGN_OR_RETURN(const OnnxImportOptions onnx, shapes.Get());
  return LoadModel(file, zoo, with_weights, onnx);
}

std::string ModelOptions::FileSha256() const {
  if (file.empty()) return "";
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buffer(1 << 20);
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
    EVP_DigestUpdate(ctx, buffer.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  EVP_DigestFinal_ex(ctx, digest, &size);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  char two[3];
  for (unsigned i = 0; i < size; ++i) {
    std::snprintf(two, sizeof two, "%02x", digest[i]);
    hex += two;
  }
  return hex;
}

// --- Input ---------------------------------------------------------------

void InputOptions::Add(CLI::App* app) {
  CLI::Option* in =
      app->add_option("--input", file, "A .npy file (float32), or raw float32 bytes in the input's shape")
          ->type_name("FILE")
          ->check(CLI::Validator(CLI::ExistingFile).description(""))
          ->group(kInputGroup);
  CLI::Option* photo = app->add_option("--image", image,
                                       "A photo (JPEG, PNG, ...), resized, center-cropped to the model's input and "
                                       "normalized as torchvision's ImageNet models expect")
                           ->type_name("FILE")
                           ->excludes(in)
                           ->check(CLI::Validator(CLI::ExistingFile).description(""))
                           ->group(kInputGroup);
  app->add_option("--seed", seed, "Seed of the random input used when neither --input nor --image is given")
      ->capture_default_str()
      ->excludes(in)
      ->excludes(photo)
      ->group(kInputGroup);
  app->add_option("--resize", image_options.resize,
                  "--image: the shorter side before the center crop (0: resize straight to the input size)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65536))
      ->group(kInputGroup);
  app->add_option("--mean", image_options.mean, "--image: per-channel mean, after scaling to [0,1]")
      ->delimiter(',')
      ->expected(3)
      ->capture_default_str()
      ->group(kInputGroup);
  app->add_option("--std", image_options.std, "--image: per-channel standard deviation")
      ->delimiter(',')
      ->expected(3)
      ->capture_default_str()
      ->group(kInputGroup);
  app->add_option("--pixel-scale", image_options.scale,
                  "--image: pixel values (0-255) times this before mean and std (1 for Caffe models)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber)
      ->group(kInputGroup);
  app->add_flag("--bgr", image_options.bgr, "--image: channels in BGR order (Caffe models), not RGB")
      ->group(kInputGroup);
}

Result<TensorMap> InputOptions::Get(const Graph& model) const {
  TensorMap inputs;
  for (const auto& in : model.inputs) inputs[in.name] = SeededInput(in.shape, seed);
  if (file.empty() && image.empty()) return inputs;
  const std::string flag = file.empty() ? "--image" : "--input";
  if (model.inputs.size() != 1) {
    return Status::Unsupported(flag + " takes a model with one input; '" + model.name + "' has " +
                               std::to_string(model.inputs.size()) + " (use the seeded input, --seed)");
  }
  const GraphInput& in = model.inputs[0];
  Tensor& t = inputs[in.name];
  if (!image.empty()) {
    IONN_ASSIGN_OR_RETURN(t, LoadImageInput(image, in.shape, image_options));
  } else if (EndsWith(file, ".npy")) {
    IONN_ASSIGN_OR_RETURN(Tensor read, ReadNpyFile(file));
    if (read.shape != in.shape) {
      return Status::Invalid("--input '" + file + "' has shape " + ShapeToString(read.shape) + ", the model's input '" +
                             in.name + "' is " + ShapeToString(in.shape));
    }
    t = std::move(read);
  } else {
    std::ifstream raw(file, std::ios::binary);
    if (!raw) return Status::NotFound("--input: cannot open '" + file + "'");
    raw.read(reinterpret_cast<char*>(t.data.data()), static_cast<std::streamsize>(t.data.size() * 4));
    if (raw.gcount() != static_cast<std::streamsize>(t.data.size() * 4) || raw.peek() != EOF) {
      return Status::Invalid("--input '" + file + "' must hold exactly " + std::to_string(t.data.size()) +
                             " float32 values (" + ShapeToString(in.shape) + "), or be a .npy file");
    }
  }
  return inputs;
}

// --- Profiles ------------------------------------------------------------

void ProfileOptions::Add(CLI::App* app, unsigned which) {
  std::vector<CLI::Option*> files;
  if (which & kClientProfile) {
    files.push_back(app->add_option("--client-profile", client_profile,
                                    "The client's layer times: CSV layer,client_ms,server_ms (ionn profile)")
                        ->type_name("CSV"));
  }
  if (which & kServerProfile) {
    files.push_back(app->add_option("--server-profile", server_profile,
                                    "The server's layer times: the server_ms column of a profile CSV (ionn profile "
                                    "--column server on the server)")
                        ->type_name("CSV"));
  }
  if (which & kRegression) {
    regression_option = app->add_option("--regression", regression,
                                        "The server's prediction functions: CSV layer_type,a_ms_per_unit,b_ms "
                                        "(ionn calibrate)")
                            ->type_name("CSV");
    files.push_back(regression_option);
  }
  options = files;
  if (which & kPaperProfiles) {
    CLI::Option* paper = app->add_flag("--paper-profiles", paper_profiles,
                                       "A zoo model's published times (the paper's ODROID XU4 client and GTX 1080 Ti "
                                       "server) for every profile not given (client: its own times; the server's "
                                       "come from the server)");
    options.push_back(paper);
  }
  if ((which & kServerProfile) && (which & kRegression)) {
    app->get_option("--server-profile")->excludes(regression_option);
  }
  for (CLI::Option* o : options) o->group(kProfileGroup);
  if (which & kClientSlowdown) {
    slowdown_option = app->add_option("--client-slowdown", client_slowdown,
                                      "Emulate a client X times slower than this machine: its layer times are X "
                                      "times those measured here (client: or those of --client-profile); a live "
                                      "client pads each local segment to them")
                          ->type_name("X")
                          ->check(FiniteIn(1, 1e6, "a factor"))
                          ->group(kProfileGroup);
  }
}

CostSources ProfileOptions::Sources() const {
  CostSources sources;
  sources.client_profile = client_profile;
  sources.server_profile = server_profile;
  sources.server_regression = regression;
  sources.paper_profiles = paper_profiles;
  sources.paper_profile_dir = PaperProfileDir();
  return sources;
}

// --- Link ----------------------------------------------------------------

void LinkRateOptions::Add(CLI::App* app) {
  options = {
      app->add_option("--uplink-mbps", uplink_mbps, "Rate client -> server, Mbps (1 Mbps = 1024*1024/8000 bytes/ms)")
          ->capture_default_str()
          ->check(RateMbps()),
      app->add_option("--downlink-mbps", downlink_mbps, "Rate server -> client, Mbps (default: the uplink's)")
          ->check(RateMbps()),
      app->add_option("--rtt-ms", rtt_ms, "Round-trip time; each transfer costs rtt/2 + bytes/rate")
          ->capture_default_str()
          ->check(TimeMs()),
  };
  for (CLI::Option* o : options) o->group(kLinkGroup);
}

LinkSpec LinkRateOptions::Spec(double partition_overhead_ms) const {
  return MakeLinkSpec(uplink_mbps, downlink(), rtt_ms, partition_overhead_ms);
}

// --- Link traces ---------------------------------------------------------

void LinkTraceOptions::Add(CLI::App* app) {
  options = {
      app->add_option("--uplink-trace", uplink,
                      "The uplink's rate over time, replayed for the upload and every query tensor: mahimahi's "
                      "format (a time in ms per 1500-byte delivery opportunity, looping) or a CSV of t_ms,mbps (the "
                      "last rate holding); the planner assumes --uplink-mbps, or without it a mahimahi trace's mean or a "
                      "CSV's first rate")
          ->type_name("FILE")
          ->group(kLinkGroup),
      app->add_option("--downlink-trace", downlink,
                      "The downlink's rate over time, as --uplink-trace (the planner assumes --downlink-mbps, or "
                      "the trace's rate as for --uplink-trace without it)")
          ->type_name("FILE")
          ->group(kLinkGroup),
  };
}

void ReplanFlags::Add(CLI::App* app, bool with_oracle) {
  option = app->add_option("--replan", mode,
                  std::string("Re-plan the layers not uploaded yet (and place the next queries) when the uplink's "
                              "rate, estimated from the upload's own bytes as the link takes them (no probe traffic), "
                              "leaves the band around the rate planned for: passive or off") +
                      (with_oracle ? ", or oracle (the rate ahead read from --uplink-trace: the bound)" : ""))
      ->capture_default_str()
      ->type_name(with_oracle ? "passive|off|oracle" : "passive|off")
      ->group(kLinkGroup);
  app->add_option("--replan-band", band,
                  "Re-plan when the estimate is off the planned rate by more than this share (0.25: below 75% or "
                  "above 125%)")
      ->capture_default_str()
      ->check(FiniteIn(0, 10, "a share", /*lo_exclusive=*/true))
      ->group(kLinkGroup);
}

Result<ReplanMode> ReplanFlags::Resolve(ReplanMode asked, const std::string& why_not) const {
  if (asked == ReplanMode::kOff || why_not.empty()) return asked;
  if (option && option->count() > 0) return Status::Invalid("--replan " + mode + ": " + why_not + ": give --replan off");
  return ReplanMode::kOff;
}

Result<ReplanOptions> ReplanFlags::Get(bool with_oracle, bool has_uplink_trace) const {
  IONN_ASSIGN_OR_RETURN(ReplanMode m, ParseReplanMode(mode));
  if (m == ReplanMode::kOracle && !with_oracle) {
    return Status::Invalid("--replan oracle is the simulator's bound (the rate ahead known): passive or off here");
  }
  if (m == ReplanMode::kOracle && !has_uplink_trace) {
    return Status::Invalid("--replan oracle reads the rate ahead from the uplink's trace: give --uplink-trace");
  }
  ReplanOptions o;
  o.mode = m;
  o.band = band;
  return o;
}

Result<LinkTraceOptions::Traces> LinkTraceOptions::Load(LinkRateOptions* link) const {
  Traces t;
  // One direction: its trace, and the rate the planner assumes of it.
  const CLI::Option* link_downlink = link->options[1];
  const auto load = [&](const std::string& file, const char* option, CLI::Option* rate_option, double* mbps,
                       std::shared_ptr<const RateTrace>* trace) -> Status {
    if (file.empty()) return Status::Ok();
    IONN_ASSIGN_OR_RETURN(const std::string text, ReadSmallFile(file, option, size_t{64} << 20));
    auto parsed = ParseRateTrace(text);
    if (!parsed.ok()) return Status::Invalid(std::string(option) + " '" + file + "': " + parsed.status().message());
    *trace = std::make_shared<RateTrace>(std::move(parsed).value());
    if (rate_option->count() > 0) return Status::Ok();
    *mbps = (*trace)->PlanningBytesPerMs() / kBytesPerMsPerMbps;
    if (!(*mbps >= 1e-3)) {
      return Status::Invalid(std::string(option) + " '" + file + "' starts at 0 Mbps: give the rate the planner " +
                             "assumes (" + rate_option->get_name() +
                             (rate_option == link_downlink ? ")" : "; for ionn link, the downlink's: --downlink-mbps)"));
    }
    return Status::Ok();
  };
  IONN_RETURN_IF_ERROR(load(uplink, "--uplink-trace", link->options[0], &link->uplink_mbps, &t.uplink));
  IONN_RETURN_IF_ERROR(load(downlink, "--downlink-trace", link->options[1], &link->downlink_mbps, &t.downlink));
  // Without a downlink of its own, the downlink is the planned uplink's (as
  // --downlink-mbps says).
  if (!t.downlink && link->options[1]->count() == 0) link->downlink_mbps = link->uplink_mbps;
  return t;
}

// --- Arrivals ------------------------------------------------------------

void ArrivalOptions::Add(CLI::App* app) {
  app->add_option("--arrivals", spec,
                  "When queries arrive: back-to-back (the paper), periodic:FPS, poisson:RATE_PER_S[:SEED] or "
                  "trace:FILE (one time in ms a line); one runs at a time, the others wait (FIFO)")
      ->capture_default_str()
      ->group(kArrivalGroup);
  app->add_option("--max-queue", max_queue,
                  "Waiting queries kept; past it the oldest waiting one is dropped (default: no limit)")
      ->check(CLI::Range(0, 100000000))
      ->group(kArrivalGroup);
  app->add_option("--deadline-ms", deadline_ms, "Report the share of queries whose latency (wait included) met it")
      ->check(TimeMs())
      ->group(kArrivalGroup);
}

Result<Arrivals> ArrivalOptions::Get() const {
  Arrivals a;
  if (spec.rfind("trace:", 0) == 0) {
    const std::string file = spec.substr(6);
    IONN_ASSIGN_OR_RETURN(const std::string text, ReadSmallFile(file, "--arrivals trace", size_t{256} << 20));
    auto times = ParseArrivalTrace(text);
    if (!times.ok()) return Status::Invalid("--arrivals trace '" + file + "': " + times.status().message());
    a.kind = Arrivals::Kind::kTrace;
    a.times_ms = std::move(times).value();
  } else {
    auto parsed = ParseArrivals(spec);
    if (!parsed.ok()) return Status::Invalid("--arrivals: " + parsed.status().message());
    a = std::move(parsed).value();
  }
  Status s = SetMaxQueue(&a, max_queue);
  if (!s.ok()) return Status::Invalid("--max-queue " + s.message());
  return a;
}

// --- Engine --------------------------------------------------------------

void EngineFlags::Add(CLI::App* app, bool with_threads) {
  if (with_threads) {
    app->add_option("--threads", threads, "Engine threads (on a server: for each query step)")
        ->capture_default_str()
        ->check(CLI::Range(1, kMaxEngineThreads))
        ->group(kEngineGroup);
  }
  app->add_option("--backend", backend,
                  "Which library computes the convolutions: auto (per layer: oneDNN, XNNPACK where oneDNN has only a "
                  "reference loop or none), onednn, or xnnpack (where it takes the layer)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "onednn", "xnnpack"}))
      ->group(kEngineGroup);
}

Result<EngineOptions> EngineFlags::Get() const {
  EngineOptions o;
  o.threads = threads;
  IONN_ASSIGN_OR_RETURN(o.backend, ParseEngineBackend(backend));
  Status available = CheckEngineBackend(o.backend);
  if (!available.ok()) return Status::Invalid("--" + available.message());
  return o;
}

// --- Output --------------------------------------------------------------

void OutputOptions::Add(CLI::App* app, const std::vector<std::string>& formats) {
  app->add_option("-o,--output", path, "Write the report to this file (default: standard output)")
      ->type_name("FILE")
      ->check(OutputFile())
      ->group(kOutputGroup);
  if (formats.empty()) return;
  format = formats[0];
  std::string names;
  for (size_t i = 0; i < formats.size(); ++i) {
    names += (i == 0 ? "" : i + 1 == formats.size() ? " or " : ", ") + formats[i];
  }
  app->add_option("--format", format, "The report's format: " + names)
      ->capture_default_str()
      ->check(CLI::IsMember(formats))
      ->group(kOutputGroup);
}

namespace {

// Where a report goes. A regular file (or what a symbolic link names) is
// written unnamed in its folder (O_TMPFILE) and linked into place only when
// the command finishes, so a failure, a crash or a signal leaves the old
// file as it was and nothing beside it; anything else (a pipe, a device) is
// written straight through.
class ReportFile {
 public:
  ~ReportFile() {
    if (fd_ >= 0) close(fd_);
  }

  Status Open(const std::string& path) {
    path_ = path;
    target_ = path;
    struct stat st {};
    if (lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      if (char* real = realpath(path.c_str(), nullptr)) {
        target_ = real;
        std::free(real);
      }
    }
    const bool exists = stat(target_.c_str(), &st) == 0;
    if (exists && !S_ISREG(st.st_mode)) {
      // O_NONBLOCK: a FIFO nobody reads is an error now, not a hang.
      fd_ = open(target_.c_str(), O_WRONLY | O_CLOEXEC | O_NONBLOCK);
      if (fd_ < 0 && errno == ENXIO) return Status::Invalid("cannot write '" + path + "': no process reads it");
      if (fd_ < 0) return Error();
      fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
      return Status::Ok();
    }
    folder_ = ParentOf(target_);
    const mode_t mode = exists ? (st.st_mode & 07777) : (0666 & ~CurrentUmask());
    fd_ = open(folder_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);  // read back by CopyTo
    if (fd_ >= 0) {
      fchmod(fd_, mode);
      unnamed_ = true;
      return Status::Ok();
    }
    // No O_TMPFILE here, or a folder we cannot write in: the file itself.
    fd_ = open(target_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    return fd_ < 0 ? Error() : Status::Ok();
  }

  int fd() const { return fd_; }

  // Puts the written report in place.
  Status Commit() {
    if (!unnamed_) return Status::Ok();
    const std::string temp = folder_ + "/.ionn-" + std::to_string(getpid()) + "-" + std::to_string(fd_);
    unlink(temp.c_str());
    const std::string self = "/proc/self/fd/" + std::to_string(fd_);
    if (linkat(AT_FDCWD, self.c_str(), AT_FDCWD, temp.c_str(), AT_SYMLINK_FOLLOW) != 0 && !CopyTo(temp)) {
      return Error();
    }
    if (std::rename(temp.c_str(), target_.c_str()) != 0) {
      unlink(temp.c_str());
      return Error();
    }
    return Status::Ok();
  }

 private:
  Status Error() const { return Status::Invalid("cannot write '" + path_ + "': " + std::strerror(errno)); }

  // Without /proc (a bare chroot) the unnamed file cannot be linked: its
  // bytes are copied to `temp` instead.
  bool CopyTo(const std::string& temp) const {
    struct stat st {};
    const int out = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0 || fstat(fd_, &st) != 0) return false;
    fchmod(out, st.st_mode & 07777);
    std::vector<char> buffer(1 << 16);
    off_t at = 0;
    ssize_t n = 0;
    bool ok = true;
    while (ok && (n = pread(fd_, buffer.data(), buffer.size(), at)) > 0) {
      ok = write(out, buffer.data(), static_cast<size_t>(n)) == n;
      at += n;
    }
    ok = ok && n == 0 && close(out) == 0;
    if (!ok) unlink(temp.c_str());
    return ok;
  }

  std::string path_, target_, folder_;
  int fd_ = -1;
  bool unnamed_ = false;
};

// Standard output is `path` already (/dev/stdout, /proc/self/fd/1, or the
// file the shell redirected it to).
bool IsStandardOutput(const std::string& path) {
  struct stat out {}, file {};
  return fstat(STDOUT_FILENO, &out) == 0 && stat(path.c_str(), &file) == 0 && out.st_dev == file.st_dev &&
         out.st_ino == file.st_ino;
}

}  // namespace

Action OutputOptions::Wrap(Action action) const {
  const OutputOptions* self = this;  // owned by the command's arguments, which `action` holds
  return [self, action]() -> int {
    if (self->path.empty() || self->path == "-" || IsStandardOutput(self->path)) return action();
    ReportFile file;
    Status opened = file.Open(self->path);
    if (!opened.ok()) return Fail(opened);
    std::cout.flush();
    std::fflush(stdout);
    const int saved = dup(STDOUT_FILENO);
    if (saved < 0 || dup2(file.fd(), STDOUT_FILENO) < 0) {
      return Fail(Status::Invalid("cannot redirect standard output: " + std::string(std::strerror(errno))));
    }
    const auto restore = [&]() -> bool {
      std::cout.flush();
      const bool written = std::fflush(stdout) == 0 && !std::ferror(stdout) && std::cout;
      std::clearerr(stdout);
      std::cout.clear();
      dup2(saved, STDOUT_FILENO);
      close(saved);
      return written;
    };
    int code = 2;
    try {
      code = action();
    } catch (...) {
      restore();
      throw;
    }
    const int write_errno = errno;
    if (!restore() && code != 2) {
      return Fail(Status::Invalid("cannot write '" + self->path + "': " + std::strerror(write_errno)));
    }
    // Exit 1 (client --verify found differences) is a finished report too.
    if (code == 0 || code == 1) {
      Status committed = file.Commit();
      if (!committed.ok()) return Fail(committed);
    }
    return code;
  };
}

// --- Plan ----------------------------------------------------------------

void PlanOptions::Add(CLI::App* app, bool with_algorithm, bool with_plan_file) {
  std::vector<CLI::Option*> planner;
  if (with_algorithm) {
    std::string names;
    for (const auto& n : PlannerNames()) names += (names.empty() ? "" : ", ") + n;
    planner.push_back(
        app->add_option("-a,--algorithm", algorithm, "Planner: " + names)->capture_default_str()->group(kPlanGroup));
  }
  planner.push_back(app->add_option("--granularity", granularity, "layer (every layer a unit) or block (IONN's blocks)")
                        ->capture_default_str()
                        ->group(kPlanGroup));
  planner.push_back(
      app->add_option("--penalties", penalties, "Penalty schedule for original, e.g. 1,0.5,0.25,0 (default: 1 to 1/64, 0)")
          ->group(kPlanGroup));
  if (!with_plan_file) return;
  CLI::Option* file = app->add_option("--plan", plan_file,
                                      "A plan made anywhere instead of a planner's: JSON with \"partitions\", each a "
                                      "list of layer names (or as `ionn plan --format json` writes it)")
                          ->type_name("FILE")
                          ->group(kPlanGroup);
  for (CLI::Option* o : planner) file->excludes(o);
}

Result<UploadPlan> PlanOptions::Make(const CostGraph& costs) const {
  if (plan_file.empty()) {
    IONN_ASSIGN_OR_RETURN(const PlannerOptions options, Get());
    return MakePlan(costs, options);
  }
  IONN_ASSIGN_OR_RETURN(const std::string text, ReadSmallFile(plan_file, "--plan", size_t{64} << 20));
  Result<UploadPlan> plan = PlanFromJson(costs, text);
  if (!plan.ok()) return Status::Invalid("--plan '" + plan_file + "': " + plan.status().message());
  return plan;
}

Result<PlannerOptions> PlanOptions::Get() const {
  PlannerOptions o;
  o.algorithm = algorithm;
  IONN_ASSIGN_OR_RETURN(o.granularity, ParseGranularity(granularity));
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

// --- Cost graph ------------------------------------------------------------

CLI::Option* AddUploadEncodingOption(CLI::App* app, std::string* name) {
  return app
      ->add_option("--upload-encoding", *name,
                   "How weights travel: exact (fp32), lossless (zstd of byte planes, exact), progressive (high 16 "
                   "bits first, exact after the low ones), fp16 or int8 (lossy for good)")
      ->capture_default_str()
      ->type_name("NAME")
      ->check([](const std::string& v) {
        auto e = ParseUploadEncoding(v);
        return e.ok() ? std::string() : e.status().message();
      })
      ->group(kLinkGroup);
}

void CostOptions::Add(CLI::App* app) {
  model.Add(app);
  CLI::Option* costs =
      app->add_option("--costs", costs_file, "A cost graph (ionn-costs/1 JSON) instead of a model, profiles and link")
          ->type_name("FILE")
          ->group(kModelGroup);
  profiles.Add(app, kClientProfile | kServerProfile | kRegression | kPaperProfiles);
  link.Add(app);
  // Options that would be ignored are refused (exit 2) rather than letting
  // one silently win: --paper-profiles fills only what is not given, so it
  // goes with the others; a cost graph already holds the times and the link.
  std::vector<CLI::Option*> ignored = {model.file_option, model.zoo_option, model.shape_option};
  ignored.insert(ignored.end(), profiles.options.begin(), profiles.options.end());
  ignored.insert(ignored.end(), link.options.begin(), link.options.end());
  ignored.push_back(app->add_option("--partition-overhead-ms", partition_overhead_ms,
                                    "Fixed cost of uploading one partition")
                        ->capture_default_str()
                        ->check(FiniteIn(0, 1e9, "a time in ms"))
                        ->group(kLinkGroup));
  ignored.push_back(AddUploadEncodingOption(app, &upload_encoding));
  ignored.push_back(AddSlicesOption(app, &slices));
  for (CLI::Option* o : ignored) costs->excludes(o);
}

CLI::Option* AddSlicesOption(CLI::App* app, std::string* value) {
  return app
      ->add_option("--slices", *value,
                   "Cut the largest layers (fully connected by neurons, convolutions by channels; each at least 10% "
                   "of the weights) into N slices that upload separately: off, 2 to 64, or auto (the planner tries "
                   "1, 2, 4 and 8 and keeps what finishes the most queries in the window)")
      ->capture_default_str()
      ->type_name("off|N|auto")
      ->check([](const std::string& v) {
        if (v == "off" || v == "auto") return std::string();
        char* end = nullptr;
        const long n = std::strtol(v.c_str(), &end, 10);
        return end && *end == '\0' && n >= 2 && n <= 64 ? std::string() : std::string("off, auto or 2 to 64");
      })
      ->group(kLinkGroup);
}

int SliceCount(const std::string& value) {
  if (value == "off") return 1;
  if (value == "auto") return 0;
  return std::atoi(value.c_str());  // checked by the option
}

int CostOptions::SliceCount() const { return cli::SliceCount(slices); }

Result<CostGraph> CostOptions::Load() const {
  if (SliceCount() == 0) {
    return Status::Invalid("--slices auto: the planner chooses the slices (plan, simulate); give a count here");
  }
  return LoadSliced(SliceCount());
}

Result<CostGraph> CostOptions::LoadSliced(int slice_count) const {
  if (!costs_file.empty()) return ReadCostGraphFile(costs_file);
  if (!model.given()) {
    return Status::Invalid("give a cost graph (--costs FILE) or a model (MODEL.onnx, --model FILE.onnx or --zoo NAME)");
  }
  auto encoding = ParseUploadEncoding(upload_encoding);
  if (!encoding.ok()) return encoding.status().WithContext("--upload-encoding");
  // Only the lossless encoding's sizes depend on the weights' values.
  IONN_ASSIGN_OR_RETURN(const Graph whole, model.Load(/*with_weights=*/*encoding == UploadEncoding::kLossless));
  const CostSources sources = profiles.Sources();
  if (!profiles.regression.empty()) {
    IONN_ASSIGN_OR_RETURN(const ServerRegression regression, ReadRegressionCsv(profiles.regression));
    WarnNonPositivePredictions(whole, regression, "--regression '" + profiles.regression + "'");
  }
  const LinkSpec spec = link.Spec(partition_overhead_ms);
  IONN_ASSIGN_OR_RETURN(const CostGraph fp32, LoadModelCosts(whole, sources, spec));
  // Slices rewrite the model and its costs alike (the profiles know the
  // whole layers), before the encoding sizes the slices' weights.
  const std::vector<LayerSlices> cut = ChooseSlices(whole, SliceOptions{slice_count});
  IONN_ASSIGN_OR_RETURN(const Graph graph, SliceGraph(whole, cut));
  IONN_ASSIGN_OR_RETURN(const CostGraph costs, SliceCosts(fp32, cut, spec.rtt_ms));
  return EncodeUploads(costs, graph, *encoding, spec);
}

RunSetting CostOptions::Setting() const {
  RunSetting s;
  s.costs_file = costs_file;
  if (!costs_file.empty()) return s;  // the file's times already include the link
  s.model = model.Name();
  s.model_sha256 = model.FileSha256();
  s.client_profile = profiles.client_profile;
  s.server_profile = profiles.server_profile;
  s.regression = profiles.regression;
  s.paper_profiles = profiles.paper_profiles;
  s.uplink_mbps = link.uplink_mbps;
  s.downlink_mbps = link.downlink();
  s.rtt_ms = link.rtt_ms;
  return s;
}

// --- Renamed flags ---------------------------------------------------------

namespace {

struct Rename {
  std::vector<std::string> commands;  // empty: every command
  std::string old_name, new_name;
  // Only when the flag's value ends so (the old meaning of a name that now
  // means something else).
  std::string value_suffix;
  // Not renamed, only a warning: the name stays with a new meaning.
  std::string warning;
};

const std::vector<Rename>& Renames() {
  static const std::vector<Rename> renames = {
      {{"client"}, "--paper-profile", "--paper-profiles", "", ""},
      {{}, "--server-regression", "--regression", "", ""},
      {{"client"}, "--input-random", "--seed", "", ""},
      {{"experiment"}, "--out", "--output", "", ""},
      {{"experiment"}, "--sweep-mbps", "--rates", "", ""},
      {{"run", "client"}, "--output", "--output-tensor", ".npy", ""},
      {{"run", "client"}, "--output", "", "", "--output is now the report (as -o); the model's output tensor is --output-tensor"},
      {{"zoo"}, "--seed", "--weights-seed", "", ""},
  };
  return renames;
}

}  // namespace

std::vector<std::string> RenameDeprecated(const std::vector<std::string>& args) {
  std::vector<std::string> out = args;
  std::string command;
  for (const std::string& a : args) {
    if (!a.empty() && a[0] != '-') {
      command = a;
      break;
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == "--") break;  // what follows is not an option
    for (const Rename& r : Renames()) {
      if (!r.commands.empty() && std::find(r.commands.begin(), r.commands.end(), command) == r.commands.end()) continue;
      const std::string& a = out[i];
      const bool bare = a == r.old_name;
      const bool joined = a.rfind(r.old_name + "=", 0) == 0;
      if (!bare && !joined) continue;
      const std::string value = joined ? a.substr(r.old_name.size() + 1) : i + 1 < out.size() ? out[i + 1] : "";
      if (!r.value_suffix.empty() && !EndsWith(value, r.value_suffix)) continue;
      if (!r.warning.empty()) {
        std::fprintf(stderr, "ionn: warning: %s\n", r.warning.c_str());
        break;
      }
      std::fprintf(stderr, "ionn: warning: %s is now %s%s (the old name goes in the next release)\n",
                   r.old_name.c_str(), r.new_name.c_str(),
                   r.value_suffix.empty() ? "" : (" for a " + r.value_suffix + " file").c_str());
      out[i] = joined ? r.new_name + "=" + value : r.new_name;
      break;
    }
  }
  return out;
}

}  // namespace ionn::cli
