// Pow (opset 7 on) with a constant exponent: y = x^e, e one value (attribute
// exponent [e], finite), as C's powf; Y in the file is a known tensor of one
// element whose shape does not widen x's. A computed exponent (or a
// computed base with a known one: 2^x) is refused. Output shape = x's.
#include <cmath>

#include "ionn/op.h"
#include "onnx_node.h"

namespace ionn {
namespace {

Status Import(OnnxNodeReader& node, Layer* l) {
  if (!node.Known(1)) return Status::Unsupported("Pow with a tensor exponent computed at run time (only a constant one)");
  if (node.Known(0)) return Status::Unsupported("Pow of a constant base (only a computed base and a constant exponent)");
  IONN_RETURN_IF_ERROR(node.AddInput(0));
  IONN_ASSIGN_OR_RETURN(Shape x, node.InputShape(0));
  Shape dims;
  IONN_ASSIGN_OR_RETURN(std::vector<double> e, node.KnownValues(1, &dims));
  if (e.size() != 1) {
    return Status::Unsupported("Pow with an exponent of shape " + ShapeToString(dims) + " (only one value)");
  }
  if (dims.size() > x.size()) {
    return Status::Unsupported("Pow whose exponent " + ShapeToString(dims) + " has more axes than the base " +
                               ShapeToString(x));
  }
  if (!(std::fabs(e[0]) <= 3.4e38)) return Status::Invalid("the exponent must be a finite float");
  l->attrs["exponent"].floats = {static_cast<float>(e[0])};
  return Status::Ok();
}

Status InferShape(const Layer& l, const std::vector<const Shape*>& in, Shape* out) {
  IONN_RETURN_IF_ERROR(CheckAttrNames(l, {"exponent"}));
  if (in.size() != 1) return Status::Invalid("expects 1 input, got " + std::to_string(in.size()));
  if (!l.weights.empty()) return Status::Invalid("takes no weights");
  IONN_ASSIGN_OR_RETURN(const LayerAttr* e, RequiredAttr(l, "exponent"));
  if (e->floats.size() != 1 || !std::isfinite(e->floats[0])) return Status::Invalid("exponent must be one finite value");
  *out = *in[0];
  return Status::Ok();
}

Status Export(const Layer& l, OnnxNodeWriter& node) {
  node.AddFloatsInput({l.attrs.at("exponent").floats[0]});
  return Status::Ok();
}

double RegressionX(const Layer& l, const std::vector<const Shape*>&) {
  return static_cast<double>(ElementCount(l.output_shape));
}

std::vector<CalibrationCase> Calibration(int channels, int hw) {
  CalibrationCase c;
  c.layer.kind = LayerKind::kPow;
  c.layer.attrs["exponent"].floats = {2.0f};  // a LayerNorm's variance, decomposed
  c.inputs = {{1, channels, hw, hw}};
  return {c};
}

}  // namespace

extern const OpDescriptor kPowOp;
const OpDescriptor kPowOp = {
    LayerKind::kPow, {{"Pow", 7, 2, 2, 1, 1}}, Import, InferShape, Export, RegressionX, Calibration,
};

}  // namespace ionn
