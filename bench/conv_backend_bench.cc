// Per-convolution times on both engine backends, each kernel reading and
// writing its own native layout (NHWC here), as a convolution runs between
// others in a model: the measurements behind the auto backend's rule
// (MakeConv, src/engine/kernels/conv.cc). Every distinct
// convolution of the models given (the zoo's five by default), seeded
// weights, 1 thread unless --threads. Prints one row per shape and a sum
// per class; --csv FILE writes the rows.
//
// Usage: conv_backend_bench [--seconds S] [--threads N] [--csv FILE] [model.onnx ...]
#include <omp.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "../src/engine/kernel.h"
#include "bench_util.h"
#include "ionn/onnx_io.h"
#include "ionn/zoo.h"

using namespace ionn;

namespace {

std::string ConvClass(const Layer& l, const Shape& x) {
  if (l.group > 1 && l.group == x[1]) return "depthwise";
  if (l.group > 1) return "grouped";
  if (l.kernel_h == 1 && l.kernel_w == 1) return l.stride_h == 1 && l.stride_w == 1 ? "1x1" : "1x1/s2";
  return std::to_string(l.kernel_h) + "x" + std::to_string(l.kernel_w);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0.2;
  int threads = 1;
  std::string csv_path;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--csv") && i + 1 < argc) {
      csv_path = argv[++i];
    } else if (argv[i][0] != '-') {
      files.push_back(argv[i]);
    } else {
      std::fprintf(stderr, "usage: conv_backend_bench [--seconds S] [--threads N] [--csv FILE] [model.onnx ...]\n");
      return 2;
    }
  }
  if (!EngineBackendAvailable(EngineBackend::kXnnpack)) {
    std::fprintf(stderr, "conv_backend_bench: this build has no XNNPACK\n");
    return 2;
  }
  std::vector<std::pair<std::string, Graph>> models;
  if (files.empty()) {
    for (const auto& e : ZooModels()) models.emplace_back(e.name, BuildZooModel(e.name, 1, false).value());
  } else {
    for (const auto& f : files) {
      auto g = ReadOnnxFile(f);
      if (!g.ok()) {
        std::fprintf(stderr, "%s: %s\n", f.c_str(), g.status().message().c_str());
        return 1;
      }
      models.emplace_back(std::filesystem::path(f).stem().string(), std::move(g).value());
    }
  }
  const dnnl::engine cpu(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(cpu);
  omp_set_num_threads(threads);
  std::ofstream csv;
  if (!csv_path.empty()) {
    csv.open(csv_path);
    csv << "model,layer,class,input,output,kernel,stride,group,mflop,onednn_us,xnnpack_us,xnnpack_over_onednn\n";
  }
  std::printf("%-14s %-22s %-10s %-16s %-16s %9s %10s %10s %6s\n", "model", "layer", "class", "input", "output",
              "MFLOP", "onednn us", "xnnpack us", "x/o");
  std::map<std::string, std::pair<double, double>> per_class;
  std::set<std::tuple<Shape, Shape, int64_t, int64_t, int64_t, int64_t, int64_t>> seen;
  for (auto& [name, g] : models) {
    for (const Layer& decl : g.layers) {
      if (decl.kind != LayerKind::kConv) continue;
      const Shape x = *g.TensorShape(decl.inputs[0]);
      if (x.size() != 4) continue;
      if (!seen.insert({x, decl.output_shape, decl.kernel_h, decl.kernel_w, decl.stride_h, decl.group, decl.dilation_h})
               .second) {
        continue;
      }
      double us[2] = {0, 0};
      const EngineBackend backends[2] = {EngineBackend::kOneDnn, EngineBackend::kXnnpack};
      bool refused = false;
      for (int b = 0; b < 2; ++b) {
        Layer l = decl;
        for (size_t w = 0; w < l.weights.size(); ++w) l.weights[w].data = SeededInput(l.weights[w].shape, 3 + w).data;
        KernelContext ctx{cpu, false, threads, backends[b]};
        std::unique_ptr<Kernel> k = MakeConvKernel(l, {x}, ctx);
        if (b == 1 && std::strcmp(k->backend(), "xnnpack") != 0) refused = true;
        const Tensor src = SeededInput(x, 1);
        std::vector<float> in(k->native_src()->get_size() / sizeof(float));
        std::copy(src.data.begin(), src.data.end(), in.begin());
        std::vector<float> out(k->native_dst()->get_size() / sizeof(float));
        us[b] = bench::MedianUs([&] { k->RunNative(in.data(), true, out.data(), true, stream); }, 5, seconds);
      }
      const double mflop = 2.0 * static_cast<double>(ElementCount(decl.output_shape)) *
                           static_cast<double>(x[1] / decl.group * decl.kernel_h * decl.kernel_w) / 1e6;
      const std::string cls = ConvClass(decl, x);
      per_class[cls].first += us[0], per_class[cls].second += us[1];
      const std::string kernel = std::to_string(decl.kernel_h) + "x" + std::to_string(decl.kernel_w);
      std::printf("%-14s %-22.22s %-10s %-16s %-16s %9.2f %10.1f %10.1f %6.2f%s\n", name.c_str(), decl.name.c_str(),
                  cls.c_str(), ShapeToString(x).c_str(), ShapeToString(decl.output_shape).c_str(), mflop, us[0], us[1],
                  us[1] / us[0], refused ? " (xnnpack refused: onednn)" : "");
      std::fflush(stdout);
      if (csv) {
        csv << name << "," << decl.name << "," << cls << ",\"" << ShapeToString(x) << "\",\""
            << ShapeToString(decl.output_shape) << "\"," << kernel << "," << decl.stride_h << "," << decl.group << ","
            << mflop << "," << us[0] << "," << us[1] << "," << us[1] / us[0] << "\n";
      }
    }
  }
  std::printf("\nper class, summed over distinct shapes:\n%-10s %12s %12s %6s\n", "class", "onednn us", "xnnpack us",
              "x/o");
  for (const auto& [cls, t] : per_class) {
    std::printf("%-10s %12.1f %12.1f %6.2f\n", cls.c_str(), t.first, t.second, t.second / t.first);
  }
  return 0;
}
