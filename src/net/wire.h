// Internal to net: between the IR and the wire messages of src/net/ionn.proto.
// Everything decoded here is validated before it is used: shapes with
// overflow-safe element counts, names within limits, tensors whose bytes
// match their shape, architectures that pass Graph::Finalize.
#pragma once

#include <string>
#include <vector>

#include "ionn.pb.h"
#include "ionn/engine.h"
#include "ionn/graph.h"
#include "ionn/model_costs.h"

namespace ionn::net {

constexpr uint32_t kProtocolVersion = 1;
// Proofs of possession of held layers (ProveHeld) send blocks of this many
// bytes of a layer's weight bytes.
constexpr uint64_t kProofBlockBytes = 1024;

// Trailing metadata of a call refused because the server is busy: retry
// after this many ms (the call was not run).
constexpr char kRetryAfterMetadata[] = "ionn-retry-after-ms";
// The metadata key of the shared secret (ServerOptions::secret).
constexpr char kSecretMetadata[] = "ionn-secret";
// A shared secret is printable ASCII without spaces, 16 to 1024 bytes.
Status ValidateSecret(const std::string& secret);

struct WireLimits {
  uint64_t max_message_bytes = 64ull << 20;
  uint64_t max_chunk_bytes = 1ull << 20;
  uint64_t max_model_bytes = 1ull << 30;
  uint32_t max_layers = 10000;
  uint32_t max_name_bytes = 256;
};

// The architecture (no weight data) with each layer's content hash.
v1::Architecture ArchitectureToProto(const Graph& graph);
// Decodes and validates an architecture: known kinds, names within
// limits, unique names, consistent shapes (Graph::Finalize). Weights are
// shapes only. Errors name the layer or field.
Result<Graph> ArchitectureFromProto(const v1::Architecture& proto, const WireLimits& limits);

// SHA-256 (32 bytes) of a layer's kind, attributes, input and output
// shapes and weights (shapes and float32 bytes). Layers with equal hashes
// compute the same function of the same input shapes.
std::string LayerContentHash(const Graph& graph, const Layer& layer);

void TensorToProto(const std::string& name, const Tensor& tensor, v1::Tensor* out);
// Checks the shape against `expected` and the byte count against it.
Result<Tensor> TensorFromProto(const v1::Tensor& proto, const Shape& expected);

// Weight bytes of a layer as Upload sends them (each weight row-major,
// little-endian float32), and back.
int64_t LayerUploadBytes(const Layer& declared);
void AppendLayerWeights(const Layer& layer, std::string* out);
// Bytes [offset, offset + n) of those (fewer past their end).
std::string LayerWeightBytesAt(const Layer& layer, uint64_t offset, uint64_t n);
// Splits `bytes` (exactly LayerUploadBytes(declared)) into weights shaped
// as `declared` says.
std::vector<Weight> WeightsFromBytes(const Layer& declared, const char* bytes);

void RegressionToProto(const ServerRegression& regression, v1::HelloReply* hello);
// Rejects non-finite coefficients and duplicate types.
Result<ServerRegression> RegressionFromProto(const v1::HelloReply& hello);

}  // namespace ionn::net
