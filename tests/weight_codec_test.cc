// The upload encodings (include/ionn/weight_codec.h): exact round trips,
// the lossy ones' error bounds, and every bad input the server can get.
#include "ionn/weight_codec.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <cmath>
#include <cstring>
#include <random>

namespace ionn {
namespace {

Layer MakeLayer(int64_t out, int64_t in, uint32_t seed, float spread = 0.05f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0, spread);
  Layer l;
  l.name = "fc";
  l.kind = LayerKind::kFc;
  Weight w{"W", {out, in}, std::vector<float>(out * in)};
  for (float& v : w.data) v = normal(rng);
  Weight b{"B", {out}, std::vector<float>(out)};
  for (float& v : b.data) v = normal(rng);
  l.weights = {w, b};
  return l;
}

uint32_t Bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

bool BitEqual(const std::vector<Weight>& a, const std::vector<Weight>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].shape != b[i].shape || a[i].data.size() != b[i].data.size()) return false;
    if (std::memcmp(a[i].data.data(), b[i].data.data(), a[i].data.size() * 4) != 0) return false;
  }
  return true;
}

TEST(WeightCodec, EveryEncodingHasItsCodecAndName) {
  for (UploadEncoding e : UploadEncodings()) {
    EXPECT_EQ(CodecFor(e).encoding(), e);
    auto parsed = ParseUploadEncoding(UploadEncodingName(e));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, e);
  }
  auto bad = ParseUploadEncoding("zip");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("exact, lossless, progressive, fp16, int8"), std::string::npos);
}

TEST(WeightCodec, ExactAndLosslessRoundTripBitExact) {
  // 300 x 700 values: several lossless frames, the last one short.
  Layer l = MakeLayer(300, 700, 1);
  l.weights[0].data[5] = -0.0f;
  l.weights[0].data[6] = std::numeric_limits<float>::denorm_min();
  l.weights[0].data[7] = std::numeric_limits<float>::quiet_NaN();
  l.weights[0].data[8] = std::numeric_limits<float>::infinity();
  for (UploadEncoding e : {UploadEncoding::kExact, UploadEncoding::kLossless, UploadEncoding::kProgressive}) {
    auto w = WeightsAsDecoded(l, e, EncodingPhases(e).back());
    ASSERT_TRUE(w.ok()) << UploadEncodingName(e) << ": " << w.status().message();
    EXPECT_TRUE(BitEqual(*w, l.weights)) << UploadEncodingName(e);
  }
}

TEST(WeightCodec, LosslessCompressesNormalWeightsAndSkipsWhereItDoesNotPay) {
  const Layer l = MakeLayer(256, 1024, 2);
  const uint64_t raw = 256 * 1024 * 4 + 256 * 4;
  auto packed = CodecFor(UploadEncoding::kLossless).Encode(l, UnitPhase::kWhole, {});
  ASSERT_TRUE(packed.ok());
  EXPECT_LT(packed->size(), raw * 0.95);  // sign and exponent planes compress
  EXPECT_LE(packed->size(), CodecFor(UploadEncoding::kLossless).MaxEncodedBytes(l, UnitPhase::kWhole));
  // Uniformly random bits do not compress: every frame goes raw.
  Layer noise = l;
  std::mt19937 rng(3);
  for (auto& w : noise.weights) {
    for (float& v : w.data) {
      uint32_t b = rng();
      std::memcpy(&v, &b, 4);
    }
  }
  auto raw_frames = CodecFor(UploadEncoding::kLossless).Encode(noise, UnitPhase::kWhole, {});
  ASSERT_TRUE(raw_frames.ok());
  EXPECT_EQ(raw_frames->size(), CodecFor(UploadEncoding::kLossless).MaxEncodedBytes(noise, UnitPhase::kWhole));
  // On a link fast enough that encoding costs more than it saves, nothing is compressed either.
  CodecOptions fast;
  fast.uplink_bytes_per_ms = 1e9;
  auto fast_frames = CodecFor(UploadEncoding::kLossless).Encode(l, UnitPhase::kWhole, fast);
  ASSERT_TRUE(fast_frames.ok());
  EXPECT_EQ(fast_frames->size(), CodecFor(UploadEncoding::kLossless).MaxEncodedBytes(l, UnitPhase::kWhole));
}

TEST(WeightCodec, ProgressiveHighHalfIsTruncatedBfloat16AndLowHalfMakesItExact) {
  const Layer l = MakeLayer(10, 20, 4);
  const WeightCodec& codec = CodecFor(UploadEncoding::kProgressive);
  auto high = codec.Encode(l, UnitPhase::kHigh, {});
  auto low = codec.Encode(l, UnitPhase::kLow, {});
  ASSERT_TRUE(high.ok() && low.ok());
  EXPECT_EQ(high->size() + low->size(), (200 + 10) * 4u);  // no overhead
  std::vector<Weight> w;
  ASSERT_TRUE(codec.Decode(l, UnitPhase::kHigh, *high, &w).ok());
  for (size_t i = 0; i < w.size(); ++i) {
    for (size_t j = 0; j < w[i].data.size(); ++j) {
      EXPECT_EQ(Bits(w[i].data[j]), Bits(l.weights[i].data[j]) & 0xffff0000u);
    }
  }
  ASSERT_TRUE(codec.Decode(l, UnitPhase::kLow, *low, &w).ok());
  EXPECT_TRUE(BitEqual(w, l.weights));
  // A low half twice, or without its high half, is refused.
  EXPECT_FALSE(codec.Decode(l, UnitPhase::kLow, *low, &w).ok());
  std::vector<Weight> none;
  Status s = codec.Decode(l, UnitPhase::kLow, *low, &none);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("before their high half"), std::string::npos);
  EXPECT_FALSE(codec.Decode(l, UnitPhase::kWhole, *low, &w).ok());
}

TEST(WeightCodec, Fp16RoundsToNearestEven) {
  Layer l;
  l.name = "c";
  const std::vector<float> values = {1.0f, -2.0f, 65504.0f, 0.0f, -0.0f, std::ldexp(1.0f, -24), std::ldexp(1.0f, -25),
                                     std::ldexp(3.0f, -25), 1.0f + std::ldexp(1.0f, -11), 1.0f + std::ldexp(3.0f, -11),
                                     std::ldexp(1.0f, -14), 0.1f};
  const std::vector<float> expect = {1.0f, -2.0f, 65504.0f, 0.0f, -0.0f, std::ldexp(1.0f, -24), 0.0f,
                                     std::ldexp(1.0f, -23), 1.0f, 1.0f + std::ldexp(1.0f, -9),
                                     std::ldexp(1.0f, -14), 0.0999755859375f};
  l.weights = {{"W", {static_cast<int64_t>(values.size())}, values}};
  auto w = WeightsAsDecoded(l, UploadEncoding::kFp16, UnitPhase::kWhole);
  ASSERT_TRUE(w.ok());
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(Bits((*w)[0].data[i]), Bits(expect[i])) << values[i];
  // Every half is read back as the nearest, within half a unit in the last place.
  const Layer big = MakeLayer(64, 64, 5, 10.0f);
  auto wb = WeightsAsDecoded(big, UploadEncoding::kFp16, UnitPhase::kWhole);
  ASSERT_TRUE(wb.ok());
  for (size_t j = 0; j < big.weights[0].data.size(); ++j) {
    const float v = big.weights[0].data[j];
    EXPECT_LE(std::fabs((*wb)[0].data[j] - v), std::max(std::fabs(v) * std::ldexp(1.0f, -11), std::ldexp(1.0f, -25)));
  }
  l.weights[0].data[0] = 70000.0f;
  auto over = CodecFor(UploadEncoding::kFp16).Encode(l, UnitPhase::kWhole, {});
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("fp16 cannot hold"), std::string::npos);
}

TEST(WeightCodec, Int8IsWithinHalfAScalePerChannelAndKeepsVectorsExact) {
  Layer l = MakeLayer(16, 50, 6);
  std::fill(l.weights[0].data.begin() + 50, l.weights[0].data.begin() + 100, 0.0f);  // an all-zero channel
  auto w = WeightsAsDecoded(l, UploadEncoding::kInt8, UnitPhase::kWhole);
  ASSERT_TRUE(w.ok());
  for (int64_t c = 0; c < 16; ++c) {
    float largest = 0;
    for (int i = 0; i < 50; ++i) largest = std::max(largest, std::fabs(l.weights[0].data[c * 50 + i]));
    for (int i = 0; i < 50; ++i) {
      EXPECT_LE(std::fabs((*w)[0].data[c * 50 + i] - l.weights[0].data[c * 50 + i]), largest / 127 / 2 * 1.0001f);
    }
  }
  EXPECT_TRUE(std::all_of((*w)[0].data.begin() + 50, (*w)[0].data.begin() + 100, [](float v) { return v == 0; }));
  EXPECT_EQ(std::memcmp((*w)[1].data.data(), l.weights[1].data.data(), 16 * 4), 0);  // the bias stays fp32
  EXPECT_EQ(CodecFor(UploadEncoding::kInt8).MaxEncodedBytes(l, UnitPhase::kWhole), 16u * 4 + 800 + 16 * 4);
}

TEST(WeightCodec, BadInputIsAnErrorNeverACrash) {
  const Layer l = MakeLayer(8, 300, 7);
  for (UploadEncoding e : UploadEncodings()) {
    const WeightCodec& codec = CodecFor(e);
    for (UnitPhase p : EncodingPhases(e)) {
      auto good = codec.Encode(l, p, {});
      ASSERT_TRUE(good.ok());
      std::vector<Weight> w;
      if (p == UnitPhase::kLow) {
        ASSERT_TRUE(codec.Decode(l, UnitPhase::kHigh, *codec.Encode(l, UnitPhase::kHigh, {}), &w).ok());
      }
      const std::vector<Weight> before = w;
      // One byte short, one byte more.
      EXPECT_FALSE(codec.Decode(l, p, std::string_view(*good).substr(0, good->size() - 1), &w).ok()) << UploadEncodingName(e);
      EXPECT_FALSE(codec.Decode(l, p, *good + "x", &w).ok()) << UploadEncodingName(e);
      EXPECT_TRUE(BitEqual(w, before)) << "a refused decode leaves the weights as they were";
      // Random bytes of every length up to the encoded size: no crash, and
      // what decodes has the declared shapes.
      std::mt19937 rng(static_cast<uint32_t>(e) * 10 + static_cast<uint32_t>(p));
      for (int trial = 0; trial < 200; ++trial) {
        std::string junk(rng() % (good->size() + 2), '\0');
        for (char& c : junk) c = static_cast<char>(rng());
        std::vector<Weight> out = before;
        if (codec.Decode(l, p, junk, &out).ok()) {
          ASSERT_EQ(out.size(), l.weights.size());
          for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i].data.size(), l.weights[i].data.size());
        }
      }
    }
  }
}

TEST(WeightCodec, LosslessRefusesBombsAndBadFrames) {
  const Layer l = MakeLayer(4, 100, 8);  // 404 values: one frame
  const WeightCodec& codec = CodecFor(UploadEncoding::kLossless);
  auto frame = [](uint8_t mode, uint32_t count, const std::string& payload, int64_t declared = -1) {
    std::string f(1, static_cast<char>(mode));
    f.append(reinterpret_cast<const char*>(&count), 4);
    const uint32_t size = declared < 0 ? static_cast<uint32_t>(payload.size()) : static_cast<uint32_t>(declared);
    f.append(reinterpret_cast<const char*>(&size), 4);
    return f + payload;
  };
  std::vector<Weight> w;
  // A zstd frame that expands to 8 MiB for a frame of 404 values.
  const std::string zeros(8 << 20, '\0');
  std::string bomb(ZSTD_compressBound(zeros.size()), '\0');
  bomb.resize(ZSTD_compress(bomb.data(), bomb.size(), zeros.data(), zeros.size(), 19));
  ASSERT_LT(bomb.size(), 404u * 4);
  Status s = codec.Decode(l, UnitPhase::kWhole, frame(1, 404, bomb), &w);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("does not decompress to its 1616 bytes"), std::string::npos) << s.message();
  // A frame that decompresses short.
  const std::string little(1000, '\0');
  std::string small(ZSTD_compressBound(little.size()), '\0');
  small.resize(ZSTD_compress(small.data(), small.size(), little.data(), little.size(), 1));
  EXPECT_FALSE(codec.Decode(l, UnitPhase::kWhole, frame(1, 404, small), &w).ok());
  // Headers that do not fit the layer.
  EXPECT_FALSE(codec.Decode(l, UnitPhase::kWhole, frame(2, 404, std::string(1616, 'a')), &w).ok());  // mode
  EXPECT_FALSE(codec.Decode(l, UnitPhase::kWhole, frame(0, 405, std::string(1620, 'a')), &w).ok());  // too many values
  EXPECT_FALSE(codec.Decode(l, UnitPhase::kWhole, frame(0, 0, ""), &w).ok());                       // empty frame
  EXPECT_FALSE(codec.Decode(l, UnitPhase::kWhole, frame(0, 404, std::string(1616, 'a'), 4000), &w).ok());  // payload past the end
  EXPECT_FALSE(codec.Decode(l, UnitPhase::kWhole, frame(0, 400, std::string(1600, 'a')), &w).ok());  // values short
  EXPECT_FALSE(codec.Decode(l, UnitPhase::kWhole, std::string(5, '\0'), &w).ok());                   // a cut header
  EXPECT_TRUE(codec.Decode(l, UnitPhase::kWhole, frame(0, 404, std::string(1616, 'a')), &w).ok());
  // More frames than the encoder cuts pass the size bound before any is read.
  EXPECT_FALSE(codec.Decode(l, UnitPhase::kWhole, frame(0, 400, std::string(1600, 'a')) + frame(0, 4, std::string(16, 'b')), &w).ok());
}

TEST(WeightCodec, Int8RefusesBadScalesAndMinus128) {
  Layer l = MakeLayer(2, 3, 9);
  l.weights.pop_back();
  const WeightCodec& codec = CodecFor(UploadEncoding::kInt8);
  auto good = codec.Encode(l, UnitPhase::kWhole, {});
  ASSERT_TRUE(good.ok());
  ASSERT_EQ(good->size(), 2u * 4 + 6);
  std::vector<Weight> w;
  for (float scale : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    std::string bad = *good;
    std::memcpy(bad.data() + 4, &scale, 4);
    Status s = codec.Decode(l, UnitPhase::kWhole, bad, &w);
    ASSERT_FALSE(s.ok()) << scale;
    EXPECT_NE(s.message().find("channel 1 has scale"), std::string::npos) << s.message();
  }
  std::string bad = *good;
  bad[9] = static_cast<char>(-128);
  EXPECT_FALSE(codec.Decode(l, UnitPhase::kWhole, bad, &w).ok());
}

TEST(WeightCodec, Int8ChannelsTooSmallForAScaleSendZeros) {
  Layer l = MakeLayer(2, 4, 11);
  l.weights.pop_back();
  for (int i = 0; i < 4; ++i) l.weights[0].data[i] = std::numeric_limits<float>::denorm_min();  // channel 0
  auto w = WeightsAsDecoded(l, UploadEncoding::kInt8, UnitPhase::kWhole);
  ASSERT_TRUE(w.ok()) << w.status().message();
  for (int i = 0; i < 4; ++i) EXPECT_EQ((*w)[0].data[i], 0.0f);
}

TEST(WeightCodec, EncodingAModelWithoutItsWeightsIsAnError) {
  Layer l = MakeLayer(4, 1000, 12);
  l.weights[0].data.clear();  // shapes only, as a model loaded without weights
  for (UploadEncoding e : UploadEncodings()) {
    auto bytes = CodecFor(e).Encode(l, EncodingPhases(e)[0], {});
    ASSERT_FALSE(bytes.ok()) << UploadEncodingName(e);
    EXPECT_NE(bytes.status().message().find("weight 'W' holds 0 values"), std::string::npos) << bytes.status().message();
  }
}

TEST(WeightCodec, EncodedLayerBytesArePerLayerAndExactIsFourPerValue) {
  Graph g;
  g.layers = {MakeLayer(8, 1000, 10), Layer{}};
  g.layers[1].name = "relu";
  for (UploadEncoding e : UploadEncodings()) {
    auto bytes = EncodedLayerBytes(g, e);
    ASSERT_TRUE(bytes.ok());
    ASSERT_EQ(bytes->size(), 2u);
    EXPECT_EQ((*bytes)[1], 0);
    const int64_t raw = 8008 * 4;
    switch (e) {
      case UploadEncoding::kExact:
      case UploadEncoding::kProgressive: EXPECT_EQ((*bytes)[0], raw); break;
      case UploadEncoding::kLossless: EXPECT_LT((*bytes)[0], raw); break;
      case UploadEncoding::kFp16: EXPECT_EQ((*bytes)[0], raw / 2); break;
      case UploadEncoding::kInt8: EXPECT_EQ((*bytes)[0], 8 * 4 + 8000 + 8 * 4); break;
    }
  }
}

}  // namespace
}  // namespace ionn
