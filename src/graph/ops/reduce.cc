// ReduceMean, ReduceSum, ReduceMax, ReduceMin (opset 1 on): the mean, sum,
// largest or smallest value over some axes of a tensor of any rank, as
// numpy's (a NaN among the values gives NaN). Attributes: axes, the input's
// axes reduced (ascending, each once; empty: none, the output is the input)
// and keepdims [0 or 1] (1: reduced axes stay as size 1). ONNX's axes come
// as an attribute (ReduceSum before opset 13, the others before 18) or as
// a constant input; without them every axis is reduced, unless
// noop_with_empty_axes is set. No weights.
#include <algorithm>
#include <cmath>

#include "ionn/op.h"
#include "onnx_node.h"

namespace ionn {
namespace {

// The opset from which axes are an input, not an attribute.
int AxesInputSince(LayerKind kind) { return kind == LayerKind::kReduceSum ? 13 : 18; }

Status Import(OnnxNodeReader& node, Layer* l) {
  IONN_RETURN_IF_ERROR(node.AddInput(0));
  IONN_ASSIGN_OR_RETURN(Shape x, node.InputShape(0));
  const int rank = static_cast<int>(x.size());
  std::vector<int64_t> axes;
  if (node.opset() >= AxesInputSince(l->kind)) {
    if (node.HasAttr("axes")) {
      return Status::Invalid("attribute 'axes' is not part of " + node.op_type() + " at opset " +
                             std::to_string(node.opset()) + " (an input since opset " +
                             std::to_string(AxesInputSince(l->kind)) + ")");
    }
    if (node.HasInput(1)) {
      if (!node.Known(1)) return Status::Unsupported("axes computed at run time (only constant axes)");
      Shape dims;
      IONN_ASSIGN_OR_RETURN(std::vector<double> v, node.KnownValues(1, &dims));
      if (dims.size() > 1) return Status::Invalid("axes must be 1-D, is " + ShapeToString(dims));
      for (double a : v) {
        if (!(std::fabs(a) <= 64) || a != std::trunc(a)) return Status::Invalid("axes must be small integers");
        axes.push_back(static_cast<int64_t>(a));
      }
    }
  } else {
    IONN_ASSIGN_OR_RETURN(axes, node.Ints("axes", {}));
  }
  IONN_ASSIGN_OR_RETURN(int64_t noop, node.Int("noop_with_empty_axes", 0));
  IONN_ASSIGN_OR_RETURN(int64_t keepdims, node.Int("keepdims", 1));
  if (keepdims != 0 && keepdims != 1) return Status::Invalid("keepdims must be 0 or 1, is " + std::to_string(keepdims));
  if (noop != 0 && noop != 1) return Status::Invalid("noop_with_empty_axes must be 0 or 1, is " + std::to_string(noop));
  std::vector<bool> reduced(x.size(), false);
  if (axes.empty() && noop == 0) reduced.assign(x.size(), true);
  for (int64_t a : axes) {
    if (a < -rank || a >= rank) {
      return Status::Invalid("axis " + std::to_string(a) + " is out of range for " + ShapeToString(x));
    }
    const int64_t n = a < 0 ? a + rank : a;
    if (reduced[n]) return Status::Invalid("axis " + std::to_string(a) + " is listed twice");
    reduced[n] = true;
  }
  LayerAttr& out_axes = l->attrs["axes"];
  for (int d = 0; d < rank; ++d) {
    if (reduced[d]) out_axes.ints.push_back(d);
  }
  l->attrs["keepdims"].ints = {keepdims};
  return Status::Ok();
}

Status InferShape(const Layer& l, const std::vector<const Shape*>& in, Shape* out) {
  IONN_RETURN_IF_ERROR(CheckAttrNames(l, {"axes", "keepdims"}));
  if (in.size() != 1) return Status::Invalid("expects 1 input, got " + std::to_string(in.size()));
  if (!l.weights.empty()) return Status::Invalid("takes no weights");
  const Shape& x = *in[0];
  IONN_ASSIGN_OR_RETURN(const LayerAttr* axes, RequiredAttr(l, "axes"));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* keepdims, RequiredAttr(l, "keepdims"));
  if (keepdims->ints.size() != 1 || (keepdims->ints[0] != 0 && keepdims->ints[0] != 1)) {
    return Status::Invalid("keepdims must be one value, 0 or 1");
  }
  std::vector<bool> reduced(x.size(), false);
  int64_t last = -1;
  for (int64_t a : axes->ints) {
    if (a <= last || a >= static_cast<int64_t>(x.size())) {
      return Status::Invalid("axes " + ShapeToString(axes->ints) + " must ascend, each an axis of " + ShapeToString(x));
    }
    reduced[a] = true;
    last = a;
  }
  out->clear();
  for (size_t d = 0; d < x.size(); ++d) {
    if (!reduced[d]) {
      out->push_back(x[d]);
    } else if (keepdims->ints[0] == 1) {
      out->push_back(1);
    }
  }
  return Status::Ok();
}

Status Export(const Layer& l, OnnxNodeWriter& node) {
  // At opset 11 every kind takes its axes as an attribute; an empty list
  // would mean every axis there, so no reduction is written as axes = [].
  if (l.attrs.at("axes").ints.empty()) return Status::Unsupported("a reduction over no axes cannot be written at opset 11");
  node.SetInts("axes", l.attrs.at("axes").ints);
  node.SetInt("keepdims", l.attrs.at("keepdims").ints[0]);
  return Status::Ok();
}

double RegressionX(const Layer&, const std::vector<const Shape*>& in) {  // every input element is read once
  return static_cast<double>(ElementCount(*in[0]));
}

// The "Pooling" type's function covers them all: calibration times the
// mean only (the others read the same elements once).
template <LayerKind kKind>
std::vector<CalibrationCase> Calibration(int channels, int hw) {
  if (kKind != LayerKind::kReduceMean) return {};
  CalibrationCase c;
  c.layer.kind = kKind;
  c.layer.attrs["axes"].ints = {2, 3};  // a squeeze-and-excitation block's mean
  c.layer.attrs["keepdims"].ints = {1};
  c.inputs = {{1, channels, hw, hw}};
  return {c};
}

template <LayerKind kKind>
OpDescriptor Reduce(const char* onnx) {
  const int input_since = AxesInputSince(kKind);
  return {kKind,
          {{onnx, 1, 1, 1, 1, 1}, {onnx, input_since, 1, 2, 1, 1}},
          Import,
          InferShape,
          Export,
          RegressionX,
          Calibration<kKind>};
}

}  // namespace

#define IONN_REDUCE_OP(kind, onnx)    \
  extern const OpDescriptor kind##Op; \
  const OpDescriptor kind##Op = Reduce<LayerKind::kind>(onnx);
IONN_REDUCE_OP(kReduceMean, "ReduceMean")
IONN_REDUCE_OP(kReduceSum, "ReduceSum")
IONN_REDUCE_OP(kReduceMax, "ReduceMax")
IONN_REDUCE_OP(kReduceMin, "ReduceMin")
#undef IONN_REDUCE_OP

}  // namespace ionn
