// Internal to the graph part: the codecs weight_codec.cc lists, and what
// they share.
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ionn/weight_codec.h"

namespace ionn::codecs {

std::unique_ptr<WeightCodec> MakeExactCodec();
std::unique_ptr<WeightCodec> MakeLosslessCodec();
std::unique_ptr<WeightCodec> MakeProgressiveCodec();
std::unique_ptr<WeightCodec> MakeFp16Codec();
std::unique_ptr<WeightCodec> MakeInt8Codec();

// The values of all of a layer's weights (declared shapes).
inline uint64_t DeclaredValues(const Layer& declared) {
  uint64_t n = 0;
  for (const auto& w : declared.weights) n += static_cast<uint64_t>(ElementCount(w.shape));
  return n;
}

// Fresh weights shaped as `declared`, zero-filled.
inline std::vector<Weight> ShapedLike(const Layer& declared) {
  std::vector<Weight> out;
  out.reserve(declared.weights.size());
  for (const auto& d : declared.weights) out.push_back({d.name, d.shape, std::vector<float>(ElementCount(d.shape))});
  return out;
}

inline uint32_t FloatBits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}
inline float BitsFloat(uint32_t b) {
  float v;
  std::memcpy(&v, &b, 4);
  return v;
}

// Encode's precondition: every weight holds its data (not shapes only).
inline Status CheckHasData(const Layer& layer) {
  for (const auto& w : layer.weights) {
    if (w.data.size() != static_cast<size_t>(ElementCount(w.shape))) {
      return Status::Invalid("layer '" + layer.name + "' weight '" + w.name + "' holds " +
                             std::to_string(w.data.size()) + " values, its shape " + ShapeToString(w.shape) +
                             " needs " + std::to_string(ElementCount(w.shape)) + " (a model loaded without weights?)");
    }
  }
  return Status::Ok();
}

inline Status WrongPhase(UploadEncoding e, UnitPhase p) {
  return Status::Invalid(std::string("encoding '") + UploadEncodingName(e) + "' has no '" + UnitPhaseName(p) +
                         "' phase");
}

inline Status SizeMismatch(uint64_t got, uint64_t want, const char* what) {
  return Status::Invalid(std::string(what) + " holds " + std::to_string(got) + " bytes, the declared layer needs " +
                         std::to_string(want));
}

// Appends / reads little-endian fixed-size values.
template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
T Get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace ionn::codecs
