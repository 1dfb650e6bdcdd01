// MatMul (opset 1 on) as numpy's matmul: A [..., M, K] times B [..., K, N]
// gives [..., M, N], the leading axes broadcast; a 1-D A is a row [1, K]
// and a 1-D B a column [K, 1], their axis dropped from the output. B is a
// constant (weights[0], "B") or a tensor computed at run time (a second
// input: attention's Q K^T and its weights times V). No attributes. A 2-D A
// times a constant 2-D B imports as a fully connected layer instead (Gemm's
// kind, onnx_io.cc), as before this kind existed.
#include <algorithm>

#include "ionn/op.h"
#include "onnx_node.h"

namespace ionn {
namespace {

Status Import(OnnxNodeReader& node, Layer*) {
  if (node.Known(0)) return Status::Unsupported("MatMul of a constant left operand (only a computed one)");
  IONN_RETURN_IF_ERROR(node.AddInput(0));
  return node.Known(1) ? node.AddWeight(1, "B") : node.AddInput(1);
}

}  // namespace

Status MatMulShapes(const Shape& a, const Shape& b, Shape* out, int64_t* m, int64_t* k, int64_t* n) {
  if (a.empty() || b.empty()) return Status::Invalid("operands must have 1 or more axes, are " + ShapeToString(a) + " and " + ShapeToString(b));
  const Shape a2 = a.size() == 1 ? Shape{1, a[0]} : a;
  const Shape b2 = b.size() == 1 ? Shape{b[0], 1} : b;
  *m = a2[a2.size() - 2], *k = a2.back(), *n = b2.back();
  if (b2[b2.size() - 2] != *k) {
    return Status::Invalid("cannot multiply " + ShapeToString(a) + " by " + ShapeToString(b) + " (inner sizes differ)");
  }
  const size_t batch = std::max(a2.size(), b2.size()) - 2;
  Shape s(batch);
  for (size_t i = 0; i < batch; ++i) {
    const size_t from_end = batch - i;  // 1 for the last batch axis
    const int64_t x = from_end + 2 > a2.size() ? 1 : a2[a2.size() - 2 - from_end];
    const int64_t y = from_end + 2 > b2.size() ? 1 : b2[b2.size() - 2 - from_end];
    if (x != y && x != 1 && y != 1) {
      return Status::Invalid("batch axes of " + ShapeToString(a) + " and " + ShapeToString(b) + " do not broadcast");
    }
    s[i] = x == 1 ? y : x;
  }
  if (a.size() > 1) s.push_back(*m);
  if (b.size() > 1) s.push_back(*n);
  if (s.size() > 8) return Status::Invalid("more than 8 dimensions");
  *out = std::move(s);
  return Status::Ok();
}

namespace {

Status InferShape(const Layer& l, const std::vector<const Shape*>& in, Shape* out) {
  IONN_RETURN_IF_ERROR(CheckAttrNames(l, {}));
  const bool constant = l.weights.size() == 1 && in.size() == 1;
  if (!constant && !(l.weights.empty() && in.size() == 2)) {
    return Status::Invalid("needs two inputs, or one input and a constant B");
  }
  int64_t m, k, n;
  return MatMulShapes(*in[0], constant ? l.weights[0].shape : *in[1], out, &m, &k, &n);
}

Status Export(const Layer&, OnnxNodeWriter&) { return Status::Ok(); }  // A and B, as written

double RegressionX(const Layer& l, const std::vector<const Shape*>& in) {  // multiply-adds
  const Shape& a = *in[0];
  return static_cast<double>(ElementCount(l.output_shape)) * static_cast<double>(a.back());
}

std::vector<CalibrationCase> Calibration(int channels, int hw) {
  CalibrationCase c;  // a transformer's linear layer: tokens x channels times channels x channels
  c.layer.kind = LayerKind::kMatMul;
  c.layer.weights = {{"B", {channels, channels}, {}}};
  c.inputs = {{1, hw * hw, channels}};
  c.fill = {0.01f};
  return {c};
}

}  // namespace

extern const OpDescriptor kMatMulOp;
const OpDescriptor kMatMulOp = {
    LayerKind::kMatMul, {{"MatMul", 1, 2, 2, 1, 1}}, Import, InferShape, Export, RegressionX, Calibration,
};

}  // namespace ionn
