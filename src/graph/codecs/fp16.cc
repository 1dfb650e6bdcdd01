// fp16: each value as an IEEE 754 half (binary16, rounded to nearest,
// ties to even), 2 bytes little-endian, row-major. Lossy for good: the
// server widens them to fp32. Values past the half range (|v| > 65504) and
// non-finite ones cannot be encoded; non-finite halves are refused.
#include <cmath>

#include "codecs.h"

namespace ionn::codecs {
namespace {

// IEEE binary32 -> binary16, round to nearest even; `v` finite, |v| <= 65504.
uint16_t ToHalf(float v) {
  const uint32_t b = FloatBits(v);
  const uint16_t sign = static_cast<uint16_t>((b >> 16) & 0x8000u);
  const uint32_t abs = b & 0x7fffffffu;
  if (abs < 0x33000001u) return sign;  // below half the smallest subnormal: +-0
  const int exp = static_cast<int>(abs >> 23) - 127;
  uint32_t mant = (abs & 0x7fffffu) | 0x800000u;  // with the implicit bit
  if (exp < -14) {  // a subnormal half: shift the mantissa down, round
    const int shift = -exp - 14 + 13;
    const uint32_t half = mant >> shift;
    const uint32_t rest = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    return static_cast<uint16_t>(sign | (half + (rest > mid || (rest == mid && (half & 1)))));
  }
  const uint32_t half = (static_cast<uint32_t>(exp + 15) << 10) | ((mant >> 13) & 0x3ffu);
  const uint32_t rest = mant & 0x1fffu;
  // A carry out of the mantissa raises the exponent, as it should.
  return static_cast<uint16_t>(sign | (half + (rest > 0x1000u || (rest == 0x1000u && (half & 1)))));
}

float FromHalf(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    const float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  return BitsFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

class Fp16Codec : public WeightCodec {
 public:
  UploadEncoding encoding() const override { return UploadEncoding::kFp16; }
  uint64_t MaxEncodedBytes(const Layer& declared, UnitPhase) const override { return DeclaredValues(declared) * 2; }

  Result<std::string> Encode(const Layer& layer, UnitPhase phase, const CodecOptions&) const override {
    if (phase != UnitPhase::kWhole) return WrongPhase(encoding(), phase);
    IONN_RETURN_IF_ERROR(CheckHasData(layer));
    std::string out;
    out.reserve(DeclaredValues(layer) * 2);
    for (const auto& w : layer.weights) {
      for (float v : w.data) {
        if (!std::isfinite(v) || std::fabs(v) > 65504.0f) {
          return Status::Unsupported("layer '" + layer.name + "' weight '" + w.name + "' holds " + std::to_string(v) +
                                     ", which fp16 cannot hold (use --upload-encoding exact or int8)");
        }
        Put<uint16_t>(&out, ToHalf(v));
      }
    }
    return out;
  }

  Status Decode(const Layer& declared, UnitPhase phase, std::string_view bytes,
                std::vector<Weight>* weights) const override {
    if (phase != UnitPhase::kWhole) return WrongPhase(encoding(), phase);
    const uint64_t want = DeclaredValues(declared) * 2;
    if (bytes.size() != want) return SizeMismatch(bytes.size(), want, "the upload");
    std::vector<Weight> out = ShapedLike(declared);
    const char* p = bytes.data();
    for (auto& w : out) {
      for (float& v : w.data) {
        const uint16_t h = Get<uint16_t>(p);
        p += 2;
        if ((h & 0x7c00u) == 0x7c00u) return Status::Invalid("weight '" + w.name + "' holds a non-finite half");
        v = FromHalf(h);
      }
    }
    *weights = std::move(out);
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<WeightCodec> MakeFp16Codec() { return std::make_unique<Fp16Codec>(); }

}  // namespace ionn::codecs
