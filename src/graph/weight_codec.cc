#include "ionn/weight_codec.h"

#include <array>
#include <memory>

#include "codecs/codecs.h"

namespace ionn {

const std::vector<UploadEncoding>& UploadEncodings() {
  static const std::vector<UploadEncoding> all = {UploadEncoding::kExact, UploadEncoding::kLossless,
                                                  UploadEncoding::kProgressive, UploadEncoding::kFp16,
                                                  UploadEncoding::kInt8};
  return all;
}

const char* UploadEncodingName(UploadEncoding e) {
  switch (e) {
    case UploadEncoding::kExact: return "exact";
    case UploadEncoding::kLossless: return "lossless";
    case UploadEncoding::kProgressive: return "progressive";
    case UploadEncoding::kFp16: return "fp16";
    case UploadEncoding::kInt8: return "int8";
  }
  return "?";
}

Result<UploadEncoding> ParseUploadEncoding(const std::string& name) {
  std::string names;
  for (UploadEncoding e : UploadEncodings()) {
    if (name == UploadEncodingName(e)) return e;
    names += std::string(names.empty() ? "" : ", ") + UploadEncodingName(e);
  }
  return Status::Invalid("unknown upload encoding '" + name.substr(0, 64) + "' (one of " + names + ")");
}

const char* UnitPhaseName(UnitPhase p) {
  switch (p) {
    case UnitPhase::kWhole: return "whole";
    case UnitPhase::kHigh: return "high";
    case UnitPhase::kLow: return "low";
  }
  return "?";
}

std::vector<UnitPhase> EncodingPhases(UploadEncoding e) {
  if (e == UploadEncoding::kProgressive) return {UnitPhase::kHigh, UnitPhase::kLow};
  return {UnitPhase::kWhole};
}

bool IsLossyForGood(UploadEncoding e) { return e == UploadEncoding::kFp16 || e == UploadEncoding::kInt8; }

bool ExactAfter(UploadEncoding e, UnitPhase phase) {
  if (IsLossyForGood(e)) return false;
  return phase != UnitPhase::kHigh;
}

const WeightCodec& CodecFor(UploadEncoding e) {
  static const std::array<std::unique_ptr<WeightCodec>, 5> codecs = {
      codecs::MakeExactCodec(), codecs::MakeLosslessCodec(), codecs::MakeProgressiveCodec(), codecs::MakeFp16Codec(),
      codecs::MakeInt8Codec()};
  for (const auto& c : codecs) {
    if (c->encoding() == e) return *c;
  }
  return *codecs[0];  // unreachable: every enumerator has its codec (weight_codec_test)
}

Result<std::vector<Weight>> WeightsAsDecoded(const Layer& layer, UploadEncoding encoding, UnitPhase phase,
                                             const CodecOptions& options) {
  const WeightCodec& codec = CodecFor(encoding);
  std::vector<Weight> weights;
  for (UnitPhase p : EncodingPhases(encoding)) {
    auto bytes = codec.Encode(layer, p, options);
    if (!bytes.ok()) return bytes.status();
    Status s = codec.Decode(layer, p, *bytes, &weights);
    if (!s.ok()) return s.WithContext("layer '" + layer.name + "'");
    if (p == phase) break;
  }
  return weights;
}

Result<Graph> GraphAsDecoded(const Graph& graph, UploadEncoding encoding, UnitPhase phase,
                             const CodecOptions& options) {
  Graph out = graph;
  for (Layer& l : out.layers) {
    if (l.weights.empty()) continue;
    auto w = WeightsAsDecoded(l, encoding, phase, options);
    if (!w.ok()) return w.status();
    l.weights = std::move(*w);
  }
  return out;
}

Result<std::vector<int64_t>> EncodedLayerBytes(const Graph& graph, UploadEncoding encoding,
                                               const CodecOptions& options) {
  const WeightCodec& codec = CodecFor(encoding);
  std::vector<int64_t> bytes;
  bytes.reserve(graph.layers.size());
  for (const Layer& l : graph.layers) {
    int64_t n = 0;
    if (encoding != UploadEncoding::kLossless) {
      for (UnitPhase p : EncodingPhases(encoding)) n += static_cast<int64_t>(codec.MaxEncodedBytes(l, p));  // fixed by the shapes
    } else if (!l.weights.empty()) {  // Encode refuses a layer without its weight data
      auto e = codec.Encode(l, UnitPhase::kWhole, options);
      if (!e.ok()) return e.status();
      n = static_cast<int64_t>(e->size());
    }
    bytes.push_back(n);
  }
  return bytes;
}

}  // namespace ionn
