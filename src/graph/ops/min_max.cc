// Max and Min (opset 8 on) of two operands with numpy broadcasting: each
// element the larger (smaller) of the two, NaN where either is NaN (as
// numpy's maximum and minimum). One operand may be a constant (weights[0],
// the left one when Layer::weight_first), as Add's. No attributes. ONNX's
// Max and Min take any number of operands: import (onnx_io.cc,
// ImportVariadic) makes a chain of these, as it does Sum's and Mean's of
// Add and Mul layers; so the descriptors read no node themselves.
#include "ionn/op.h"
#include "../shape.h"
#include "onnx_node.h"

namespace ionn {
namespace {

Status InferShape(const Layer& l, const std::vector<const Shape*>& in, Shape* out) {
  IONN_RETURN_IF_ERROR(CheckAttrNames(l, {}));
  Shape a, b;
  if (in.size() == 2 && l.weights.empty()) {
    a = *in[0], b = *in[1];
  } else if (in.size() == 1 && l.weights.size() == 1) {
    a = l.weight_first ? l.weights[0].shape : *in[0];
    b = l.weight_first ? *in[0] : l.weights[0].shape;
  } else {
    return Status::Invalid("needs two inputs, or one input and one constant operand");
  }
  IONN_RETURN_IF_ERROR(Broadcast(a, b, out));
  if (out->size() > 8) return Status::Invalid("more than 8 dimensions");
  return Status::Ok();
}

Status Export(const Layer&, OnnxNodeWriter&) { return Status::Ok(); }  // both operands, as written

double RegressionX(const Layer& l, const std::vector<const Shape*>&) {  // as Add's: elements times inputs
  return static_cast<double>(ElementCount(l.output_shape)) * static_cast<double>(l.inputs.size());
}

template <LayerKind kKind>
std::vector<CalibrationCase> Calibration(int channels, int hw) {
  CalibrationCase c;
  c.layer.kind = kKind;
  c.inputs = {{1, channels, hw, hw}, {1, channels, hw, hw}};
  return {c};
}

}  // namespace

extern const OpDescriptor kMaxOp, kMinOp;
const OpDescriptor kMaxOp = {LayerKind::kMax, {}, nullptr, InferShape, Export, RegressionX, Calibration<LayerKind::kMax>};
const OpDescriptor kMinOp = {LayerKind::kMin, {}, nullptr, InferShape, Export, RegressionX, Calibration<LayerKind::kMin>};

}  // namespace ionn
