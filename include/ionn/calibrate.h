// Calibration of the server's per-layer-type prediction functions
// t = a*X + b (model_costs.h) on this machine: one-layer microbenchmarks of
// every Caffe layer type of the paper's models, timed with the engine, and a
// least-squares fit per type. What `ionn calibrate` runs and what a server
// runs at start to offer its prediction functions.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ionn/engine.h"
#include "ionn/model_costs.h"

namespace ionn {

struct CalibrationOptions {
  int threads = 1;        // engine threads
  EngineBackend backend = EngineBackend::kAuto;  // as the server will run (ServerOptions::backend)
  bool winograd = false;  // as the server will run (ServerOptions::winograd)
  int warmup = 2;      // untimed runs per configuration
  int repeats = 7;     // timed runs per configuration; the median counts
  bool quick = false;  // fewer, smaller configurations (for tests)
};

// One configuration measured: `index` of `total` (from 0), its Caffe type,
// its RegressionX and its median time.
struct CalibrationStep {
  int index = 0, total = 0;
  std::string type;
  double x = 0, median_ms = 0;
};
// Called on the calling thread after each configuration.
using CalibrationProgress = std::function<void(const CalibrationStep&)>;

struct Calibration {
  std::map<std::string, std::vector<RegressionSample>> samples;  // per Caffe type, in measuring order
  ServerRegressionFit fit;                                       // FitServerRegression(samples)
};

// Runs every configuration (convolutions 1x1 and 3x3, ReLU, Dropout,
// Softmax, max pooling, LRN, BatchNorm, Scale, Eltwise, Concat over a grid
// of channels and sizes; inner products over a grid of input and output
// sizes) with seeded inputs and constant weights, then fits: 56
// configurations with `quick`, 192 without (up to 256-channel 56x56
// convolutions and 9216x4096 inner products). Blocks the calling thread.
// Errors are the engine's.
Result<Calibration> CalibrateServer(const CalibrationOptions& options, const CalibrationProgress& progress = nullptr);

}  // namespace ionn
