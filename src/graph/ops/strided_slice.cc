// Slice of a computed tensor along several axes or with steps (Swin's patch
// merging, x[:, 0::2, 1::2, :]; a flip with step -1), made by import's Slice
// case where Slice's kind (one axis, step 1) does not fit. Attributes, one
// value per input axis: starts (the first index taken), steps (non-zero)
// and counts (how many indices, >= 1); output shape = counts.
#include <limits>

#include "ionn/op.h"
#include "onnx_node.h"

namespace ionn {
namespace {

Status Import(OnnxNodeReader&, Layer*) {
  return Status::Internal("StridedSlice is made by Slice's import, not read");
}

Status InferShape(const Layer& l, const std::vector<const Shape*>& in, Shape* out) {
  IONN_RETURN_IF_ERROR(CheckAttrNames(l, {"starts", "steps", "counts"}));
  if (in.size() != 1) return Status::Invalid("expects 1 input, got " + std::to_string(in.size()));
  if (!l.weights.empty()) return Status::Invalid("takes no weights");
  const Shape& x = *in[0];
  if (x.empty()) return Status::Invalid("input must have 1 or more axes");
  IONN_ASSIGN_OR_RETURN(const LayerAttr* starts, RequiredAttr(l, "starts"));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* steps, RequiredAttr(l, "steps"));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* counts, RequiredAttr(l, "counts"));
  if (starts->ints.size() != x.size() || steps->ints.size() != x.size() || counts->ints.size() != x.size()) {
    return Status::Invalid("starts, steps and counts need one value per axis of " + ShapeToString(x));
  }
  for (size_t d = 0; d < x.size(); ++d) {
    const int64_t s = starts->ints[d], t = steps->ints[d], c = counts->ints[d];
    // The last index taken, s + (c - 1) t, must be inside the axis too
    // (compared by division: the product may not fit).
    const bool ok = c >= 1 && c <= x[d] && t != 0 && t >= -x[d] && t <= x[d] && s >= 0 && s < x[d] &&
                    (t > 0 ? c - 1 <= (x[d] - 1 - s) / t : c - 1 <= s / -t);
    if (!ok) {
      return Status::Invalid("axis " + std::to_string(d) + ": start " + std::to_string(s) + ", step " +
                             std::to_string(t) + ", count " + std::to_string(c) + " do not fit size " +
                             std::to_string(x[d]));
    }
  }
  *out = counts->ints;
  return Status::Ok();
}

Status Export(const Layer& l, OnnxNodeWriter& node) {
  const auto& starts = l.attrs.at("starts").ints;
  const auto& steps = l.attrs.at("steps").ints;
  const auto& counts = l.attrs.at("counts").ints;
  std::vector<int64_t> ends, axes;
  for (size_t d = 0; d < starts.size(); ++d) {
    const int64_t end = starts[d] + counts[d] * steps[d];
    ends.push_back(end < 0 ? std::numeric_limits<int64_t>::min() : end);  // past index 0 going down
    axes.push_back(static_cast<int64_t>(d));
  }
  node.SetOpType("Slice");
  node.AddIntsInput(starts);
  node.AddIntsInput(ends);
  node.AddIntsInput(axes);
  node.AddIntsInput(steps);
  return Status::Ok();
}

double RegressionX(const Layer& l, const std::vector<const Shape*>&) {
  return static_cast<double>(ElementCount(l.output_shape));
}

std::vector<CalibrationCase> Calibration(int, int) { return {}; }  // a copy: the "Slice" type's function

}  // namespace

extern const OpDescriptor kStridedSliceOp;
const OpDescriptor kStridedSliceOp = {
    LayerKind::kStridedSlice, {}, Import, InferShape, Export, RegressionX, Calibration,
};

}  // namespace ionn
