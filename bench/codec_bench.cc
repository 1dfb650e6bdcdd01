// The upload encodings on this machine: per zoo model (seeded weights) and
// encoding, the bytes sent against fp32's, and how fast the client encodes
// and the server decodes (MB of fp32 weights per second, 1 MB = 1e6 bytes,
// median of 3 passes over every layer, one thread).
//
//   codec_bench [--json FILE] [MODEL...]   (default: the five zoo models)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ionn/weight_codec.h"
#include "ionn/zoo.h"

namespace {

double Seconds(const std::chrono::steady_clock::time_point& t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double Median3(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  std::vector<std::string> models;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a.rfind("--", 0) == 0) {
      std::printf("usage: codec_bench [--json FILE] [MODEL...]\n");
      return a == "--help" ? 0 : 2;
    } else {
      models.push_back(a);
    }
  }
  if (models.empty()) {
    for (const auto& e : ionn::ZooModels()) models.push_back(e.name);
  }
  nlohmann::json doc = {{"rows", nlohmann::json::array()}};
  std::printf("| model | encoding | fp32 MB | sent MB | ratio | encode MB/s | decode MB/s |\n");
  std::printf("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
  for (const std::string& name : models) {
    auto g = ionn::BuildZooModel(name);
    if (!g.ok()) {
      std::fprintf(stderr, "codec_bench: %s\n", g.status().message().c_str());
      return 2;
    }
    double raw = 0;
    for (const auto& l : g->layers) {
      for (const auto& w : l.weights) raw += 4.0 * w.data.size();
    }
    for (ionn::UploadEncoding e : ionn::UploadEncodings()) {
      const ionn::WeightCodec& codec = ionn::CodecFor(e);
      std::vector<double> enc_s, dec_s;
      double sent = 0;
      for (int pass = 0; pass < 3; ++pass) {
        std::vector<std::vector<std::string>> encoded(g->layers.size());
        auto t0 = std::chrono::steady_clock::now();
        for (size_t k = 0; k < g->layers.size(); ++k) {
          if (g->layers[k].weights.empty()) continue;
          for (ionn::UnitPhase p : ionn::EncodingPhases(e)) encoded[k].push_back(codec.Encode(g->layers[k], p, {}).value());
        }
        enc_s.push_back(Seconds(t0));
        sent = 0;
        t0 = std::chrono::steady_clock::now();
        for (size_t k = 0; k < g->layers.size(); ++k) {
          std::vector<ionn::Weight> w;
          const auto phases = ionn::EncodingPhases(e);
          for (size_t i = 0; i < encoded[k].size(); ++i) {
            sent += encoded[k][i].size();
            if (!codec.Decode(g->layers[k], phases[i], encoded[k][i], &w).ok()) return 1;
          }
        }
        dec_s.push_back(Seconds(t0));
      }
      const double mb = raw / 1e6;
      std::printf("| %s | %s | %.1f | %.1f | %.3f | %.0f | %.0f |\n", name.c_str(), ionn::UploadEncodingName(e), mb,
                  sent / 1e6, sent / raw, mb / Median3(enc_s), mb / Median3(dec_s));
      std::fflush(stdout);
      doc["rows"].push_back({{"model", name}, {"encoding", ionn::UploadEncodingName(e)}, {"fp32_bytes", raw},
                             {"sent_bytes", sent}, {"encode_mb_per_s", mb / Median3(enc_s)},
                             {"decode_mb_per_s", mb / Median3(dec_s)}});
    }
  }
  if (!json_path.empty()) std::ofstream(json_path) << doc.dump(1) << "\n";
  return 0;
}
