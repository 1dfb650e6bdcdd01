// Whole-model latency at batch 1: ionn's engine against OpenCV's DNN
// module on the same ONNX file, per model and thread count, beside the
// times other engines measured (PyTorch by bench/torch_bench.py and
// bench/torchvision_bench.py, ONNX Runtime by bench/ort_bench.js; run by
// bench/engine_bench.sh). Prints a table of medians; --json FILE writes the
// rows. Models: the zoo's five, or the ONNX files given. ionn runs with
// --backend auto (its column "ionn", the ratio's) and with every
// convolution on XNNPACK ("xnnpack"), so the backend choice is visible.
#include <omp.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <onnx/onnx_pb.h>

#include "bench_util.h"
#include "ionn/engine.h"
#include "ionn/onnx_io.h"

using namespace ionn;

namespace {

// Lines "model threads median_ms runs" (model: a file's stem).
using PeerTimes = std::map<std::pair<std::string, int>, double>;
PeerTimes ReadPeer(const std::string& path) {
  PeerTimes times;
  if (path.empty()) return times;
  std::ifstream in(path);
  std::string model;
  int t, runs;
  double ms;
  while (in >> model >> t >> ms >> runs) times[{model, t}] = ms;
  return times;
}

std::string Cell(const PeerTimes& times, const std::string& model, int t, double* best) {
  auto it = times.find({model, t});
  if (it == times.end() || !(it->second > 0)) return "-";
  *best = std::min(*best, it->second);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", it->second);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path, only, torch_path, ort_path;
  std::vector<int> threads = {1, 2};
  std::vector<std::string> files;
  double seconds = 1.0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) {
      json_path = argv[++i];
    } else if (!std::strcmp(argv[i], "--model") && i + 1 < argc) {
      only = argv[++i];
    } else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = {std::atoi(argv[++i])};
    } else if (!std::strcmp(argv[i], "--torch") && i + 1 < argc) {
      torch_path = argv[++i];
    } else if (!std::strcmp(argv[i], "--ort") && i + 1 < argc) {
      ort_path = argv[++i];
    } else if (argv[i][0] != '-') {
      files.push_back(argv[i]);
    } else {
      std::fprintf(stderr, "usage: engine_bench [--seconds S] [--threads N] [--model NAME] [--torch FILE] [--ort FILE] "
                           "[--json FILE] [model.onnx ...]\n");
      return 2;
    }
  }
  const PeerTimes torch_ms = ReadPeer(torch_path), ort_ms = ReadPeer(ort_path);
  // The models: (name, ONNX file).
  std::vector<std::pair<std::string, std::string>> models;
  std::vector<std::string> written;
  if (files.empty()) {
    for (const auto& e : ZooModels()) {
      if (!only.empty() && e.name != only) continue;
      Graph g = BuildZooModel(e.name, 1).value();
      const std::string path = (std::filesystem::temp_directory_path() / ("ionn-bench-" + e.name + ".onnx")).string();
      if (!WriteOnnxFile(g, path).ok()) return 1;
      models.push_back({e.name, path});
      written.push_back(path);
    }
  } else {
    for (const auto& f : files) models.push_back({std::filesystem::path(f).stem().string(), f});
  }
  nlohmann::json rows = nlohmann::json::array();
  std::printf("whole-model latency, batch 1, median ms (runs)\n");
  const bool xnnpack = EngineBackendAvailable(EngineBackend::kXnnpack);
  std::printf("%-20s %7s %16s %16s %16s %10s %12s %10s\n", "model", "threads", "ionn", "xnnpack", "opencv-dnn",
              "pytorch", "onnxruntime", "ionn/best");
  for (const auto& [name, path] : models) {
    auto g = ReadOnnxFile(path);
    if (!g.ok()) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(), g.status().message().c_str());
      return 1;
    }
    // OpenCV 4.6 reads ionn's export of the model (it refuses exporters'
    // Identity nodes) and applies count_include_pad only to "pytorch"
    // models (see cross_engine_test).
    const std::string cv_path = (std::filesystem::temp_directory_path() / ("ionn-bench-cv-" + name + ".onnx")).string();
    if (!WriteOnnxFile(*g, cv_path).ok()) return 1;
    {
      std::ifstream in(cv_path, std::ios::binary);
      onnx::ModelProto m;
      m.ParseFromIstream(&in);
      m.set_producer_name("pytorch");
      std::ofstream out(cv_path, std::ios::binary | std::ios::trunc);
      m.SerializeToOstream(&out);
    }
    const Tensor input = SeededInput(g->inputs[0].shape, 1);
    for (int t : threads) {
      auto engine = Engine::Create(*g, EngineOptions{t}).value();
      const TensorMap in = {{g->inputs[0].name, input}};
      int ionn_runs = 0, cv_runs = 0;
      const double ionn_us = bench::MedianUs([&] { (void)engine->RunAll(in); ++ionn_runs; }, 5, seconds);
      double xnn_us = 0;
      int xnn_runs = 0;
      if (xnnpack) {
        EngineOptions xo{t};
        xo.backend = EngineBackend::kXnnpack;
        auto x = Engine::Create(*g, xo).value();
        xnn_us = bench::MedianUs([&] { (void)x->RunAll(in); ++xnn_runs; }, 5, seconds);
      }
      double cv_us = 0;
      try {  // OpenCV 4.6 does not read every exported model
        cv::setNumThreads(t);
        cv::dnn::Net net = cv::dnn::readNetFromONNX(cv_path);
        std::vector<int> dims(input.shape.begin(), input.shape.end());
        cv::Mat blob(static_cast<int>(dims.size()), dims.data(), CV_32F, const_cast<float*>(input.data.data()));
        cv_us = bench::MedianUs([&] { net.setInput(blob); net.forward(); ++cv_runs; }, 5, seconds);
      } catch (const cv::Exception& e) {
        std::fprintf(stderr, "opencv-dnn cannot run %s: %s\n", name.c_str(), e.msg.substr(0, 160).c_str());
      }
      double best = cv_us > 0 ? cv_us / 1000 : 1e30;
      const std::string torch = Cell(torch_ms, name, t, &best), ort = Cell(ort_ms, name, t, &best);
      char cv_cell[32] = "               -", xnn_cell[32] = "               -";
      if (cv_us > 0) std::snprintf(cv_cell, sizeof cv_cell, "%10.2f (%3d)", cv_us / 1000, cv_runs);
      if (xnn_us > 0) std::snprintf(xnn_cell, sizeof xnn_cell, "%10.2f (%3d)", xnn_us / 1000, xnn_runs);
      std::printf("%-20s %7d %10.2f (%3d) %16s %16s %10s %12s %10s\n", name.c_str(), t, ionn_us / 1000, ionn_runs,
                  xnn_cell, cv_cell, torch.c_str(), ort.c_str(),
                  best < 1e29 ? std::to_string(ionn_us / 1000 / best).substr(0, 4).c_str() : "-");
      std::fflush(stdout);
      rows.push_back({{"model", name}, {"threads", t}, {"ionn_ms", ionn_us / 1000}, {"xnnpack_ms", xnn_us / 1000},
                      {"opencv_ms", cv_us / 1000},
                      {"pytorch_ms", torch == "-" ? 0 : std::stod(torch)}, {"onnxruntime_ms", ort == "-" ? 0 : std::stod(ort)}});
    }
    std::filesystem::remove(cv_path);
  }
  for (const auto& w : written) std::filesystem::remove(w);
  if (!json_path.empty()) std::ofstream(json_path) << rows.dump(1) << "\n";
  return 0;
}
