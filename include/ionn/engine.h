// The engine: executes any subset of a graph's layers on this machine, from
// given tensors (the boundary tensors of a partition), with oneDNN
// primitives where they pay off. Also measures per-layer latency.
//
// An Engine is made from a graph's architecture and grows: layers whose
// weights are in the graph are built at once, the others when AddLayer
// brings their weights (a server building a client's model partition by
// partition). Running is split as in ncnn's Net/Extractor or TFLite Micro's
// Prepare/Invoke: Prepare checks a layer set once and fixes its kernels,
// fusions and tensor layouts in a PreparedRun; Execute then runs it as often
// as wanted. Threading: AddLayer, Prepare and Execute may be called from
// several threads at once; Execute calls own their intermediate tensors.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ionn/clock.h"
#include "ionn/graph.h"
#include "ionn/layer_times.h"

namespace ionn {

struct Tensor {
  Shape shape;
  std::vector<float> data;  // NCHW, row-major, ElementCount(shape) values
};
using TensorMap = std::map<std::string, Tensor>;

// The most threads an engine runs with (OpenMP allocates per-thread state:
// 65536 crashed it, 2^31-1 ran away with 12.9 GB).
constexpr int kMaxEngineThreads = 256;

// Which library computes a layer where more than one can (convolutions
// today). kAuto chooses per convolution: oneDNN, unless oneDNN would run it
// with one of its reference loops (aarch64 without Arm's compute library)
// or refuses it, and XNNPACK takes it (on x86-64 oneDNN was faster on every
// convolution shape measured: BENCHMARKS.md). kOneDnn and kXnnpack ask for
// one (a convolution XNNPACK refuses falls back to oneDNN). The environment
// variable IONN_BACKEND (auto, onednn, xnnpack) sets the backend of engines
// made with kAuto, as ONEDNN_MAX_CPU_ISA caps oneDNN. An XNNPACK kernel
// runs one call at a time (its operator holds the tensors' addresses from
// setup to run): concurrent runs of one engine, or of engines sharing a
// kernel (a server's layer store), take turns on each such layer.
enum class EngineBackend { kAuto, kOneDnn, kXnnpack };
const char* EngineBackendName(EngineBackend backend);  // "auto", "onednn", "xnnpack"
Result<EngineBackend> ParseEngineBackend(const std::string& name);
// Whether this build has the backend and it runs on this CPU (always true
// for kAuto and kOneDnn); CheckEngineBackend says why not.
bool EngineBackendAvailable(EngineBackend backend);
Status CheckEngineBackend(EngineBackend backend);

struct EngineOptions {
  int threads = 1;    // threads used by Run (oneDNN's OpenMP team, XNNPACK's pool), 1 to kMaxEngineThreads
  bool fuse = true;   // run as one kernel, when a Run covers all of them (same
                      // result up to rounding): a convolution + batch norm/scale +
                      // activation; a batch norm + ReLU; a zero Pad + average
                      // pool; ShuffleNet's channel shuffle (Reshape, Transpose, Reshape)
  bool blocked_layouts = true;  // pass tensors between convolutions (and the ReLUs,
                                // adds, pooling, concats ... between them) in
                                // oneDNN's blocked layout, or NHWC
  bool winograd = true;  // large 3x3 convolutions of stride 1 by Winograd's algorithm
                         // where oneDNN has it for this CPU (AVX-512): faster, and
                         // the same result up to rounding
  Clock* clock = nullptr;  // what ProfileLayers times with; null: Clock::System()
  EngineBackend backend = EngineBackend::kAuto;  // which library computes each convolution (above)
};

class Kernel;
class Engine;

// A layer set made ready to run: which kernel runs which layers (fusions
// included), which tensors stay in oneDNN's blocked layouts, and which
// tensors the caller must give. Immutable; valid while its Engine lives. It
// holds the kernels it runs: a layer replaced later (Engine::ReplaceLayer)
// runs with its old weights in the runs prepared before.
class PreparedRun {
 public:
  const std::vector<int>& layers() const { return layers_; }  // ascending
  // Tensors the layers read (or `wanted` names) that none of them produce:
  // Execute's `inputs` must hold each, with the shape given here.
  const std::vector<std::string>& given() const { return given_; }
  const std::vector<Shape>& given_shapes() const { return given_shapes_; }
  const std::vector<std::string>& wanted() const { return wanted_; }
  int kernels() const { return static_cast<int>(steps_.size()); }  // fewer than layers when fused
  // Kernels that run with their tensors in NHWC (channels last): pooling,
  // concatenations and the like between convolutions that pick NHWC.
  int channels_last_kernels() const;
  // Kernels that `backend` ("onednn", "xnnpack", "ionn") computes.
  int backend_kernels(const std::string& backend) const;

 private:
  friend class Engine;
  struct Step {
    std::shared_ptr<const Kernel> kernel;
    int first = 0, last = 0;  // the layer whose inputs it reads, the layer whose output it writes
    bool native_in = false, native_out = false;
    bool channels_last = false;  // RunChannelsLast: every input and the output in NHWC
    size_t out_floats = 0;   // output buffer size (a blocked layout may pad)
    std::vector<int> reads;  // per input: layer position (>= 0) or -1 - index into given()
  };
  std::vector<int> layers_;
  std::vector<Step> steps_;
  std::vector<std::string> given_;
  std::vector<Shape> given_shapes_;
  std::vector<std::string> given_reader_;  // the first layer reading it, or "" when only wanted
  std::vector<std::string> wanted_;
  std::vector<int> wanted_from_;  // layer position (>= 0) or -1 - index into given()
};

class Engine {
 public:
  // `graph` must have passed Finalize(). Its weights may be present (the
  // layer is built now) or shapes only (the layer waits for AddLayer). The
  // engine keeps its own copy of what it needs, not a reference to `graph`.
  static Result<std::unique_ptr<Engine>> Create(const Graph& graph, const EngineOptions& options = {});
  ~Engine();

  // The architecture: shapes and attributes, no weight data.
  const Graph& graph() const { return graph_; }
  // The options it runs with: those given, with IONN_BACKEND applied.
  const EngineOptions& options() const { return options_; }

  // Builds layer `layer` from `weights`, which must match the declared
  // weights one for one (names, shapes, exactly ElementCount(shape) values).
  // A layer is built once; layers already built are never rebuilt, except
  // a `provisional` one (approximate weights: progressive's high half),
  // which ReplaceLayer replaces once. A fusion waits for its provisional
  // members (they run one by one meanwhile), so that no fused kernel ever
  // holds approximate weights.
  Status AddLayer(int layer, std::vector<Weight> weights, bool provisional = false);
  // Gives provisional layer `layer` its final weights: runs prepared from
  // now on use them (and its fusion, once no member is provisional); runs
  // prepared before keep the old kernel. Checked as AddLayer checks.
  Status ReplaceLayer(int layer, std::vector<Weight> weights);
  bool is_provisional(int layer) const;
  bool is_built(int layer) const;
  int num_built() const;

  // Sharing built layers between engines (the server's layer store): a
  // kernel is immutable and runs on any engine of this process whose layer
  // has the same kind, attributes, input shapes and weights (what
  // LayerContentHash covers) and the same thread count. AdoptLayer builds
  // `layer` from such a kernel instead of weights. Fusion groups (layers
  // run as one kernel, see EngineOptions::fuse)
  // have a kernel of their own, made once every member is built from
  // weights here, or adopted from an engine that made it.
  using SharedKernel = std::shared_ptr<const Kernel>;
  SharedKernel LayerKernel(int layer) const;  // null until built
  Status AdoptLayer(int layer, SharedKernel kernel);
  std::vector<std::vector<int>> FusionGroups() const;  // members, in graph order
  // Bytes the kernel of layer `layer` holds beyond its weights as uploaded,
  // from shapes alone (an upper bound): a convolution run by Winograd keeps
  // its weights transformed, up to 4 times as large. 0 for other layers.
  uint64_t KernelExtraBytes(int layer) const;
  SharedKernel FusedKernel(int group) const;           // null until made
  Status AdoptFused(int group, SharedKernel kernel);   // needs every member built

  // Checks and prepares running the layers at positions `layers` (any
  // subset of built layers, run in topological order) and returning the
  // tensors named in `wanted` (produced by `layers`, or given).
  Result<std::shared_ptr<const PreparedRun>> Prepare(const std::vector<int>& layers,
                                                     const std::vector<std::string>& wanted) const;
  // Runs `run` (made by this engine). `inputs` must hold run.given() with
  // their shapes; every other entry must also be a tensor of the model with
  // its shape (it is not used). Never throws: oneDNN errors and running
  // out of memory come back as a Status.
  Result<TensorMap> Execute(const PreparedRun& run, const TensorMap& inputs) const;

  // Prepare + Execute, for a one-off run.
  Result<TensorMap> Run(const std::vector<int>& layers, const TensorMap& inputs,
                        const std::vector<std::string>& wanted) const;
  // The whole model: graph inputs in, graph outputs out.
  Result<TensorMap> RunAll(const TensorMap& inputs) const;

  // Median and spread of one layer's latency, over `repeats` runs after
  // `warmup` runs, on inputs recorded from one full run of `inputs`. Needs
  // every layer built.
  using LayerTiming = LayerTimes;
  Result<std::vector<LayerTiming>> ProfileLayers(const TensorMap& inputs, int warmup, int repeats) const;

 private:
  Engine() = default;
  Status BuildLayer(int k, Layer layer, bool provisional, bool replace);  // holds mu_
  Status CheckWeights(int k, const std::vector<Weight>& weights) const;
  Graph graph_;  // shapes and attributes (weights moved into the kernels)
  EngineOptions options_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A deterministic input for graph input `shape` (values in [-1, 1)).
Tensor SeededInput(const Shape& shape, uint64_t seed);

}  // namespace ionn
