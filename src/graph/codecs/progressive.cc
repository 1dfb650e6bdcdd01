// progressive: each fp32 value's high 16 bits (a bfloat16, truncated; the
// server widens it to fp32 with zero low bits and computes with it), then
// its low 16 bits, after which the server holds the bit-exact value. Both
// halves are 2 bytes per value, little-endian, row-major: no overhead.
#include "codecs.h"

namespace ionn::codecs {
namespace {

class ProgressiveCodec : public WeightCodec {
 public:
  UploadEncoding encoding() const override { return UploadEncoding::kProgressive; }
  uint64_t MaxEncodedBytes(const Layer& declared, UnitPhase) const override { return DeclaredValues(declared) * 2; }

  Result<std::string> Encode(const Layer& layer, UnitPhase phase, const CodecOptions&) const override {
    if (phase == UnitPhase::kWhole) return WrongPhase(encoding(), phase);
    IONN_RETURN_IF_ERROR(CheckHasData(layer));
    const int shift = phase == UnitPhase::kHigh ? 16 : 0;
    std::string out;
    out.reserve(DeclaredValues(layer) * 2);
    for (const auto& w : layer.weights) {
      for (float v : w.data) Put<uint16_t>(&out, static_cast<uint16_t>(FloatBits(v) >> shift));
    }
    return out;
  }

  Status Decode(const Layer& declared, UnitPhase phase, std::string_view bytes,
                std::vector<Weight>* weights) const override {
    if (phase == UnitPhase::kWhole) return WrongPhase(encoding(), phase);
    const uint64_t want = DeclaredValues(declared) * 2;
    if (bytes.size() != want) return SizeMismatch(bytes.size(), want, phase == UnitPhase::kHigh ? "the high half" : "the low half");
    const char* p = bytes.data();
    if (phase == UnitPhase::kHigh) {
      *weights = ShapedLike(declared);
      for (auto& w : *weights) {
        for (float& v : w.data) v = BitsFloat(uint32_t{Get<uint16_t>(p)} << 16), p += 2;
      }
      return Status::Ok();
    }
    // The low half completes a high half decoded before: same shapes, every
    // low 16 bits still zero.
    bool high_there = weights->size() == declared.weights.size();
    for (size_t i = 0; high_there && i < weights->size(); ++i) {
      high_there = (*weights)[i].data.size() == static_cast<size_t>(ElementCount(declared.weights[i].shape));
      for (size_t j = 0; high_there && j < (*weights)[i].data.size(); ++j) {
        high_there = (FloatBits((*weights)[i].data[j]) & 0xffffu) == 0;
      }
    }
    if (!high_there) return Status::Invalid("the low half of its weights arrived before their high half");
    for (auto& w : *weights) {
      for (float& v : w.data) v = BitsFloat(FloatBits(v) | Get<uint16_t>(p)), p += 2;
    }
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<WeightCodec> MakeProgressiveCodec() { return std::make_unique<ProgressiveCodec>(); }

}  // namespace ionn::codecs
