// Gather (opset 1 on) of a tensor computed at run time with indices known at
// import (a transformer's class token, x[:, 0]): along `axis`, output =
// x[:axis] + indices' shape + x[axis+1:]. Attributes: axis [a] (normalized),
// indices (flattened, each in [0, x[a]) after import adds x[a] to negative
// ones) and indices_shape (their shape; [] for one index, which drops the
// axis). Gathers of known values are folded at import instead.
#include <cmath>

#include "ionn/op.h"
#include "onnx_node.h"

namespace ionn {
namespace {

Status Import(OnnxNodeReader& node, Layer* l) {
  IONN_RETURN_IF_ERROR(node.AddInput(0));
  IONN_ASSIGN_OR_RETURN(Shape x, node.InputShape(0));
  const int64_t rank = static_cast<int64_t>(x.size());
  IONN_ASSIGN_OR_RETURN(int64_t axis, node.Int("axis", 0));
  if (axis < -rank || axis >= rank) {
    return Status::Invalid("axis " + std::to_string(axis) + " is out of range for " + ShapeToString(x));
  }
  if (axis < 0) axis += rank;
  Shape dims;
  IONN_ASSIGN_OR_RETURN(std::vector<double> values, node.KnownValues(1, &dims));
  LayerAttr& indices = l->attrs["indices"];
  for (double v : values) {
    if (!(std::fabs(v) <= 9e15) || v != std::trunc(v)) return Status::Invalid("indices must be integers");
    const int64_t i = static_cast<int64_t>(v);
    if (i < -x[axis] || i >= x[axis]) {
      return Status::Invalid("index " + std::to_string(i) + " is out of range for axis " + std::to_string(axis) + " of " +
                             ShapeToString(x));
    }
    indices.ints.push_back(i < 0 ? i + x[axis] : i);
  }
  l->attrs["axis"].ints = {axis};
  l->attrs["indices_shape"].ints = dims;
  return Status::Ok();
}

Status InferShape(const Layer& l, const std::vector<const Shape*>& in, Shape* out) {
  IONN_RETURN_IF_ERROR(CheckAttrNames(l, {"axis", "indices", "indices_shape"}));
  if (in.size() != 1) return Status::Invalid("expects 1 input, got " + std::to_string(in.size()));
  if (!l.weights.empty()) return Status::Invalid("takes no weights");
  const Shape& x = *in[0];
  IONN_ASSIGN_OR_RETURN(const LayerAttr* axis, RequiredAttr(l, "axis"));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* indices, RequiredAttr(l, "indices"));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* shape, RequiredAttr(l, "indices_shape"));
  if (axis->ints.size() != 1 || axis->ints[0] < 0 || axis->ints[0] >= static_cast<int64_t>(x.size())) {
    return Status::Invalid("axis must be one axis of " + ShapeToString(x));
  }
  const int64_t a = axis->ints[0];
  if (shape->ints.size() > 8 || ElementCount(shape->ints) != static_cast<int64_t>(indices->ints.size())) {
    return Status::Invalid("indices_shape " + ShapeToString(shape->ints) + " does not hold " +
                           std::to_string(indices->ints.size()) + " indices");
  }
  for (int64_t i : indices->ints) {
    if (i < 0 || i >= x[a]) return Status::Invalid("index " + std::to_string(i) + " is out of range for " + ShapeToString(x));
  }
  *out = Shape(x.begin(), x.begin() + a);
  out->insert(out->end(), shape->ints.begin(), shape->ints.end());
  out->insert(out->end(), x.begin() + a + 1, x.end());
  if (out->size() > 8) return Status::Invalid("more than 8 dimensions");
  return Status::Ok();
}

Status Export(const Layer& l, OnnxNodeWriter& node) {
  node.AddIntsInput(l.attrs.at("indices").ints, l.attrs.at("indices_shape").ints);
  node.SetInt("axis", l.attrs.at("axis").ints[0]);
  return Status::Ok();
}

double RegressionX(const Layer& l, const std::vector<const Shape*>&) {
  return static_cast<double>(ElementCount(l.output_shape));
}

std::vector<CalibrationCase> Calibration(int, int) { return {}; }  // a copy: the "Slice" type's function

}  // namespace

extern const OpDescriptor kGatherOp;
const OpDescriptor kGatherOp = {
    LayerKind::kGather, {{"Gather", 1, 2, 2, 1, 1}}, Import, InferShape, Export, RegressionX, Calibration,
};

}  // namespace ionn
