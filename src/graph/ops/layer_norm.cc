// LayerNormalization (opset 17), and the pattern older exporters write for
// it (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div; FuseLayerNorm,
// graph.h, recognises it): over the axes from `axis` on, per row,
// y = (x - mean) / sqrt(var + epsilon) * scale + B (var: the population
// variance). Attributes: axis [a] (0 <= a < rank, normalized at import),
// epsilon [e] (finite, >= 0). Weights: scale and optional B, each of the
// normalized shape x[a:] (a file's that broadcast to it are expanded at
// import). stash_type other than 1 (float) and the Mean and InvStdDev
// outputs are refused. Output shape = x's.
#include <cmath>

#include "ionn/op.h"
#include "onnx_node.h"

namespace ionn {
namespace {

// A weight the file gives smaller than the normalized shape is expanded to
// it at import; past this size the expansion is refused.
constexpr int64_t kMaxExpandedElements = int64_t{1} << 24;

Status Import(OnnxNodeReader& node, Layer* l) {
  IONN_RETURN_IF_ERROR(node.AddInput(0));
  IONN_ASSIGN_OR_RETURN(Shape x, node.InputShape(0));
  const int64_t rank = static_cast<int64_t>(x.size());
  IONN_ASSIGN_OR_RETURN(int64_t axis, node.Int("axis", -1));
  if (axis < -rank || axis >= rank) {
    return Status::Invalid("axis " + std::to_string(axis) + " is out of range for " + ShapeToString(x));
  }
  if (axis < 0) axis += rank;
  IONN_ASSIGN_OR_RETURN(int64_t stash_type, node.Int("stash_type", 1));
  if (stash_type != 1) return Status::Unsupported("stash_type " + std::to_string(stash_type) + " (only 1: float)");
  IONN_ASSIGN_OR_RETURN(float epsilon, node.Float("epsilon", 1e-5f));
  l->attrs["axis"].ints = {axis};
  l->attrs["epsilon"].floats = {epsilon};
  const Shape normalized(x.begin() + axis, x.end());
  IONN_RETURN_IF_ERROR(node.AddWeight(1, "scale"));
  if (node.HasInput(2)) IONN_RETURN_IF_ERROR(node.AddWeight(2, "B"));
  for (Weight& w : l->weights) {
    if (w.shape != normalized && ElementCount(normalized) > kMaxExpandedElements) {
      return Status::Unsupported("'" + w.name + "' of shape " + ShapeToString(w.shape) + " broadcast to " +
                                 ShapeToString(normalized) + " (at most 2^24 values)");
    }
    if (!BroadcastWeightTo(&w, normalized)) {
      return Status::Invalid("'" + w.name + "' of shape " + ShapeToString(w.shape) +
                             " does not broadcast to the normalized shape " + ShapeToString(normalized));
    }
  }
  return Status::Ok();
}

Status InferShape(const Layer& l, const std::vector<const Shape*>& in, Shape* out) {
  IONN_RETURN_IF_ERROR(CheckAttrNames(l, {"axis", "epsilon"}));
  if (in.size() != 1) return Status::Invalid("expects 1 input, got " + std::to_string(in.size()));
  const Shape& x = *in[0];
  IONN_ASSIGN_OR_RETURN(const LayerAttr* axis, RequiredAttr(l, "axis"));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* epsilon, RequiredAttr(l, "epsilon"));
  if (axis->ints.size() != 1 || axis->ints[0] < 0 || axis->ints[0] >= static_cast<int64_t>(x.size())) {
    return Status::Invalid("axis must be one axis of " + ShapeToString(x));
  }
  if (epsilon->floats.size() != 1 || !std::isfinite(epsilon->floats[0]) || epsilon->floats[0] < 0) {
    return Status::Invalid("epsilon must be one finite value >= 0");
  }
  if (l.weights.empty() || l.weights.size() > 2) return Status::Invalid("expects a scale and an optional B");
  const Shape normalized(x.begin() + axis->ints[0], x.end());
  for (const Weight& w : l.weights) {
    if (w.shape != normalized) {
      return Status::Invalid("weight '" + w.name + "' has shape " + ShapeToString(w.shape) + ", expected " +
                             ShapeToString(normalized));
    }
  }
  *out = x;
  return Status::Ok();
}

// SerializeOnnx writes the layer as its opset-11 decomposition; this is
// never reached.
Status Export(const Layer&, OnnxNodeWriter&) {
  return Status::Internal("LayerNormalization is written as its decomposition");
}

double RegressionX(const Layer& l, const std::vector<const Shape*>&) {
  return static_cast<double>(ElementCount(l.output_shape));
}

std::vector<CalibrationCase> Calibration(int channels, int hw) {
  CalibrationCase c;  // ConvNeXt's: channels last, over the channels
  c.layer.kind = LayerKind::kLayerNorm;
  c.layer.attrs["axis"].ints = {3};
  c.layer.attrs["epsilon"].floats = {1e-6f};
  c.layer.weights = {{"scale", {channels}, {}}, {"B", {channels}, {}}};
  c.inputs = {{1, hw, hw, channels}};
  c.fill = {1.0f, 0.0f};
  return {c};
}

}  // namespace

extern const OpDescriptor kLayerNormOp;
const OpDescriptor kLayerNormOp = {
    LayerKind::kLayerNorm, {{"LayerNormalization", 17, 2, 3, 1, 3}}, Import, InferShape, Export, RegressionX,
    Calibration,
};

}  // namespace ionn
