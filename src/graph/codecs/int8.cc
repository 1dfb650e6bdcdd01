// int8: each weight of rank >= 2, per output channel (its dimension 0):
// that many fp32 scales, then its values as int8 in [-127, 127],
// row-major (value = q * scale of its channel, scale = the channel's
// largest magnitude / 127, 1 for an all-zero channel or one whose scale
// would underflow). Weights of rank < 2
// (biases, normalization vectors) stay fp32. Lossy for good: the server
// computes in fp32 with the dequantized values.
#include <algorithm>
#include <cmath>

#include "codecs.h"

namespace ionn::codecs {
namespace {

bool Quantized(const Shape& shape) { return shape.size() >= 2 && shape[0] > 0; }

uint64_t EncodedBytes(const Shape& shape) {
  const uint64_t n = static_cast<uint64_t>(ElementCount(shape));
  return Quantized(shape) ? static_cast<uint64_t>(shape[0]) * 4 + n : n * 4;
}

class Int8Codec : public WeightCodec {
 public:
  UploadEncoding encoding() const override { return UploadEncoding::kInt8; }
  uint64_t MaxEncodedBytes(const Layer& declared, UnitPhase) const override {
    uint64_t n = 0;
    for (const auto& w : declared.weights) n += EncodedBytes(w.shape);
    return n;
  }

  Result<std::string> Encode(const Layer& layer, UnitPhase phase, const CodecOptions&) const override {
    if (phase != UnitPhase::kWhole) return WrongPhase(encoding(), phase);
    IONN_RETURN_IF_ERROR(CheckHasData(layer));
    std::string out;
    out.reserve(MaxEncodedBytes(layer, phase));
    for (const auto& w : layer.weights) {
      for (float v : w.data) {
        if (!std::isfinite(v)) {
          return Status::Unsupported("layer '" + layer.name + "' weight '" + w.name +
                                     "' holds a non-finite value, which int8 cannot hold");
        }
      }
      if (!Quantized(w.shape)) {
        out.append(reinterpret_cast<const char*>(w.data.data()), w.data.size() * 4);
        continue;
      }
      const int64_t channels = w.shape[0], per = static_cast<int64_t>(w.data.size()) / channels;
      std::vector<float> scales(channels);
      for (int64_t c = 0; c < channels; ++c) {
        float largest = 0;
        for (int64_t i = 0; i < per; ++i) largest = std::max(largest, std::fabs(w.data[c * per + i]));
        scales[c] = largest / 127.0f;
        if (!(scales[c] > 0)) scales[c] = 1.0f;  // all zero, or so small the scale underflows: zeros
        Put<float>(&out, scales[c]);
      }
      for (int64_t c = 0; c < channels; ++c) {
        for (int64_t i = 0; i < per; ++i) {
          const float q = std::nearbyint(w.data[c * per + i] / scales[c]);
          out.push_back(static_cast<char>(static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f))));
        }
      }
    }
    return out;
  }

  Status Decode(const Layer& declared, UnitPhase phase, std::string_view bytes,
                std::vector<Weight>* weights) const override {
    if (phase != UnitPhase::kWhole) return WrongPhase(encoding(), phase);
    const uint64_t want = MaxEncodedBytes(declared, phase);
    if (bytes.size() != want) return SizeMismatch(bytes.size(), want, "the upload");
    std::vector<Weight> out = ShapedLike(declared);
    const char* p = bytes.data();
    for (auto& w : out) {
      if (!Quantized(w.shape)) {
        std::memcpy(w.data.data(), p, w.data.size() * 4);
        p += w.data.size() * 4;
        continue;
      }
      const int64_t channels = w.shape[0], per = static_cast<int64_t>(w.data.size()) / channels;
      const char* values = p + channels * 4;
      for (int64_t c = 0; c < channels; ++c) {
        const float scale = Get<float>(p + c * 4);
        if (!std::isfinite(scale) || !(scale > 0)) {
          return Status::Invalid("weight '" + w.name + "' channel " + std::to_string(c) + " has scale " +
                                 std::to_string(scale) + " (needs a finite one above 0)");
        }
        for (int64_t i = 0; i < per; ++i) {
          const int8_t q = static_cast<int8_t>(values[c * per + i]);
          if (q == -128) return Status::Invalid("weight '" + w.name + "' holds -128 (symmetric int8 is -127..127)");
          w.data[c * per + i] = static_cast<float>(q) * scale;
        }
      }
      p = values + channels * per;
    }
    *weights = std::move(out);
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<WeightCodec> MakeInt8Codec() { return std::make_unique<Int8Codec>(); }

}  // namespace ionn::codecs
