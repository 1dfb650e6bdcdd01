// Concat of computed tensors and constants (a transformer's class token
// before its patches), along `axis`: the pieces in order, each of the same
// shape but along the axis. Attributes: axis [a] (normalized) and pieces,
// one per piece: k >= 0 the layer's input k, k < 0 its weight -1 - k. A
// Concat of computed tensors only is Concat's kind; of constants only,
// folded at import.
#include "ionn/op.h"
#include "onnx_node.h"

namespace ionn {
namespace {

Status Import(OnnxNodeReader& node, Layer* l) {
  LayerAttr& pieces = l->attrs["pieces"];
  int64_t inputs = 0, weights = 0, rank = -1;
  for (int i = 0; i < node.InputCount(); ++i) {
    if (!node.HasInput(i)) return Status::Invalid("input " + std::to_string(i) + " has no name");
    IONN_ASSIGN_OR_RETURN(Shape s, node.InputShape(i));
    rank = static_cast<int64_t>(s.size());
    if (node.Known(i)) {
      IONN_RETURN_IF_ERROR(node.AddWeight(i, "constant"));
      pieces.ints.push_back(-1 - weights++);
    } else {
      IONN_RETURN_IF_ERROR(node.AddInput(i));
      pieces.ints.push_back(inputs++);
    }
  }
  if (!node.HasAttr("axis")) return Status::Invalid("Concat needs an axis");
  IONN_ASSIGN_OR_RETURN(int64_t axis, node.Int("axis", 0));
  if (axis < -rank || axis >= rank) return Status::Invalid("axis " + std::to_string(axis) + " is out of range");
  l->attrs["axis"].ints = {axis < 0 ? axis + rank : axis};
  return Status::Ok();
}

Status InferShape(const Layer& l, const std::vector<const Shape*>& in, Shape* out) {
  IONN_RETURN_IF_ERROR(CheckAttrNames(l, {"axis", "pieces"}));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* axis, RequiredAttr(l, "axis"));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* pieces, RequiredAttr(l, "pieces"));
  if (in.empty() || l.weights.empty()) return Status::Invalid("needs computed inputs and constants");
  if (pieces->ints.size() != in.size() + l.weights.size()) {
    return Status::Invalid("pieces must list each input and weight once");
  }
  std::vector<bool> seen_in(in.size(), false), seen_w(l.weights.size(), false);
  std::vector<const Shape*> shapes;
  for (int64_t p : pieces->ints) {
    const bool input = p >= 0;
    const int64_t k = input ? p : -1 - p;
    std::vector<bool>& seen = input ? seen_in : seen_w;
    if (k >= static_cast<int64_t>(seen.size()) || seen[k]) return Status::Invalid("pieces must list each input and weight once");
    seen[k] = true;
    shapes.push_back(input ? in[k] : &l.weights[k].shape);
  }
  const Shape& first = *shapes[0];
  if (axis->ints.size() != 1 || axis->ints[0] < 0 || axis->ints[0] >= static_cast<int64_t>(first.size())) {
    return Status::Invalid("axis must be one axis of " + ShapeToString(first));
  }
  const size_t a = static_cast<size_t>(axis->ints[0]);
  Shape s = first;
  s[a] = 0;
  for (const Shape* piece : shapes) {
    bool same = piece->size() == first.size();
    for (size_t d = 0; same && d < first.size(); ++d) same = d == a || (*piece)[d] == first[d];
    if (!same) return Status::Invalid("piece " + ShapeToString(*piece) + " does not join " + ShapeToString(first));
    s[a] += (*piece)[a];
  }
  *out = s;
  return Status::Ok();
}

Status Export(const Layer& l, OnnxNodeWriter& node) {
  // The node lists the layer's inputs, then its weights: put them in order.
  const int64_t inputs = static_cast<int64_t>(l.inputs.size());
  std::vector<int> order;
  for (int64_t p : l.attrs.at("pieces").ints) order.push_back(static_cast<int>(p >= 0 ? p : inputs + (-1 - p)));
  node.SetOpType("Concat");
  node.OrderInputs(order);
  node.SetInt("axis", l.attrs.at("axis").ints[0]);
  return Status::Ok();
}

double RegressionX(const Layer& l, const std::vector<const Shape*>&) {
  return static_cast<double>(ElementCount(l.output_shape));
}

std::vector<CalibrationCase> Calibration(int, int) { return {}; }  // copies: the "Concat" type's function

}  // namespace

extern const OpDescriptor kConcatConstantsOp;
const OpDescriptor kConcatConstantsOp = {
    LayerKind::kConcatConstants, {{"Concat", 7, 1, kOnnxVariadic, 1, 1}}, Import, InferShape, Export, RegressionX,
    Calibration,
};

}  // namespace ionn
