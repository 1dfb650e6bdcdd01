// exact: each weight's fp32 values, row-major, little-endian, as they are.
#include "codecs.h"

namespace ionn::codecs {
namespace {

class ExactCodec : public WeightCodec {
 public:
  UploadEncoding encoding() const override { return UploadEncoding::kExact; }
  uint64_t MaxEncodedBytes(const Layer& declared, UnitPhase) const override { return DeclaredValues(declared) * 4; }

  Result<std::string> Encode(const Layer& layer, UnitPhase phase, const CodecOptions&) const override {
    if (phase != UnitPhase::kWhole) return WrongPhase(encoding(), phase);
    IONN_RETURN_IF_ERROR(CheckHasData(layer));
    std::string out;
    out.reserve(DeclaredValues(layer) * 4);
    for (const auto& w : layer.weights) out.append(reinterpret_cast<const char*>(w.data.data()), w.data.size() * 4);
    return out;
  }

  Status Decode(const Layer& declared, UnitPhase phase, std::string_view bytes,
                std::vector<Weight>* weights) const override {
    if (phase != UnitPhase::kWhole) return WrongPhase(encoding(), phase);
    const uint64_t want = DeclaredValues(declared) * 4;
    if (bytes.size() != want) return SizeMismatch(bytes.size(), want, "the upload");
    *weights = ShapedLike(declared);
    const char* p = bytes.data();
    for (auto& w : *weights) {
      std::memcpy(w.data.data(), p, w.data.size() * 4);
      p += w.data.size() * 4;
    }
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<WeightCodec> MakeExactCodec() { return std::make_unique<ExactCodec>(); }

}  // namespace ionn::codecs
