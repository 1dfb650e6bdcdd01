// Whole-model latency at batch 1: ionn's engine against OpenCV's DNN
// module on the same ONNX file, per zoo model and thread count. Prints a
// table of medians; --json FILE writes the rows. PyTorch numbers come from
// bench/torch_bench.py (run by bench/engine_bench.sh).
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

int main(int argc, char** argv) {
  std::string json_path, only, torch_path;
  std::vector<int> threads = {1, 2};
  double seconds = 1.0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    if (!std::strcmp(argv[i], "--model") && i + 1 < argc) only = argv[++i];
    if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = std::atof(argv[++i]);
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = {std::atoi(argv[++i])};
    if (!std::strcmp(argv[i], "--torch") && i + 1 < argc) torch_path = argv[++i];
  }
  // Lines "model threads median_ms runs" from bench/torch_bench.py.
  std::map<std::pair<std::string, int>, double> torch_ms;
  if (!torch_path.empty()) {
    std::ifstream in(torch_path);
    std::string model;
    int t, runs;
    double ms;
    while (in >> model >> t >> ms >> runs) torch_ms[{model, t}] = ms;
  }
  nlohmann::json rows = nlohmann::json::array();
  std::printf("whole-model latency, batch 1, median ms (runs)\n");
  std::printf("%-14s %7s %16s %16s %10s %10s\n", "model", "threads", "ionn", "opencv-dnn", "pytorch", "ionn/best");
  for (const auto& e : ZooModels()) {
    if (!only.empty() && e.name != only) continue;
    Graph g = BuildZooModel(e.name, 1).value();
    const std::string path = (std::filesystem::temp_directory_path() / ("ionn-bench-" + e.name + ".onnx")).string();
    if (!WriteOnnxFile(g, path).ok()) return 1;
    {  // OpenCV 4.6 applies count_include_pad only to "pytorch" models (see cross_engine_test)
      std::ifstream in(path, std::ios::binary);
      onnx::ModelProto m;
      m.ParseFromIstream(&in);
      m.set_producer_name("pytorch");
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      m.SerializeToOstream(&out);
    }
    const Tensor input = SeededInput(g.inputs[0].shape, 1);
    for (int t : threads) {
      auto engine = Engine::Create(g, EngineOptions{t}).value();
      const TensorMap in = {{"data", input}};
      int ionn_runs = 0, cv_runs = 0;
      const double ionn_us = bench::MedianUs([&] { (void)engine->RunAll(in); ++ionn_runs; }, 5, seconds);
      cv::setNumThreads(t);
      cv::dnn::Net net = cv::dnn::readNetFromONNX(path);
      std::vector<int> dims(input.shape.begin(), input.shape.end());
      cv::Mat blob(static_cast<int>(dims.size()), dims.data(), CV_32F, const_cast<float*>(input.data.data()));
      const double cv_us = bench::MedianUs([&] { net.setInput(blob); net.forward(); ++cv_runs; }, 5, seconds);
      auto torch = torch_ms.find({e.name, t});
      const double torch_val = torch == torch_ms.end() ? 0 : torch->second;
      const double best = torch_val > 0 ? std::min(cv_us / 1000, torch_val) : cv_us / 1000;
      std::printf("%-14s %7d %10.2f (%3d) %10.2f (%3d) %10s %10.2f\n", e.name.c_str(), t, ionn_us / 1000, ionn_runs,
                  cv_us / 1000, cv_runs, torch_val > 0 ? std::to_string(torch_val).substr(0, 6).c_str() : "-",
                  ionn_us / 1000 / best);
      std::fflush(stdout);
      rows.push_back({{"model", e.name}, {"threads", t}, {"ionn_ms", ionn_us / 1000}, {"opencv_ms", cv_us / 1000},
                      {"pytorch_ms", torch_val}});
    }
    std::filesystem::remove(path);
  }
  if (!json_path.empty()) std::ofstream(json_path) << rows.dump(1) << "\n";
  return 0;
}
