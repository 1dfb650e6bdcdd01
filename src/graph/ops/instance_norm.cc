// InstanceNormalization (opset 6 on): per sample and channel, over every
// axis after the channel one, y = scale[c] * (x - mean) / sqrt(var + epsilon)
// + B[c] (var: the population variance). Weights: scale [C], B [C];
// attribute epsilon: [e] (default 1e-5, finite, >= 0). Input rank 3 or more;
// output shape = input shape.
#include <cmath>

#include "ionn/op.h"
#include "onnx_node.h"

namespace ionn {
namespace {

Status Import(OnnxNodeReader& node, Layer* l) {
  IONN_RETURN_IF_ERROR(node.AddInput(0));
  IONN_RETURN_IF_ERROR(node.AddWeight(1, "scale"));
  IONN_RETURN_IF_ERROR(node.AddWeight(2, "B"));
  IONN_ASSIGN_OR_RETURN(float epsilon, node.Float("epsilon", 1e-5f));
  l->attrs["epsilon"].floats = {epsilon};
  return Status::Ok();
}

Status InferShape(const Layer& l, const std::vector<const Shape*>& in, Shape* out) {
  IONN_RETURN_IF_ERROR(CheckAttrNames(l, {"epsilon"}));
  if (in.size() != 1) return Status::Invalid("expects 1 input, got " + std::to_string(in.size()));
  const Shape& x = *in[0];
  if (x.size() < 3) return Status::Invalid("input must have 3 or more axes (N, C, ...), got " + ShapeToString(x));
  if (l.weights.size() != 2) return Status::Invalid("expects two weights (scale and B)");
  for (const Weight& w : l.weights) {
    if (w.shape != Shape{x[1]}) {
      return Status::Invalid("weight '" + w.name + "' has shape " + ShapeToString(w.shape) + ", expected [" +
                             std::to_string(x[1]) + "]");
    }
  }
  IONN_ASSIGN_OR_RETURN(const LayerAttr* epsilon, RequiredAttr(l, "epsilon"));
  if (epsilon->floats.size() != 1 || !std::isfinite(epsilon->floats[0]) || epsilon->floats[0] < 0) {
    return Status::Invalid("epsilon must be one finite value >= 0");
  }
  *out = x;
  return Status::Ok();
}

Status Export(const Layer& l, OnnxNodeWriter& node) {
  node.SetFloat("epsilon", l.attrs.at("epsilon").floats[0]);
  return Status::Ok();
}

double RegressionX(const Layer& l, const std::vector<const Shape*>&) {
  return static_cast<double>(ElementCount(l.output_shape));
}

std::vector<CalibrationCase> Calibration(int channels, int hw) {
  CalibrationCase c;
  c.layer.kind = LayerKind::kInstanceNorm;
  c.layer.attrs["epsilon"].floats = {1e-5f};
  c.layer.weights = {{"scale", {channels}, {}}, {"B", {channels}, {}}};
  c.inputs = {{1, channels, hw, hw}};
  c.fill = {1.0f, 0.0f};
  return {c};
}

}  // namespace

extern const OpDescriptor kInstanceNormOp;
const OpDescriptor kInstanceNormOp = {
    LayerKind::kInstanceNorm, {{"InstanceNormalization", 6, 3, 3, 1, 1}}, Import, InferShape, Export, RegressionX,
    Calibration,
};

}  // namespace ionn
