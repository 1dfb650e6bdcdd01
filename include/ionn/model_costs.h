// From a model and measurements to a cost graph: per-layer profiles (CSV,
// `layer,client_ms,server_ms`), IONN's per-layer-type server prediction
// functions (`layer_type,a_ms_per_unit,b_ms`), and the link.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ionn/cost_graph.h"
#include "ionn/graph.h"
#include "ionn/layer_times.h"

namespace ionn {

struct ProfileRow {
  std::optional<double> client_ms, server_ms;  // empty cell = not measured
};

struct Profile {
  std::vector<std::string> order;  // row names as in the file
  std::map<std::string, ProfileRow> rows;
};

Result<Profile> ParseProfileCsv(const std::string& text);
Result<Profile> ReadProfileCsv(const std::string& path);
std::string ProfileToCsv(const Graph& graph, const std::vector<double>& client_ms,
                         const std::vector<double>& server_ms);

// The medians of `times` (one per layer of `graph`, in order) times
// `scale` (a slower device: scale > 1), as a profile's client_ms column
// or, with `server_column`, its server_ms column.
Profile ProfileFromTimes(const Graph& graph, const std::vector<LayerTimes>& times, bool server_column,
                         double scale = 1);
// ionn-profile/1's measurement: format, threads, warmup, repeats and per
// layer its name, kind and times (the caller adds the run's setting).
nlohmann::json ProfileToJson(const Graph& graph, const std::vector<LayerTimes>& times, int threads, int warmup,
                             int repeats);

// t = a * X + b (ms), per Caffe layer type.
struct ServerRegression {
  std::map<std::string, std::pair<double, double>> by_type;  // type -> (a, b)
};
Result<ServerRegression> ParseRegressionCsv(const std::string& text);
Result<ServerRegression> ReadRegressionCsv(const std::string& path);
// The CSV ParseRegressionCsv reads, one row per type in name order, a and b
// with 6 significant digits.
std::string RegressionToCsv(const ServerRegression& regression);

// Fitting t = a * X + b by least squares, per Caffe layer type, to
// measurements (what `ionn calibrate` and a server calibrating itself do).
struct RegressionSample {
  double x = 0;   // RegressionX of the measured layer
  double ms = 0;  // its measured time
};
struct RegressionFitStats {
  int samples = 0;
  double r_squared = 0;  // 0 when X or t does not vary
};
struct ServerRegressionFit {
  ServerRegression regression;
  std::map<std::string, RegressionFitStats> stats;  // same types as regression.by_type
};
// Types with no samples are left out. When every sample of a type has the
// same X, its a is 0 and b the mean time. Pure: no I/O.
ServerRegressionFit FitServerRegression(const std::map<std::string, std::vector<RegressionSample>>& samples);

// IONN's regression variable X for one layer: convolution MACs
// (out_h*out_w*out_c*k_h*k_w*in_c/group), pooling out_count*k_h*k_w,
// inner product in_count*num_output (its MACs), eltwise out_count*inputs,
// others the output element count.
double RegressionX(const Graph& graph, const Layer& layer);
// Predicted server time, or an error naming the layer when its type has no
// function; a prediction of 0 ms or less is floored at 0 (see below).
Result<double> PredictServerMs(const Graph& graph, const Layer& layer, const ServerRegression& regression);

// The layers of `graph` for which `regression` predicts 0 ms or less (a fit
// with a negative intercept, for small layers): PredictServerMs floors them
// at 0, so the planner takes them for free on the server. Per Caffe type:
// how many, and the first of them with its prediction before the floor.
// Types without a function are left out. Pure: the caller warns.
struct NonPositivePrediction {
  int layers = 0;
  std::string first;     // layer name
  double first_ms = 0;   // a * X + b for it
};
std::map<std::string, NonPositivePrediction> NonPositivePredictions(const Graph& graph,
                                                                   const ServerRegression& regression);

// The paper's authors' unit: 1 Mbps = 1024*1024/8000 bytes per ms.
constexpr double kBytesPerMsPerMbps = 1024.0 * 1024.0 / 8000.0;

struct LinkSpec {
  double uplink_mbps = 80;
  double downlink_mbps = 80;
  double rtt_ms = 0;  // each transfer costs rtt/2 + bytes / bandwidth
  double partition_overhead_ms = 0;
  double UpMs(int64_t bytes) const;
  double DownMs(int64_t bytes) const;
  double UploadMs(int64_t bytes) const;  // weights, uplink, no per-message cost
};
// A link as the command line gives it: `downlink_mbps` <= 0 means the
// uplink's bandwidth. Checked by BuildCostGraph, not here.
LinkSpec MakeLinkSpec(double uplink_mbps, double downlink_mbps = 0, double rtt_ms = 0,
                      double partition_overhead_ms = 0);

// Profile rows that did not join a layer, and why.
struct JoinReport {
  std::vector<std::pair<std::string, std::string>> unjoined;  // row, reason
};

// Builds the cost graph of `graph`: client times from `client`, server
// times from `server` (its server_ms column) or, when null, predicted by
// `regression`; weight bytes for uploads and tensor bytes for transfers.
// A layer without a row, or a row without the needed column, is an error
// naming the layer.
Result<CostGraph> BuildCostGraph(const Graph& graph, const Profile& client, const Profile* server,
                                 const ServerRegression* regression, const LinkSpec& link,
                                 JoinReport* report = nullptr);

// `costs` (built from `model` by BuildCostGraph: one cost layer per model
// layer, same names) with its weights sent in `encoding`: each layer's
// upload time scaled by its encoded bytes over its fp32 bytes (lossless
// compresses `model`'s weights, which must hold their data, choosing per
// chunk by the link's uplink rate; progressive sends as many bytes as
// exact, in two halves the planner orders). Exact: `costs` itself.
Result<CostGraph> EncodeUploads(const CostGraph& costs, const Graph& model, UploadEncoding encoding,
                                const LinkSpec& link);

// Which files give a model's per-layer times (paths of the CSVs above).
struct CostSources {
  std::string client_profile;     // client_ms column
  std::string server_profile;     // server_ms column; or else
  std::string server_regression;  // per-type functions predicting server times
  // Fill the empty ones from the paper setup (PaperCostSources) of the zoo
  // model the graph is named after.
  bool paper_profiles = false;
  std::string paper_profile_dir;  // the published profiles' folder (data/profiles/odroid-xu4_gtx1080ti)
};

// The paper setup's files for zoo model `model` in `dir` (ODROID XU4
// client, GTX 1080 Ti server): the model's published profile for client and
// server times, except MobileNet, whose published profile has no server
// column: its server times come from the published regression
// (server_regression.csv). NotFound for a model outside the zoo.
Result<CostSources> PaperCostSources(const std::string& model, const std::string& dir);

// Reads the CSVs `sources` names (after the paper rule when
// sources.paper_profiles) and builds the cost graph of `graph` on `link`.
// Needs a client profile and exactly one of server profile and server
// regression; errors are worded for the command line's flags
// (--client-profile, --server-profile, --regression, --paper-profiles,
// --zoo) and name the file that failed to read.
Result<CostGraph> LoadModelCosts(const Graph& graph, const CostSources& sources, const LinkSpec& link);

}  // namespace ionn
