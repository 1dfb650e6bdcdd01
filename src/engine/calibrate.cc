#include "ionn/calibrate.h"

#include "ionn/engine.h"
#include "ionn/op.h"

namespace ionn {
namespace {

// One configuration: a layer whose weights have shapes but no data yet
// (weight k is filled with fill[k] when it runs), and its input shapes.
using Microbenchmark = CalibrationCase;

std::vector<Microbenchmark> Microbenchmarks(bool quick) {
  std::vector<Microbenchmark> out;
  std::vector<int> channels = {16, 64, 256}, sizes = {7, 14, 28, 56};
  if (quick) channels = {8, 16}, sizes = {7, 14};
  for (int c : channels) {
    for (int hw : sizes) {
      const Shape x = {1, c, hw, hw};
      for (int oc : channels) {
        for (int k : {1, 3}) {
          Layer conv;
          conv.kind = LayerKind::kConv;
          conv.out_channels = oc, conv.kernel_h = conv.kernel_w = k;
          conv.pad_top = conv.pad_left = conv.pad_bottom = conv.pad_right = k / 2;
          conv.weights = {{"w", {oc, c, k, k}, {}}, {"b", {oc}, {}}};
          out.push_back({conv, {x}, {0.01f, 0.0f}});
        }
      }
      Layer simple;
      for (LayerKind kind : {LayerKind::kRelu, LayerKind::kDropout, LayerKind::kSoftmax}) {
        simple.kind = kind;
        out.push_back({simple, {x}, {}});
      }
      Layer pool;
      pool.kind = LayerKind::kMaxPool;
      pool.kernel_h = pool.kernel_w = 3, pool.stride_h = pool.stride_w = 2, pool.ceil_mode = true;
      out.push_back({pool, {x}, {}});
      Layer lrn;
      lrn.kind = LayerKind::kLrn;
      out.push_back({lrn, {x}, {}});
      for (LayerKind kind : {LayerKind::kBatchNorm, LayerKind::kScale}) {
        Layer bn;
        bn.kind = kind;
        bn.epsilon = kind == LayerKind::kScale ? 0.0f : 1e-5f;
        for (const char* w : {"g", "b", "m", "v"}) bn.weights.push_back({w, {c}, {}});
        out.push_back({bn, {x}, {1.0f, 1.0f, 1.0f, 1.0f}});
      }
      Layer add;
      add.kind = LayerKind::kAdd;
      out.push_back({add, {x, x}, {}});
      Layer cat;
      cat.kind = LayerKind::kConcat;
      out.push_back({cat, {x, x, x, x}, {}});
      // The kinds models exported by PyTorch add: sigmoids, channel scales
      // (squeeze-and-excitation), means, shuffles, splits, padding, and the
      // reshapes in front of a classifier.
      for (LayerKind kind : {LayerKind::kSigmoid, LayerKind::kHardSigmoid, LayerKind::kHardSwish}) {
        simple.kind = kind;
        out.push_back({simple, {x}, {}});
      }
      Layer scale;
      scale.kind = LayerKind::kMul;
      out.push_back({scale, {x, {1, c, 1, 1}}, {}});
      Layer shuffle;
      shuffle.kind = LayerKind::kTranspose;
      shuffle.perm = {0, 2, 1, 3, 4};
      out.push_back({shuffle, {{1, 2, c / 2, hw, hw}}, {}});
      Layer half;
      half.kind = LayerKind::kSlice;
      half.slice_begin = c / 2, half.slice_end = c;
      out.push_back({half, {x}, {}});
      Layer pad;
      pad.kind = LayerKind::kPad;
      pad.pad_top = pad.pad_left = pad.pad_bottom = pad.pad_right = 1;
      out.push_back({pad, {x}, {}});
      for (LayerKind kind : {LayerKind::kFlatten, LayerKind::kReshape}) {
        Layer flat;
        flat.kind = kind;
        flat.reshape_to = {1, -1};
        out.push_back({flat, {x}, {}});
      }
      for (const OpDescriptor* op : RegisteredOps()) {
        for (CalibrationCase& m : op->calibration(c, hw)) out.push_back(std::move(m));
      }
    }
  }
  for (int in : quick ? std::vector<int>{64, 256} : std::vector<int>{256, 1024, 4096, 9216}) {
    for (int o : quick ? std::vector<int>{64, 256} : std::vector<int>{256, 1000, 4096}) {
      Layer fc;
      fc.kind = LayerKind::kFc;
      fc.out_channels = o;
      fc.weights = {{"w", {o, in}, {}}, {"b", {o}, {}}};
      out.push_back({fc, {{1, in}}, {0.01f, 0.0f}});
    }
  }
  return out;
}

// The one-layer graph of `m`, with its weights filled.
Result<Graph> BenchmarkGraph(const Microbenchmark& m) {
  Graph g;
  g.name = "calibrate";
  Layer layer = m.layer;
  for (size_t i = 0; i < m.inputs.size(); ++i) {
    g.inputs.push_back({"x" + std::to_string(i), m.inputs[i]});
    layer.inputs.push_back("x" + std::to_string(i));
  }
  for (size_t k = 0; k < layer.weights.size(); ++k) {
    Weight& w = layer.weights[k];
    w.data.assign(static_cast<size_t>(ElementCount(w.shape)), m.fill[k]);
  }
  layer.name = "y";
  g.layers = {std::move(layer)};
  g.outputs = {"y"};
  IONN_RETURN_IF_ERROR(g.Finalize());
  return g;
}

}  // namespace

Result<Calibration> CalibrateServer(const CalibrationOptions& options, const CalibrationProgress& progress) {
  const std::vector<Microbenchmark> benchmarks = Microbenchmarks(options.quick);
  Calibration c;
  for (size_t i = 0; i < benchmarks.size(); ++i) {
    IONN_ASSIGN_OR_RETURN(const Graph g, BenchmarkGraph(benchmarks[i]));
    EngineOptions eo;
    eo.threads = options.threads;
    eo.winograd = options.winograd;
    eo.backend = options.backend;
    IONN_ASSIGN_OR_RETURN(const std::unique_ptr<Engine> engine, Engine::Create(g, eo));
    TensorMap in;
    for (const auto& gi : g.inputs) in[gi.name] = SeededInput(gi.shape, 2);
    IONN_ASSIGN_OR_RETURN(const auto timing, engine->ProfileLayers(in, options.warmup, options.repeats));
    CalibrationStep step;
    step.index = static_cast<int>(i), step.total = static_cast<int>(benchmarks.size());
    step.type = LayerKindCaffeType(g.layers[0].kind);
    step.x = RegressionX(g, g.layers[0]);
    step.median_ms = timing[0].median_ms;
    c.samples[step.type].push_back({step.x, step.median_ms});
    if (progress) progress(step);
  }
  c.fit = FitServerRegression(c.samples);
  return c;
}

}  // namespace ionn
