#include <algorithm>
#include <set>

#include "ionn/model_costs.h"
#include "ionn/op.h"
#include "ionn/zoo.h"

namespace ionn {

double LinkSpec::UpMs(int64_t bytes) const {
  return rtt_ms / 2 + static_cast<double>(bytes) / (uplink_mbps * kBytesPerMsPerMbps);
}
double LinkSpec::DownMs(int64_t bytes) const {
  return rtt_ms / 2 + static_cast<double>(bytes) / (downlink_mbps * kBytesPerMsPerMbps);
}
double LinkSpec::UploadMs(int64_t bytes) const {
  return static_cast<double>(bytes) / (uplink_mbps * kBytesPerMsPerMbps);
}

LinkSpec MakeLinkSpec(double uplink_mbps, double downlink_mbps, double rtt_ms, double partition_overhead_ms) {
  LinkSpec link;
  link.uplink_mbps = uplink_mbps;
  link.downlink_mbps = downlink_mbps > 0 ? downlink_mbps : uplink_mbps;
  link.rtt_ms = rtt_ms;
  link.partition_overhead_ms = partition_overhead_ms;
  return link;
}

double RegressionX(const Graph& graph, const Layer& l) {
  const double out = static_cast<double>(ElementCount(l.output_shape));
  const Shape* in = l.inputs.empty() ? nullptr : graph.TensorShape(l.inputs[0]);
  if (const OpDescriptor* op = FindOp(l.kind)) {
    std::vector<const Shape*> inputs;
    for (const auto& name : l.inputs) inputs.push_back(graph.TensorShape(name));
    return op->regression_x(l, inputs);
  }
  switch (l.kind) {
    case LayerKind::kConv: {  // the taps the engine computes: those that read the input somewhere
      const ConvWindow w = ReadingConvWindow(l, *in);
      return out * w.kernel_h * w.kernel_w * static_cast<double>((*in)[1] / l.group);
    }
    case LayerKind::kMaxPool:
    case LayerKind::kAvgPool:
      return out * l.kernel_h * l.kernel_w;
    case LayerKind::kGlobalAvgPool:  // a mean over H and W: as ReduceMean's
      return out * static_cast<double>((*in)[2] * (*in)[3]);
    case LayerKind::kFc:
      return static_cast<double>(ElementCount(*in) / (*in)[0]) * l.out_channels;
    case LayerKind::kAdd:
      return out * static_cast<double>(l.inputs.size());
    default:
      return out;
  }
}

Result<double> PredictServerMs(const Graph& graph, const Layer& layer, const ServerRegression& regression) {
  const std::string type = LayerKindCaffeType(layer.kind);
  auto it = regression.by_type.find(type);
  if (it == regression.by_type.end()) {
    return Status::Invalid("layer '" + layer.name + "': the server regression has no function for type " + type +
                           " (ionn calibrate -o FILE fits one for every layer type on the server)");
  }
  return std::max(0.0, it->second.first * RegressionX(graph, layer) + it->second.second);
}

std::map<std::string, NonPositivePrediction> NonPositivePredictions(const Graph& graph,
                                                                   const ServerRegression& regression) {
  std::map<std::string, NonPositivePrediction> found;
  for (const Layer& l : graph.layers) {
    const std::string type = LayerKindCaffeType(l.kind);
    auto it = regression.by_type.find(type);
    if (it == regression.by_type.end()) continue;
    const double ms = it->second.first * RegressionX(graph, l) + it->second.second;
    if (ms > 0) continue;
    NonPositivePrediction& p = found[type];
    if (p.layers++ == 0) p.first = l.name, p.first_ms = ms;
  }
  return found;
}

ServerRegressionFit FitServerRegression(const std::map<std::string, std::vector<RegressionSample>>& samples) {
  ServerRegressionFit fit;
  for (const auto& [type, pts] : samples) {
    if (pts.empty()) continue;
    double mx = 0, mt = 0;
    for (const auto& p : pts) mx += p.x, mt += p.ms;
    mx /= pts.size(), mt /= pts.size();
    double sxx = 0, sxt = 0, stt = 0;
    for (const auto& p : pts) {
      sxx += (p.x - mx) * (p.x - mx), sxt += (p.x - mx) * (p.ms - mt), stt += (p.ms - mt) * (p.ms - mt);
    }
    const double a = sxx > 0 ? sxt / sxx : 0, b = mt - a * mx;
    fit.regression.by_type[type] = {a, b};
    fit.stats[type] = {static_cast<int>(pts.size()), sxx > 0 && stt > 0 ? sxt * sxt / (sxx * stt) : 0};
  }
  return fit;
}

Result<CostGraph> BuildCostGraph(const Graph& graph, const Profile& client, const Profile* server,
                                 const ServerRegression* regression, const LinkSpec& link, JoinReport* report) {
  if (!(link.uplink_mbps > 0) || !(link.downlink_mbps > 0)) {
    return Status::Invalid("link bandwidths must be > 0 Mbps");
  }
  if (!(link.rtt_ms >= 0) || !(link.partition_overhead_ms >= 0)) {
    return Status::Invalid("rtt and partition overhead must be >= 0 ms");
  }
  if (!server && !regression) return Status::Invalid("need a server profile or a server regression");
  std::vector<CostInput> inputs;
  for (const auto& in : graph.inputs) inputs.push_back({in.name, link.UpMs(TensorBytes(in.shape))});
  std::vector<CostLayer> layers;
  for (const Layer& l : graph.layers) {
    CostLayer c;
    c.name = l.name;
    c.inputs = l.inputs;
    auto row = client.rows.find(l.name);
    if (row == client.rows.end() || !row->second.client_ms) {
      return Status::Invalid("client profile has no client_ms for layer '" + l.name + "' (" + LayerKindName(l.kind) + ")");
    }
    c.client_ms = *row->second.client_ms;
    if (server) {
      auto srow = server->rows.find(l.name);
      if (srow == server->rows.end() || !srow->second.server_ms) {
        return Status::Invalid("server profile has no server_ms for layer '" + l.name +
                               "' (use --regression for predicted server times)");
      }
      c.server_ms = *srow->second.server_ms;
    } else {
      auto t = PredictServerMs(graph, l, *regression);
      if (!t.ok()) return t.status();
      c.server_ms = *t;
    }
    c.upload_ms = link.UploadMs(LayerWeightBytes(l));
    c.up_ms = link.UpMs(TensorBytes(l.output_shape));
    c.down_ms = link.DownMs(TensorBytes(l.output_shape));
    layers.push_back(std::move(c));
  }
  if (report) {
    std::set<std::string> names;
    for (const auto& in : graph.inputs) names.insert(in.name);
    for (const auto& l : graph.layers) names.insert(l.name);
    for (const auto& name : client.order) {
      if (graph.FindLayer(name) >= 0) continue;
      std::string why;
      if (name == "data" || name == "input" || names.count(name)) {
        why = "the model input (a Caffe Input layer), not a layer: its time is not counted";
      } else if (name.size() > 6 && name.compare(name.size() - 6, 6, "_split") == 0) {
        why = "a Caffe Split layer (fans a blob out to several readers); ionn reads tensors in place";
      } else {
        why = "no layer of this name in the model";
      }
      report->unjoined.emplace_back(name, why);
    }
  }
  return CostGraph::Create(std::move(inputs), std::move(layers), graph.outputs, link.partition_overhead_ms);
}

Result<CostSources> PaperCostSources(const std::string& model, const std::string& dir) {
  for (const auto& e : ZooModels()) {
    if (e.name != model) continue;
    const std::string base = dir.empty() || dir.back() == '/' ? dir : dir + "/";
    CostSources s;
    s.client_profile = base + e.profile_file;
    if (e.name == "mobilenet") {
      s.server_regression = base + "server_regression.csv";
    } else {
      s.server_profile = base + e.profile_file;
    }
    return s;
  }
  return Status::NotFound("the paper's profiles cover the zoo models only, not '" + model + "'");
}

Result<CostGraph> LoadModelCosts(const Graph& graph, const CostSources& sources, const LinkSpec& link) {
  CostSources s = sources;
  if (s.paper_profiles) {
    auto paper = PaperCostSources(graph.name, s.paper_profile_dir);
    if (!paper.ok()) return Status::Invalid("--paper-profiles needs a zoo model (--zoo NAME)");
    if (s.client_profile.empty()) s.client_profile = paper->client_profile;
    if (s.server_profile.empty() && s.server_regression.empty()) {
      s.server_profile = paper->server_profile;
      s.server_regression = paper->server_regression;
    }
  }
  if (s.client_profile.empty()) return Status::Invalid("a model needs --client-profile CSV (or --paper-profiles)");
  if (s.server_profile.empty() == s.server_regression.empty()) {
    return Status::Invalid("give exactly one of --server-profile CSV and --regression CSV");
  }
  IONN_ASSIGN_OR_RETURN(const Profile client, ReadProfileCsv(s.client_profile));
  std::optional<Profile> server;
  std::optional<ServerRegression> regression;
  if (!s.server_profile.empty()) {
    IONN_ASSIGN_OR_RETURN(server, ReadProfileCsv(s.server_profile));
  } else {
    IONN_ASSIGN_OR_RETURN(regression, ReadRegressionCsv(s.server_regression));
  }
  return BuildCostGraph(graph, client, server ? &*server : nullptr, regression ? &*regression : nullptr, link);
}

Result<CostGraph> EncodeUploads(const CostGraph& costs, const Graph& model, UploadEncoding encoding,
                                const LinkSpec& link) {
  if (encoding == UploadEncoding::kExact) return costs;
  if (costs.num_layers() != static_cast<int>(model.layers.size())) {
    return Status::Invalid("the cost graph does not have the model's layers (an upload encoding needs layer granularity)");
  }
  CodecOptions options;
  options.uplink_bytes_per_ms = link.uplink_mbps * kBytesPerMsPerMbps;
  IONN_ASSIGN_OR_RETURN(const std::vector<int64_t> encoded, EncodedLayerBytes(model, encoding, options));
  std::vector<double> upload_ms(costs.num_layers());
  for (int k = 0; k < costs.num_layers(); ++k) {
    const Layer& l = model.layers[k];
    if (costs.layer(k).name != l.name) {
      return Status::Invalid("cost layer " + std::to_string(k) + " is '" + costs.layer(k).name + "', the model's '" +
                             l.name + "'");
    }
    int64_t raw = 0;
    for (const auto& w : l.weights) raw += ElementCount(w.shape) * 4;
    upload_ms[k] = costs.layer(k).upload_ms;
    if (raw > 0) upload_ms[k] *= static_cast<double>(encoded[k]) / static_cast<double>(raw);
  }
  return costs.WithUploads(encoding, upload_ms);
}

}  // namespace ionn
