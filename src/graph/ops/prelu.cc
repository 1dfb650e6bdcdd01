// PRelu (opset 7 on): y = x < 0 ? slope * x : x, with `slope` a constant
// (weights[0]) that broadcasts to x from the right (ONNX's unidirectional
// broadcasting): one value, one per channel ([C, 1, 1] against NCHW), or any
// shape that broadcasts. Output shape = x's; no attributes.
#include "ionn/op.h"
#include "onnx_node.h"

namespace ionn {
namespace {

Status Import(OnnxNodeReader& node, Layer*) {
  IONN_RETURN_IF_ERROR(node.AddInput(0));
  return node.AddWeight(1, "slope");
}

Status InferShape(const Layer& l, const std::vector<const Shape*>& in, Shape* out) {
  IONN_RETURN_IF_ERROR(CheckAttrNames(l, {}));
  if (in.size() != 1) return Status::Invalid("expects 1 input, got " + std::to_string(in.size()));
  if (l.weights.size() != 1) return Status::Invalid("expects one weight (the slope)");
  const Shape& x = *in[0];
  const Shape& s = l.weights[0].shape;
  bool fits = s.size() <= x.size();
  for (size_t i = 0; fits && i < s.size(); ++i) {
    const int64_t d = s[s.size() - 1 - i];
    fits = d == 1 || d == x[x.size() - 1 - i];
  }
  if (!fits) {
    return Status::Invalid("slope of shape " + ShapeToString(s) + " does not broadcast to the input " + ShapeToString(x));
  }
  *out = x;
  return Status::Ok();
}

Status Export(const Layer&, OnnxNodeWriter&) { return Status::Ok(); }  // x and the slope, as written

double RegressionX(const Layer& l, const std::vector<const Shape*>&) {
  return static_cast<double>(ElementCount(l.output_shape));
}

std::vector<CalibrationCase> Calibration(int channels, int hw) {
  CalibrationCase c;
  c.layer.kind = LayerKind::kPRelu;
  c.layer.weights = {{"slope", {channels, 1, 1}, {}}};
  c.inputs = {{1, channels, hw, hw}};
  c.fill = {0.25f};
  return {c};
}

}  // namespace

extern const OpDescriptor kPReluOp;
const OpDescriptor kPReluOp = {
    LayerKind::kPRelu, {{"PRelu", 7, 2, 2, 1, 1}}, Import, InferShape, Export, RegressionX, Calibration,
};

}  // namespace ionn
