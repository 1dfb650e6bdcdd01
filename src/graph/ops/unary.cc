// The element-wise functions of one tensor, as ONNX defines them (from the
// opset of their current definition: 6 for most, Softplus and Softsign 1,
// Erf 9, ThresholdedRelu 10, Celu 12): one descriptor each, sharing this
// file because they differ only in their formula and attributes (kept as
// Layer::attrs, each a single float):
//   Tanh, Exp, Log, Neg, Abs, Sqrt, Reciprocal (1/x), Erf, Floor, Ceil,
//   Softplus log(1 + e^x), Softsign x / (1 + |x|);
//   LeakyRelu x < 0 ? alpha x : x (alpha 0.01); Elu x < 0 ? alpha (e^x - 1)
//   : x (alpha 1); Selu gamma (x <= 0 ? alpha (e^x - 1) : x) (alpha
//   1.67326319, gamma 1.05070102); Celu max(0, x) + min(0, alpha (e^(x /
//   alpha) - 1)) (alpha 1, not 0); ThresholdedRelu x > alpha ? x : 0 (alpha 1).
// Output shape = input shape, any rank; no weights.
#include <cmath>
#include <utility>

#include "ionn/op.h"
#include "onnx_node.h"

namespace ionn {
namespace {

struct UnaryAttr {
  const char* name;
  float fallback;
};

// The attributes of each kind, with ONNX's defaults.
std::vector<UnaryAttr> AttrsOf(LayerKind kind) {
  switch (kind) {
    case LayerKind::kLeakyRelu: return {{"alpha", 0.01f}};
    case LayerKind::kElu:
    case LayerKind::kCelu:
    case LayerKind::kThresholdedRelu: return {{"alpha", 1.0f}};
    case LayerKind::kSelu: return {{"alpha", 1.67326319217681884765625f}, {"gamma", 1.05070102214813232421875f}};
    default: return {};
  }
}

Status Import(OnnxNodeReader& node, Layer* l) {
  IONN_RETURN_IF_ERROR(node.AddInput(0));
  for (const UnaryAttr& a : AttrsOf(l->kind)) {
    IONN_ASSIGN_OR_RETURN(float v, node.Float(a.name, a.fallback));
    l->attrs[a.name].floats = {v};
  }
  return Status::Ok();
}

Status InferShape(const Layer& l, const std::vector<const Shape*>& in, Shape* out) {
  std::vector<std::string> names;
  for (const UnaryAttr& a : AttrsOf(l.kind)) names.push_back(a.name);
  IONN_RETURN_IF_ERROR(CheckAttrNames(l, names));
  if (in.size() != 1) return Status::Invalid("expects 1 input, got " + std::to_string(in.size()));
  if (!l.weights.empty()) return Status::Invalid("takes no weights");
  for (const UnaryAttr& a : AttrsOf(l.kind)) {
    IONN_ASSIGN_OR_RETURN(const LayerAttr* v, RequiredAttr(l, a.name));
    if (v->floats.size() != 1 || !std::isfinite(v->floats[0])) {
      return Status::Invalid(std::string(a.name) + " must be one finite value");
    }
  }
  if (l.kind == LayerKind::kCelu && l.attrs.at("alpha").floats[0] == 0) return Status::Invalid("Celu's alpha must not be 0");
  *out = *in[0];
  return Status::Ok();
}

Status Export(const Layer& l, OnnxNodeWriter& node) {
  for (const UnaryAttr& a : AttrsOf(l.kind)) node.SetFloat(a.name, l.attrs.at(a.name).floats[0]);
  return Status::Ok();
}

double RegressionX(const Layer& l, const std::vector<const Shape*>&) {
  return static_cast<double>(ElementCount(l.output_shape));
}

template <LayerKind kKind>
std::vector<CalibrationCase> Calibration(int channels, int hw) {
  CalibrationCase c;
  c.layer.kind = kKind;
  for (const UnaryAttr& a : AttrsOf(kKind)) c.layer.attrs[a.name].floats = {a.fallback};
  c.inputs = {{1, channels, hw, hw}};
  return {c};
}

template <LayerKind kKind>
OpDescriptor Unary(const char* onnx, int since) {
  return {kKind, {{onnx, since, 1, 1, 1, 1}}, Import, InferShape, Export, RegressionX, Calibration<kKind>};
}

}  // namespace

#define IONN_UNARY_OP(kind, onnx, since) \
  extern const OpDescriptor kind##Op;    \
  const OpDescriptor kind##Op = Unary<LayerKind::kind>(onnx, since);
IONN_UNARY_OP(kTanh, "Tanh", 6)
IONN_UNARY_OP(kLeakyRelu, "LeakyRelu", 6)
IONN_UNARY_OP(kElu, "Elu", 6)
IONN_UNARY_OP(kSelu, "Selu", 6)
IONN_UNARY_OP(kCelu, "Celu", 12)
IONN_UNARY_OP(kThresholdedRelu, "ThresholdedRelu", 10)
IONN_UNARY_OP(kExp, "Exp", 6)
IONN_UNARY_OP(kLog, "Log", 6)
IONN_UNARY_OP(kNeg, "Neg", 6)
IONN_UNARY_OP(kAbs, "Abs", 6)
IONN_UNARY_OP(kSqrt, "Sqrt", 6)
IONN_UNARY_OP(kReciprocal, "Reciprocal", 6)
IONN_UNARY_OP(kErf, "Erf", 9)
IONN_UNARY_OP(kSoftplus, "Softplus", 1)
IONN_UNARY_OP(kSoftsign, "Softsign", 1)
IONN_UNARY_OP(kFloor, "Floor", 6)
IONN_UNARY_OP(kCeil, "Ceil", 6)
#undef IONN_UNARY_OP

}  // namespace ionn
