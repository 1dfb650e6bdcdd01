#include "ionn/cost_graph.h"

#include <cmath>
#include <unordered_map>

namespace ionn {
namespace {

Status CheckTime(double v, const std::string& what) {
  if (!std::isfinite(v) || v < 0) {
    return Status::Invalid(what + " must be a finite number >= 0, got " + std::to_string(v));
  }
  return Status::Ok();
}

}  // namespace

Result<CostGraph> CostGraph::Create(std::vector<CostInput> inputs, std::vector<CostLayer> layers,
                                    std::vector<std::string> outputs,
                                    double partition_overhead_ms, bool block_units) {
  if (layers.empty()) return Status::Invalid("the model has no layers");
  if (inputs.empty()) return Status::Invalid("the model has no inputs");
  if (outputs.empty()) return Status::Invalid("the model has no outputs");
  IONN_RETURN_IF_ERROR(CheckTime(partition_overhead_ms, "partition_overhead_ms"));

  CostGraph g;
  g.block_units_ = block_units;
  std::unordered_map<std::string, int> tensor_by_name;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto& in = inputs[i];
    if (in.name.empty()) return Status::Invalid("input " + std::to_string(i) + " has no name");
    IONN_RETURN_IF_ERROR(CheckTime(in.up_ms, "input '" + in.name + "' up_ms"));
    if (!tensor_by_name.emplace(in.name, static_cast<int>(i)).second) {
      return Status::Invalid("duplicate input name '" + in.name + "'");
    }
  }
  const int num_inputs = static_cast<int>(inputs.size());
  g.layer_inputs_.resize(layers.size());
  for (size_t k = 0; k < layers.size(); ++k) {
    const auto& l = layers[k];
    const std::string where = "layer '" + l.name + "' (index " + std::to_string(k) + ")";
    if (l.name.empty()) return Status::Invalid("layer " + std::to_string(k) + " has no name");
    IONN_RETURN_IF_ERROR(CheckTime(l.client_ms, where + " client_ms"));
    IONN_RETURN_IF_ERROR(CheckTime(l.server_ms, where + " server_ms"));
    IONN_RETURN_IF_ERROR(CheckTime(l.upload_ms, where + " upload_ms"));
    IONN_RETURN_IF_ERROR(CheckTime(l.up_ms, where + " up_ms"));
    IONN_RETURN_IF_ERROR(CheckTime(l.down_ms, where + " down_ms"));
    if (l.inputs.empty()) return Status::Invalid(where + " has no inputs");
    for (const auto& name : l.inputs) {
      auto it = tensor_by_name.find(name);
      if (it == tensor_by_name.end()) {
        bool later = false;
        for (size_t m = k; m < layers.size(); ++m) later = later || layers[m].name == name;
        return Status::Invalid(where + " reads '" + name + "', " +
                               (later ? "which is not earlier in the list: layers must be in "
                                        "topological order (is there a cycle?)"
                                      : "which is neither a model input nor a layer"));
      }
      g.layer_inputs_[k].push_back(it->second);
    }
    if (!tensor_by_name.emplace(l.name, num_inputs + static_cast<int>(k)).second) {
      return Status::Invalid("duplicate name '" + l.name + "' at layer index " + std::to_string(k));
    }
  }
  g.is_output_.assign(inputs.size() + layers.size(), 0);
  for (const auto& name : outputs) {
    auto it = tensor_by_name.find(name);
    if (it == tensor_by_name.end() || it->second < num_inputs) {
      return Status::Invalid("output '" + name + "' does not name a layer");
    }
    g.is_output_[it->second] = 1;
  }
  g.consumers_.resize(inputs.size() + layers.size());
  for (size_t k = 0; k < layers.size(); ++k) {
    for (int t : g.layer_inputs_[k]) {
      auto& c = g.consumers_[t];
      if (c.empty() || c.back() != static_cast<int>(k)) c.push_back(static_cast<int>(k));
    }
  }
  bool chain = num_inputs == 1 && outputs.size() == 1 &&
               g.is_output_[num_inputs + layers.size() - 1];
  for (size_t k = 0; chain && k < layers.size(); ++k) {
    const int expected = static_cast<int>(k);  // tensor of layer k-1, or input 0
    chain = g.layer_inputs_[k].size() == 1 && g.layer_inputs_[k][0] == expected &&
            g.consumers_[expected].size() == 1;
  }
  g.is_chain_ = chain;
  g.inputs_ = std::move(inputs);
  g.layers_ = std::move(layers);
  g.output_names_ = std::move(outputs);
  g.partition_overhead_ms_ = partition_overhead_ms;
  g.fp32_all_at_once_ms_ = partition_overhead_ms;
  for (const auto& l : g.layers_) g.fp32_all_at_once_ms_ += l.upload_ms;
  return g;
}

int CostGraph::FindLayer(const std::string& name) const {
  for (int k = 0; k < num_layers(); ++k) {
    if (layers_[k].name == name) return k;
  }
  return -1;
}

double CostGraph::UploadMs(const std::vector<int>& layers) const {
  double ms = partition_overhead_ms_;
  for (int k : layers) ms += layers_[k].upload_ms;
  return ms;
}

double AllAtOnceUploadMs(const CostGraph& graph) { return graph.fp32_all_at_once_ms(); }

Result<CostGraph> CostGraph::WithFp32Upload(double fp32_upload_ms) const {
  IONN_RETURN_IF_ERROR(CheckTime(fp32_upload_ms, "fp32_upload_ms"));
  CostGraph g = *this;
  g.fp32_all_at_once_ms_ = partition_overhead_ms_ + fp32_upload_ms;
  return g;
}

Result<CostGraph> CostGraph::WithUploads(UploadEncoding encoding, const std::vector<double>& upload_ms) const {
  if (upload_ms.size() != layers_.size()) return Status::Invalid("upload times: one per layer");
  std::vector<CostLayer> layers = layers_;
  for (size_t k = 0; k < layers.size(); ++k) layers[k].upload_ms = upload_ms[k];
  IONN_ASSIGN_OR_RETURN(CostGraph g, Create(inputs_, std::move(layers), output_names_, partition_overhead_ms_,
                                            block_units_));
  g.upload_encoding_ = encoding;
  g.fp32_all_at_once_ms_ = fp32_all_at_once_ms_;
  return g;
}

Result<CostGraph> CostGraph::WithLinkRates(double up_factor, double down_factor, double rtt_ms) const {
  const auto positive = [](double f) { return std::isfinite(f) && f > 0; };
  if (!positive(up_factor) || !positive(down_factor)) return Status::Invalid("link rate factors must be finite and > 0");
  IONN_RETURN_IF_ERROR(CheckTime(rtt_ms, "rtt_ms"));
  const double half = rtt_ms / 2;
  // rtt/2 stays; the bytes' time scales (a time below rtt/2 was computed
  // without it: all of it scales).
  const auto transfer = [half](double ms, double factor) { return ms >= half ? half + (ms - half) / factor : ms / factor; };
  std::vector<CostInput> inputs = inputs_;
  for (CostInput& in : inputs) in.up_ms = transfer(in.up_ms, up_factor);
  std::vector<CostLayer> layers = layers_;
  for (CostLayer& l : layers) {
    l.upload_ms /= up_factor;
    l.up_ms = transfer(l.up_ms, up_factor);
    l.down_ms = transfer(l.down_ms, down_factor);
  }
  IONN_ASSIGN_OR_RETURN(CostGraph g, Create(std::move(inputs), std::move(layers), output_names_,
                                            partition_overhead_ms_, block_units_));
  g.upload_encoding_ = upload_encoding_;
  g.fp32_all_at_once_ms_ = partition_overhead_ms_ + (fp32_all_at_once_ms_ - partition_overhead_ms_) / up_factor;
  return g;
}

}  // namespace ionn
