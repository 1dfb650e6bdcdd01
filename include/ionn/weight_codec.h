// How a layer's fp32 weights travel from the client to the server
// (DESIGN.md, "Upload unit"): one codec per upload encoding, which
// encodes a layer's weights on the client, bounds their encoded size for
// the server before it has read a byte, and decodes them there, checked.
// Adding an encoding is one codec file under src/graph/codecs/ and a line
// in the list in weight_codec.cc.
//
// Codecs are stateless and safe to share between threads. Sizes are in
// bytes. Weights are those of one layer, in the layer's order, each
// row-major; "exact" means bit-equal to the client's fp32 weights.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ionn/graph.h"
#include "ionn/status.h"

namespace ionn {

enum class UploadEncoding {
  kExact,        // fp32 as is (the paper; the default)
  kLossless,     // fp32 split into byte planes, zstd per chunk where it pays: exact bytes, fewer of them
  kProgressive,  // the high 16 bits of each weight first (bfloat16, widened), then the low 16 bits: exact after both
  kFp16,         // IEEE half precision: lossy for good
  kInt8,         // symmetric per output channel (dimension 0), one fp32 scale each: lossy for good
};

// What part of a layer's weights an upload unit carries.
enum class UnitPhase : uint8_t {
  kWhole,  // all of them, in the encoding
  kHigh,   // progressive: the high half; the layer runs, approximately
  kLow,    // progressive: the low half; the layer is exact from then on
};

// In the order tables list them ("exact" first).
const std::vector<UploadEncoding>& UploadEncodings();
const char* UploadEncodingName(UploadEncoding encoding);
// One of the names above; the error lists them.
Result<UploadEncoding> ParseUploadEncoding(const std::string& name);
const char* UnitPhaseName(UnitPhase phase);  // "whole", "high", "low"
// The phases each layer is sent in, in order: {kWhole}, or {kHigh, kLow}.
std::vector<UnitPhase> EncodingPhases(UploadEncoding encoding);
// Whether the server computes with the exact weights once `phase` of a
// layer has arrived in `encoding`.
bool ExactAfter(UploadEncoding encoding, UnitPhase phase);
// fp16 and int8: the weights are never exact.
bool IsLossyForGood(UploadEncoding encoding);

struct CodecOptions {
  // lossless: a chunk is compressed only where that pays at this uplink
  // rate (bytes per ms): its encode time at `encode_mb_per_s` plus its
  // compressed transfer below its raw transfer. <= 0: whenever smaller.
  // Deterministic: the encode time is this estimate, not a clock.
  double uplink_bytes_per_ms = 0;
  double encode_mb_per_s = 150;  // MB = 1e6 bytes; BENCHMARKS.md has this machine's
};

class WeightCodec {
 public:
  virtual ~WeightCodec() = default;
  virtual UploadEncoding encoding() const = 0;
  // The most bytes Encode can produce for `declared`'s weights in
  // `phase` (shapes only are read): a server refuses more before decoding.
  virtual uint64_t MaxEncodedBytes(const Layer& declared, UnitPhase phase) const = 0;
  // The encoded weights of `layer` (its weights hold their data) in
  // `phase`. Errors name the layer and the weight that cannot be encoded
  // (a value fp16 cannot hold, a non-finite one for a lossy encoding, a
  // phase the encoding does not have).
  virtual Result<std::string> Encode(const Layer& layer, UnitPhase phase, const CodecOptions& options) const = 0;
  // Decodes `bytes` into weights shaped as `declared` says (its weights'
  // data is not read). kWhole and kHigh replace `*weights`; kLow completes
  // what a kHigh decode left there, in place (bit-exact afterwards). Every
  // bad input is an error, never a crash: a size that does not match the
  // declared layer, a chunk that decompresses past it (decoding never
  // holds more than the declared weights), a NaN or zero scale, a low half
  // without its high half. Errors do not name the layer (callers add it).
  virtual Status Decode(const Layer& declared, UnitPhase phase, std::string_view bytes,
                        std::vector<Weight>* weights) const = 0;
};

const WeightCodec& CodecFor(UploadEncoding encoding);

// The weights the server computes with once `phase` (and the phases before
// it) of `layer` arrived in `encoding`: encode, then decode. For accuracy
// measurements and tests.
Result<std::vector<Weight>> WeightsAsDecoded(const Layer& layer, UploadEncoding encoding, UnitPhase phase,
                                             const CodecOptions& options = {});
// `graph` with every layer's weights as WeightsAsDecoded gives them.
Result<Graph> GraphAsDecoded(const Graph& graph, UploadEncoding encoding, UnitPhase phase,
                             const CodecOptions& options = {});

// Encoded bytes of each layer's weights (all its phases together), in
// layer order: what the planner charges for its upload.
Result<std::vector<int64_t>> EncodedLayerBytes(const Graph& graph, UploadEncoding encoding,
                                               const CodecOptions& options = {});

}  // namespace ionn
