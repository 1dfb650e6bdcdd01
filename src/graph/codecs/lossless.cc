// lossless: the exact fp32 bytes, fewer of them. A layer's values (its
// weights one after another, row-major) are cut in frames of up to
// kFrameValues; each frame is
//   u8 mode, u32 values, u32 payload bytes, payload
// (little-endian) where mode 0 is the raw fp32 bytes and mode 1 a zstd
// frame of the values' byte planes (every value's byte 0, then every
// byte 1, ...; sign and exponent bytes compress well). A frame is
// compressed only where that pays (CodecOptions). The decoder checks every
// header against the declared layer before it reads the payload and
// decompresses into a buffer of exactly the frame's size, so a zstd bomb
// or a truncated frame is an error, not an allocation.
#include <zstd.h>

#include <algorithm>

#include "codecs.h"

namespace ionn::codecs {
namespace {

constexpr uint64_t kFrameValues = 64 * 1024;
constexpr uint64_t kHeaderBytes = 9;
constexpr int kZstdLevel = 1;

// Walks a layer's values across its weights.
template <typename WeightVec>
class ValueCursor {
 public:
  explicit ValueCursor(WeightVec& weights) : weights_(weights) {}
  // Copies the next n values to / from `buffer`.
  void Read(float* buffer, uint64_t n) { Walk(buffer, n, true); }
  void Write(const float* buffer, uint64_t n) { Walk(const_cast<float*>(buffer), n, false); }

 private:
  void Walk(float* buffer, uint64_t n, bool read) {
    while (n > 0) {
      while (at_ >= weights_[w_].data.size()) ++w_, at_ = 0;
      const uint64_t take = std::min<uint64_t>(n, weights_[w_].data.size() - at_);
      if (read) {
        std::memcpy(buffer, weights_[w_].data.data() + at_, take * 4);
      } else {
        std::memcpy(const_cast<float*>(weights_[w_].data.data()) + at_, buffer, take * 4);
      }
      buffer += take, n -= take, at_ += take;
    }
  }
  WeightVec& weights_;
  size_t w_ = 0;
  uint64_t at_ = 0;
};

class LosslessCodec : public WeightCodec {
 public:
  UploadEncoding encoding() const override { return UploadEncoding::kLossless; }
  uint64_t MaxEncodedBytes(const Layer& declared, UnitPhase) const override {
    const uint64_t n = DeclaredValues(declared);
    return n * 4 + (n + kFrameValues - 1) / kFrameValues * kHeaderBytes;
  }

  Result<std::string> Encode(const Layer& layer, UnitPhase phase, const CodecOptions& options) const override {
    if (phase != UnitPhase::kWhole) return WrongPhase(encoding(), phase);
    IONN_RETURN_IF_ERROR(CheckHasData(layer));
    const uint64_t n = DeclaredValues(layer);
    std::string out;
    std::vector<float> values(std::min(n, kFrameValues));
    std::string planes(values.size() * 4, '\0');
    std::string packed(ZSTD_compressBound(planes.size()), '\0');
    ZSTD_CCtx* ctx = ZSTD_createCCtx();
    ValueCursor<const std::vector<Weight>> cursor(layer.weights);
    for (uint64_t done = 0; done < n;) {
      const uint64_t count = std::min(kFrameValues, n - done), raw = count * 4;
      cursor.Read(values.data(), count);
      const auto* bytes = reinterpret_cast<const unsigned char*>(values.data());
      for (uint64_t i = 0; i < count; ++i) {
        for (int b = 0; b < 4; ++b) planes[b * count + i] = static_cast<char>(bytes[i * 4 + b]);
      }
      const size_t size = ZSTD_compressCCtx(ctx, packed.data(), packed.size(), planes.data(), raw, kZstdLevel);
      const bool pays = !ZSTD_isError(size) && Pays(size, raw, options);
      Put<uint8_t>(&out, pays ? 1 : 0);
      Put<uint32_t>(&out, static_cast<uint32_t>(count));
      Put<uint32_t>(&out, static_cast<uint32_t>(pays ? size : raw));
      if (pays) {
        out.append(packed.data(), size);
      } else {
        out.append(reinterpret_cast<const char*>(values.data()), raw);
      }
      done += count;
    }
    ZSTD_freeCCtx(ctx);
    return out;
  }

  Status Decode(const Layer& declared, UnitPhase phase, std::string_view bytes,
                std::vector<Weight>* weights) const override {
    if (phase != UnitPhase::kWhole) return WrongPhase(encoding(), phase);
    const uint64_t n = DeclaredValues(declared);
    if (bytes.size() > MaxEncodedBytes(declared, phase)) {
      return SizeMismatch(bytes.size(), MaxEncodedBytes(declared, phase), "the upload (at most)");
    }
    std::vector<Weight> out = ShapedLike(declared);
    ValueCursor<std::vector<Weight>> cursor(out);
    std::vector<float> values(std::min(n, kFrameValues));
    std::string planes(values.size() * 4, '\0');
    ZSTD_DCtx* ctx = ZSTD_createDCtx();
    Status status;
    uint64_t done = 0, at = 0;
    while (status.ok() && at < bytes.size()) {
      if (bytes.size() - at < kHeaderBytes) {
        status = Status::Invalid("frame at byte " + std::to_string(at) + " is cut short");
        break;
      }
      const uint8_t mode = Get<uint8_t>(bytes.data() + at);
      const uint64_t count = Get<uint32_t>(bytes.data() + at + 1), size = Get<uint32_t>(bytes.data() + at + 5);
      const std::string where = "frame at byte " + std::to_string(at);
      at += kHeaderBytes;
      if (mode > 1) {
        status = Status::Invalid(where + " has mode " + std::to_string(mode) + " (0 raw, 1 zstd)");
      } else if (count == 0 || count > kFrameValues || count > n - done) {
        status = Status::Invalid(where + " holds " + std::to_string(count) + " values; " + std::to_string(n - done) +
                                 " of the declared layer are left (at most " + std::to_string(kFrameValues) +
                                 " a frame)");
      } else if (size > bytes.size() - at || (mode == 0 && size != count * 4) || (mode == 1 && size > count * 4)) {
        status = Status::Invalid(where + " declares " + std::to_string(size) + " payload bytes for " +
                                 std::to_string(count) + " values, " + std::to_string(bytes.size() - at) +
                                 " are left");
      } else if (mode == 0) {
        std::memcpy(values.data(), bytes.data() + at, size);
      } else {
        const size_t got = ZSTD_decompressDCtx(ctx, planes.data(), count * 4, bytes.data() + at, size);
        if (ZSTD_isError(got) || got != count * 4) {
          status = Status::Invalid(where + " does not decompress to its " + std::to_string(count * 4) + " bytes" +
                                   (ZSTD_isError(got) ? std::string(" (") + ZSTD_getErrorName(got) + ")" : ""));
        } else {
          auto* dst = reinterpret_cast<unsigned char*>(values.data());
          for (uint64_t i = 0; i < count; ++i) {
            for (int b = 0; b < 4; ++b) dst[i * 4 + b] = static_cast<unsigned char>(planes[b * count + i]);
          }
        }
      }
      if (!status.ok()) break;
      cursor.Write(values.data(), count);
      done += count, at += size;
    }
    ZSTD_freeDCtx(ctx);
    if (status.ok() && done != n) {
      status = Status::Invalid("the upload holds " + std::to_string(done) + " values, the declared layer " +
                               std::to_string(n));
    }
    if (!status.ok()) return status;
    *weights = std::move(out);
    return Status::Ok();
  }

 private:
  static bool Pays(uint64_t compressed, uint64_t raw, const CodecOptions& options) {
    if (options.uplink_bytes_per_ms <= 0) return compressed + kHeaderBytes < raw;
    const double encode_ms = raw / (options.encode_mb_per_s * 1000.0);
    return compressed / options.uplink_bytes_per_ms + encode_ms < raw / options.uplink_bytes_per_ms;
  }
};

}  // namespace

std::unique_ptr<WeightCodec> MakeLosslessCodec() { return std::make_unique<LosslessCodec>(); }

}  // namespace ionn::codecs
