// The cost graph: everything the planner and the simulator need to know
// about a model on a given client, server and link, in milliseconds.
//
// Tensors are numbered: model inputs 0..num_inputs()-1, then the output of
// layer k is tensor num_inputs()+k. Layers are in a topological order.
// A CostGraph is immutable once created and safe to share between threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ionn/status.h"
#include "ionn/weight_codec.h"

namespace ionn {

// One byte per layer, 1 = member. Indexed by layer position.
using LayerMask = std::vector<uint8_t>;

struct CostInput {
  std::string name;
  double up_ms = 0;  // time to send this model input client -> server
};

struct CostLayer {
  std::string name;
  std::vector<std::string> inputs;  // names of model inputs or layers
  double client_ms = 0;             // execution time on the client
  double server_ms = 0;             // execution time on the server
  double upload_ms = 0;             // time to upload its weights
  double up_ms = 0;                 // time to send its output client -> server
  double down_ms = 0;               // time to send its output server -> client
};

class CostGraph {
 public:
  // Validates and resolves names: unique names, inputs that name a model
  // input or an earlier layer, outputs that name a layer, finite
  // non-negative times. Errors name the layer and the field.
  // `block_units`: the layers are IONN blocks of a model (MakeUnits at
  // block granularity), so plans of this graph are block-granularity plans.
  static Result<CostGraph> Create(std::vector<CostInput> inputs,
                                  std::vector<CostLayer> layers,
                                  std::vector<std::string> outputs,
                                  double partition_overhead_ms = 0, bool block_units = false);

  int num_layers() const { return static_cast<int>(layers_.size()); }
  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  int num_tensors() const { return num_inputs() + num_layers(); }
  const std::vector<CostInput>& inputs() const { return inputs_; }
  const std::vector<CostLayer>& layers() const { return layers_; }
  const CostLayer& layer(int k) const { return layers_[k]; }
  const std::vector<std::string>& output_names() const { return output_names_; }
  double partition_overhead_ms() const { return partition_overhead_ms_; }
  bool block_units() const { return block_units_; }

  int tensor_of_layer(int k) const { return num_inputs() + k; }
  // The layer producing tensor t, or -1 for a model input.
  int producer(int t) const { return t < num_inputs() ? -1 : t - num_inputs(); }
  const std::vector<int>& layer_inputs(int k) const { return layer_inputs_[k]; }
  const std::vector<int>& consumers(int t) const { return consumers_[t]; }
  bool is_output(int t) const { return is_output_[t] != 0; }
  double tensor_up_ms(int t) const {
    return t < num_inputs() ? inputs_[t].up_ms : layers_[t - num_inputs()].up_ms;
  }
  double tensor_down_ms(int t) const { return t < num_inputs() ? 0.0 : layers_[t - num_inputs()].down_ms; }
  // Layer position by name, or -1.
  int FindLayer(const std::string& name) const;

  // One model input, one output (the last layer), every layer fed by the
  // previous one only and feeding the next one only: IONN's NN chain.
  bool is_chain() const { return is_chain_; }

  // Upload time of a partition: overhead + its layers' weight times.
  double UploadMs(const std::vector<int>& layers) const;

  // How the weights travel (weight_codec.h). upload_ms is each layer's
  // whole upload in that encoding (all phases: progressive's halves take
  // half each). `fp32_all_at_once_ms()`: overhead + every layer's upload
  // as exact fp32 (AllAtOnceUploadMs, the default window).
  UploadEncoding upload_encoding() const { return upload_encoding_; }
  double fp32_all_at_once_ms() const { return fp32_all_at_once_ms_; }
  // This graph with the layers' upload times replaced (one per layer,
  // finite, >= 0) for weights sent in `encoding`; the fp32 time stays.
  Result<CostGraph> WithUploads(UploadEncoding encoding, const std::vector<double>& upload_ms) const;
  // This graph with the layers' fp32 upload times summing to this (a cost
  // graph file's "fp32_upload_ms").
  Result<CostGraph> WithFp32Upload(double fp32_upload_ms) const;
  // This graph (each transfer rtt/2 + bytes/rate, `rtt_ms` given) with
  // the uplink's rate multiplied by `up_factor` and the downlink's by
  // `down_factor` (both finite, > 0): weight uploads (the fp32 time too)
  // and uplink tensors scaled by 1/up_factor past their rtt/2, downlink
  // tensors by 1/down_factor; the partition overhead kept. For re-planning
  // at a rate estimated during the upload (replan.h).
  Result<CostGraph> WithLinkRates(double up_factor, double down_factor, double rtt_ms) const;

 private:
  std::vector<CostInput> inputs_;
  std::vector<CostLayer> layers_;
  std::vector<std::string> output_names_;
  double partition_overhead_ms_ = 0;
  bool block_units_ = false;
  UploadEncoding upload_encoding_ = UploadEncoding::kExact;
  double fp32_all_at_once_ms_ = 0;
  std::vector<std::vector<int>> layer_inputs_;
  std::vector<std::vector<int>> consumers_;
  std::vector<uint8_t> is_output_;
  bool is_chain_ = false;
};

// ionn-costs/1 JSON (see DESIGN.md; optional "units": "layer" or "block";
// optional "upload_encoding" with "fp32_upload_ms", written when not exact).
// Parse errors name the JSON path.
// The whole model's upload as one fp32 partition (overhead + every layer's
// exact weights, whatever the graph's encoding): the default window of
// `queries_in_window`.
double AllAtOnceUploadMs(const CostGraph& graph);

Result<CostGraph> ParseCostGraphJson(const std::string& text);
Result<CostGraph> ReadCostGraphFile(const std::string& path);
std::string CostGraphToJson(const CostGraph& graph);

}  // namespace ionn
