// The engine: executes any subset of a graph's layers on this machine, from
// given tensors (the boundary tensors of a partition), with oneDNN
// primitives where they pay off. Also measures per-layer latency.
//
// An Engine is built once per graph (kernels, primitives and reordered
// weights are made in Create) and is then immutable: Run may be called from
// several threads at once; each call owns its intermediate tensors.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ionn/graph.h"

namespace ionn {

struct Tensor {
  Shape shape;
  std::vector<float> data;  // NCHW, row-major, ElementCount(shape) values
};
using TensorMap = std::map<std::string, Tensor>;

struct EngineOptions {
  int threads = 1;    // oneDNN (OpenMP) threads used by Run
  bool fuse = true;   // run convolution + batch norm/scale + ReLU as one kernel
                      // when a Run covers all of them (same result up to rounding)
  bool blocked_layouts = true;  // pass tensors between convolutions (and the ReLUs
                                // and adds between them) in oneDNN's blocked layout
};

class Kernel;

class Engine {
 public:
  // `graph` must have passed Finalize() and hold its weight data; the engine
  // keeps its own copy of what it needs, not a reference to `graph`.
  static Result<std::unique_ptr<Engine>> Create(const Graph& graph, const EngineOptions& options = {});
  ~Engine();

  const Graph& graph() const { return graph_; }

  // Runs the layers at positions `layers` (any subset; run in topological
  // order). `inputs` must hold every tensor they read that none of them
  // produces, with the right shape. Returns the tensors named in `wanted`
  // (produced by `layers` or given in `inputs`).
  Result<TensorMap> Run(const std::vector<int>& layers, const TensorMap& inputs,
                        const std::vector<std::string>& wanted) const;
  // The whole model: graph inputs in, graph outputs out.
  Result<TensorMap> RunAll(const TensorMap& inputs) const;

  // Median and spread of one layer's latency, over `repeats` runs after
  // `warmup` runs, on inputs recorded from one full run of `inputs`.
  struct LayerTiming {
    double median_ms = 0, min_ms = 0, max_ms = 0;
  };
  Result<std::vector<LayerTiming>> ProfileLayers(const TensorMap& inputs, int warmup, int repeats) const;

 private:
  Engine() = default;
  Graph graph_;  // shapes and attributes (weights moved into the kernels)
  EngineOptions options_;
  std::vector<std::unique_ptr<Kernel>> kernels_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A deterministic input for graph input `shape` (values in [-1, 1)).
Tensor SeededInput(const Shape& shape, uint64_t seed);

}  // namespace ionn
