// How far the lossy upload encodings move a model's outputs: for each model
// and each lossy weight set (progressive's high half alone, i.e. bfloat16
// truncated; fp16; int8), over N seeded inputs, the share of inputs whose
// top-1 class equals the fp32 model's, and the largest and mean error of
// the first output relative to the largest magnitude of the fp32 output,
// beside how many distinct top-1 classes the fp32 model gave (seeded
// weights: agreement means little where it is always the same class).
//
//   encoding_accuracy [--inputs N] [--threads T] [--json FILE] MODEL...
// MODEL: a zoo name or an .onnx file (seeded inputs of its first input).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ionn/engine.h"
#include "ionn/model_source.h"
#include "ionn/weight_codec.h"

namespace {

struct Variant {
  const char* name;
  ionn::UploadEncoding encoding;
  ionn::UnitPhase phase;
};
const Variant kVariants[] = {
    {"progressive high half (bf16)", ionn::UploadEncoding::kProgressive, ionn::UnitPhase::kHigh},
    {"fp16", ionn::UploadEncoding::kFp16, ionn::UnitPhase::kWhole},
    {"int8", ionn::UploadEncoding::kInt8, ionn::UnitPhase::kWhole},
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "encoding_accuracy: %s\n", what.c_str());
  return 2;
}

size_t ArgMax(const std::vector<float>& v) { return std::max_element(v.begin(), v.end()) - v.begin(); }

}  // namespace

int main(int argc, char** argv) {
  int inputs = 1000, threads = 1;
  std::string json_path;
  std::vector<std::string> models;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--inputs" || a == "--threads" || a == "--json") && i + 1 < argc) {
      const std::string v = argv[++i];
      if (a == "--inputs") inputs = std::atoi(v.c_str());
      if (a == "--threads") threads = std::atoi(v.c_str());
      if (a == "--json") json_path = v;
    } else if (a == "--help" || a == "-h" || a.rfind("--", 0) == 0) {
      std::printf("usage: encoding_accuracy [--inputs N] [--threads T] [--json FILE] MODEL...\n");
      return a.rfind("--", 0) == 0 && a != "--help" ? 2 : 0;
    } else {
      models.push_back(a);
    }
  }
  if (models.empty() || inputs < 1 || threads < 1) return Fail("give models, --inputs >= 1, --threads >= 1");
  ionn::EngineOptions eo;
  eo.threads = threads;
  nlohmann::json doc = {{"inputs", inputs}, {"threads", threads}, {"rows", nlohmann::json::array()}};
  std::printf("| model | weights | top-1 agreement | fp32 classes seen | largest logit error | mean logit error |\n");
  std::printf("| --- | --- | ---: | ---: | ---: | ---: |\n");
  for (const std::string& m : models) {
    const bool file = m.size() > 5 && m.substr(m.size() - 5) == ".onnx";
    auto graph = ionn::LoadModel(file ? m : "", file ? "" : m, /*with_weights=*/true);
    if (!graph.ok()) return Fail(m + ": " + graph.status().message());
    auto reference = ionn::Engine::Create(*graph, eo);
    if (!reference.ok()) return Fail(m + ": " + reference.status().message());
    std::vector<std::unique_ptr<ionn::Engine>> engines;
    for (const Variant& v : kVariants) {
      auto decoded = ionn::GraphAsDecoded(*graph, v.encoding, v.phase);
      if (!decoded.ok()) return Fail(m + ": " + decoded.status().message());
      auto e = ionn::Engine::Create(*decoded, eo);
      if (!e.ok()) return Fail(m + ": " + e.status().message());
      engines.push_back(std::move(*e));
    }
    const ionn::GraphInput& in = graph->inputs[0];
    const std::string out = graph->outputs[0];
    std::vector<int> agree(engines.size(), 0);
    std::vector<double> largest(engines.size(), 0), sum(engines.size(), 0);
    std::set<size_t> classes;  // top-1 classes of the fp32 model: agreement means little if it is one
    for (int s = 1; s <= inputs; ++s) {
      ionn::TensorMap x;
      x[in.name] = ionn::SeededInput(in.shape, static_cast<uint64_t>(s));
      auto ref = (*reference)->RunAll(x);
      if (!ref.ok()) return Fail(m + ": " + ref.status().message());
      const std::vector<float>& r = ref->at(out).data;
      classes.insert(ArgMax(r));
      double scale = 0;
      for (float v : r) scale = std::max(scale, std::fabs(static_cast<double>(v)));
      for (size_t e = 0; e < engines.size(); ++e) {
        auto got = engines[e]->RunAll(x);
        if (!got.ok()) return Fail(m + ": " + got.status().message());
        const std::vector<float>& g = got->at(out).data;
        agree[e] += ArgMax(g) == ArgMax(r);
        double err = 0;
        for (size_t i = 0; i < r.size(); ++i) err = std::max(err, std::fabs(static_cast<double>(g[i]) - r[i]));
        err = scale > 0 ? err / scale : err;
        largest[e] = std::max(largest[e], err);
        sum[e] += err;
      }
      if (s % 100 == 0) std::fprintf(stderr, "%s: %d/%d inputs\n", m.c_str(), s, inputs);
    }
    for (size_t e = 0; e < engines.size(); ++e) {
      const double share = 100.0 * agree[e] / inputs;
      std::printf("| %s | %s | %.1f%% (%d/%d) | %zu | %.2e | %.2e |\n", graph->name.c_str(), kVariants[e].name,
                  share, agree[e], inputs, classes.size(), largest[e], sum[e] / inputs);
      std::fflush(stdout);
      doc["rows"].push_back({{"model", graph->name},
                             {"weights", kVariants[e].name},
                             {"top1_agreement", share / 100},
                             {"fp32_classes_seen", classes.size()},
                             {"largest_relative_logit_error", largest[e]},
                             {"mean_relative_logit_error", sum[e] / inputs}});
    }
  }
  if (!json_path.empty()) std::ofstream(json_path) << doc.dump(1) << "\n";
  return 0;
}
