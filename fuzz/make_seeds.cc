// Writes the seed corpora of the fuzz targets (fuzz/corpus/*) from
// fuzz/small_model.h: valid inputs a client would send, which the fuzzer
// then mutates. Run by fuzz/run.sh --seeds; the seeds are in the repo.
// Usage: make_seeds CORPUS_DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ionn.pb.h"
#include "ionn/onnx_io.h"
#include "ionn/weight_codec.h"
#include "small_model.h"
#include "wire.h"

namespace {

using namespace ionn;

void Frame(const google::protobuf::Message& m, std::string* out) {
  const std::string bytes = m.SerializeAsString();
  const uint32_t n = static_cast<uint32_t>(bytes.size());
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(n >> (8 * i)));
  *out += bytes;
}

void Write(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

// An OpenSession, then the layers in `partitions` (index lists) uploaded in
// chunks of at most `chunk` bytes, in `encoding` (progressive: every
// partition's high halves, then its low halves).
std::string Session(const Graph& g, const std::vector<std::vector<uint32_t>>& partitions, size_t chunk,
                    UploadEncoding encoding = UploadEncoding::kExact) {
  std::string out;
  v1::OpenSessionRequest open;
  *open.mutable_model() = net::ArchitectureToProto(g);
  if (encoding != UploadEncoding::kExact) open.set_upload_encoding(UploadEncodingName(encoding));
  Frame(open, &out);
  std::vector<std::pair<std::vector<uint32_t>, UnitPhase>> uploads;
  for (UnitPhase phase : EncodingPhases(encoding)) {
    for (const auto& p : partitions) uploads.push_back({p, phase});
  }
  for (size_t p = 0; p < uploads.size(); ++p) {
    const auto& [layers, phase] = uploads[p];
    std::string bytes;
    std::vector<uint64_t> sizes;
    for (uint32_t k : layers) {
      if (encoding == UploadEncoding::kExact) {
        net::AppendLayerWeights(g.layers[k], &bytes);
      } else {
        const std::string e = CodecFor(encoding).Encode(g.layers[k], phase, {}).value();
        bytes += e;
        sizes.push_back(e.size());
      }
    }
    for (size_t at = 0; at == 0 || at < bytes.size(); at += chunk) {
      v1::UploadChunk c;
      c.set_session_id("S");
      if (at == 0) {
        c.set_partition(static_cast<uint32_t>(p));
        for (uint32_t k : layers) c.add_layers(k);
        c.set_phase(static_cast<uint32_t>(phase));
        for (uint64_t n : sizes) c.add_encoded_bytes(n);
      }
      c.set_data(bytes.substr(at, chunk));
      Frame(c, &out);
    }
  }
  return out;
}

v1::QueryStepRequest Step(uint64_t query, const std::vector<uint32_t>& layers, const TensorMap& tensors,
                          const std::vector<std::string>& wanted, const std::vector<std::string>& keep, bool last) {
  v1::QueryStepRequest r;
  r.set_session_id("S");
  r.set_query_id(query);
  for (uint32_t k : layers) r.add_layers(k);
  for (const auto& [name, t] : tensors) net::TensorToProto(name, t, r.add_tensors());
  for (const auto& w : wanted) r.add_wanted(w);
  for (const auto& k : keep) r.add_keep(k);
  r.set_last_step(last);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const Graph g = fuzz::SmallModel();  // conv bn relu up pool side cat gap fc prob
  Write(dir / "onnx" / "small_model", SerializeOnnx(g).value());  // no .onnx: .gitignore
  Write(dir / "onnx" / "small_transformer", SerializeOnnx(fuzz::SmallTransformerModel()).value());
  Write(dir / "architecture" / "one_partition", Session(g, {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}, 1 << 20));
  Write(dir / "architecture" / "two_partitions", Session(g, {{0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}}, 1 << 20));
  Write(dir / "architecture" / "small_chunks", Session(g, {{0, 1, 2}, {3, 4, 5, 6, 7, 8, 9}}, 256));
  Write(dir / "architecture" / "open_only", Session(g, {}, 1));
  Write(dir / "architecture" / "lossless",
        Session(g, {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}, 1 << 20, UploadEncoding::kLossless));
  Write(dir / "architecture" / "progressive",
        Session(g, {{0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}}, 1 << 20, UploadEncoding::kProgressive));
  Write(dir / "architecture" / "int8", Session(g, {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}, 512, UploadEncoding::kInt8));
  const TensorMap input = {{"data", SeededInput(g.inputs[0].shape, 1)}};
  std::string whole, split;
  Frame(Step(1, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, input, {"prob"}, {}, true), &whole);
  Write(dir / "query_step" / "whole", whole);
  Frame(Step(2, {0, 1, 2, 3, 4, 5}, input, {}, {"pool", "side"}, false), &split);
  Frame(Step(2, {6, 7, 8, 9}, {}, {"prob"}, {}, true), &split);
  Write(dir / "query_step" / "two_steps", split);
  std::printf("seeds written under %s\n", dir.c_str());
  return 0;
}
