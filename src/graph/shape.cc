// Shape inference and attribute checks, one case per layer kind.
#include <algorithm>
#include <cmath>
#include <string>

#include "shape.h"

#include "ionn/op.h"

namespace ionn {
namespace {

Status Expect(bool ok, const std::string& what) { return ok ? Status::Ok() : Status::Invalid(what); }

Status CheckInputs(const std::vector<const Shape*>& in, size_t min, size_t max) {
  if (in.size() < min || in.size() > max) {
    return Status::Invalid("expects " + std::to_string(min) + (max > min ? "+" : "") + " inputs, got " +
                           std::to_string(in.size()));
  }
  return Status::Ok();
}

Status CheckWeight(const Layer& l, size_t index, const Shape& expected, const char* what) {
  if (l.weights.size() <= index) return Status::Invalid(std::string("missing ") + what);
  if (l.weights[index].shape != expected) {
    return Status::Invalid(std::string(what) + " '" + l.weights[index].name + "' has shape " +
                           ShapeToString(l.weights[index].shape) + ", expected " + ShapeToString(expected));
  }
  return Status::Ok();
}

int64_t PooledSize(int64_t in, int k, int stride, int pad_a, int pad_b, int dilation, bool ceil_mode) {
  const int64_t span = static_cast<int64_t>(dilation) * (k - 1) + 1;
  const int64_t room = in + pad_a + pad_b - span;
  if (room < 0) return 0;
  int64_t out = (ceil_mode ? (room + stride - 1) / stride : room / stride) + 1;
  // As Caffe and ONNX: the last window must start inside the input or left padding.
  if (ceil_mode && (out - 1) * stride >= in + pad_a) --out;
  return out;
}

Status Spatial(const Layer& l, const Shape& x, int64_t* oh, int64_t* ow) {
  IONN_RETURN_IF_ERROR(Expect(x.size() == 4, "input must be 4-D NCHW, got " + ShapeToString(x)));
  IONN_RETURN_IF_ERROR(Expect(l.kernel_h > 0 && l.kernel_w > 0 && l.stride_h > 0 && l.stride_w > 0 &&
                                  l.dilation_h > 0 && l.dilation_w > 0,
                              "kernel, stride and dilation must be > 0"));
  IONN_RETURN_IF_ERROR(Expect(l.pad_top >= 0 && l.pad_left >= 0 && l.pad_bottom >= 0 && l.pad_right >= 0,
                              "pads must be >= 0"));
  *oh = PooledSize(x[2], l.kernel_h, l.stride_h, l.pad_top, l.pad_bottom, l.dilation_h, l.ceil_mode);
  *ow = PooledSize(x[3], l.kernel_w, l.stride_w, l.pad_left, l.pad_right, l.dilation_w, l.ceil_mode);
  return Expect(*oh > 0 && *ow > 0, "kernel larger than the padded input " + ShapeToString(x));
}

// The left and right operands of an element-wise binary layer.
Status BinaryOperandShapes(const Layer& l, const std::vector<const Shape*>& in, Shape* a, Shape* b) {
  if (in.size() == 2 && l.weights.empty()) {
    *a = *in[0], *b = *in[1];
    return Status::Ok();
  }
  if (in.size() == 1 && l.weights.size() == 1) {
    *a = l.weight_first ? l.weights[0].shape : *in[0];
    *b = l.weight_first ? *in[0] : l.weights[0].shape;
    return Status::Ok();
  }
  return Status::Invalid("needs two inputs, or one input and one constant operand");
}

}  // namespace

Status Broadcast(const Shape& a, const Shape& b, Shape* out) {
  const size_t rank = std::max(a.size(), b.size());
  Shape s(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t x = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t y = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (x != y && x != 1 && y != 1) {
      return Status::Invalid("shapes " + ShapeToString(a) + " and " + ShapeToString(b) + " do not broadcast");
    }
    s[i] = x == 1 ? y : x;
  }
  *out = std::move(s);
  return Status::Ok();
}

Status InferLayerShape(const Layer& layer, const std::vector<const Shape*>& in, Shape* out) {
  const Layer& l = layer;
  if (const OpDescriptor* op = FindOp(l.kind)) return op->infer_shape(l, in, out);
  if (!l.attrs.empty()) return Status::Invalid("takes no attributes (a " + std::string(LayerKindName(l.kind)) + ")");
  switch (l.kind) {
    case LayerKind::kSigmoid:
    case LayerKind::kHardSigmoid:
    case LayerKind::kHardSwish:
    case LayerKind::kTranspose:
    case LayerKind::kSlice:
    case LayerKind::kPad:
      IONN_RETURN_IF_ERROR(Expect(l.weights.empty(), "takes no weights"));
      break;
    default:
      break;
  }
  int axis = l.axis;  // negative axes count from the end
  if (!in.empty() && in[0] && axis < 0) axis += static_cast<int>(in[0]->size());
  switch (l.kind) {
    case LayerKind::kConv: {
      IONN_RETURN_IF_ERROR(CheckInputs(in, 1, 1));
      const Shape& x = *in[0];
      IONN_RETURN_IF_ERROR(Expect(!l.ceil_mode, "ceil_mode is a pooling attribute, not a convolution's"));
      int64_t oh, ow;
      IONN_RETURN_IF_ERROR(Spatial(l, x, &oh, &ow));
      IONN_RETURN_IF_ERROR(Expect(l.group > 0 && x[1] % l.group == 0 && l.out_channels % l.group == 0 &&
                                      l.out_channels > 0,
                                  "group " + std::to_string(l.group) + " must divide input channels " +
                                      std::to_string(x[1]) + " and output channels " + std::to_string(l.out_channels)));
      IONN_RETURN_IF_ERROR(CheckWeight(l, 0, {l.out_channels, x[1] / l.group, l.kernel_h, l.kernel_w}, "weight"));
      if (l.weights.size() > 1) IONN_RETURN_IF_ERROR(CheckWeight(l, 1, {l.out_channels}, "bias"));
      IONN_RETURN_IF_ERROR(Expect(l.weights.size() <= 2, "too many weights"));
      *out = {x[0], l.out_channels, oh, ow};
      return Status::Ok();
    }
    case LayerKind::kMaxPool:
    case LayerKind::kAvgPool: {
      IONN_RETURN_IF_ERROR(CheckInputs(in, 1, 1));
      int64_t oh, ow;
      IONN_RETURN_IF_ERROR(Spatial(l, *in[0], &oh, &ow));
      *out = {(*in[0])[0], (*in[0])[1], oh, ow};
      return Status::Ok();
    }
    case LayerKind::kGlobalAvgPool:
      IONN_RETURN_IF_ERROR(CheckInputs(in, 1, 1));
      IONN_RETURN_IF_ERROR(Expect(in[0]->size() == 4, "input must be 4-D NCHW"));
      *out = {(*in[0])[0], (*in[0])[1], 1, 1};
      return Status::Ok();
    case LayerKind::kFc: {
      IONN_RETURN_IF_ERROR(CheckInputs(in, 1, 1));
      const Shape& x = *in[0];
      IONN_RETURN_IF_ERROR(Expect(x.size() >= 2, "input must be at least 2-D"));
      const int64_t features = ElementCount(x) / x[0];
      IONN_RETURN_IF_ERROR(CheckWeight(l, 0, {l.out_channels, features}, "weight"));
      if (l.weights.size() > 1) IONN_RETURN_IF_ERROR(CheckWeight(l, 1, {l.out_channels}, "bias"));
      *out = {x[0], l.out_channels};
      return Status::Ok();
    }
    case LayerKind::kFlatten: {
      IONN_RETURN_IF_ERROR(CheckInputs(in, 1, 1));
      const Shape& x = *in[0];
      IONN_RETURN_IF_ERROR(Expect(axis >= 0 && axis <= static_cast<int>(x.size()), "axis out of range"));
      int64_t a = 1, b = 1;
      for (size_t i = 0; i < x.size(); ++i) (static_cast<int>(i) < axis ? a : b) *= x[i];
      *out = {a, b};
      return Status::Ok();
    }
    case LayerKind::kReshape: {
      IONN_RETURN_IF_ERROR(CheckInputs(in, 1, 1));
      const Shape& x = *in[0];
      Shape s = l.reshape_to;
      int infer = -1;
      int64_t known = 1;
      for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == 0) {
          IONN_RETURN_IF_ERROR(Expect(i < x.size(), "shape copies a dimension the input lacks"));
          s[i] = x[i];
        }
        if (s[i] == -1) {
          IONN_RETURN_IF_ERROR(Expect(infer < 0, "more than one -1 in the target shape"));
          infer = static_cast<int>(i);
        } else {
          IONN_RETURN_IF_ERROR(Expect(s[i] > 0 && known <= kMaxTensorElements / s[i],
                                      "bad target shape " + ShapeToString(l.reshape_to)));
          known *= s[i];
        }
      }
      if (infer >= 0) s[infer] = ElementCount(x) / known;
      IONN_RETURN_IF_ERROR(Expect(ElementCount(s) == ElementCount(x),
                                  "cannot reshape " + ShapeToString(x) + " to " + ShapeToString(l.reshape_to)));
      *out = s;
      return Status::Ok();
    }
    case LayerKind::kConcat: {
      IONN_RETURN_IF_ERROR(CheckInputs(in, 1, 64));
      Shape s = *in[0];
      IONN_RETURN_IF_ERROR(Expect(axis >= 0 && axis < static_cast<int>(s.size()), "axis out of range"));
      for (size_t i = 1; i < in.size(); ++i) {
        const Shape& y = *in[i];
        bool same = y.size() == s.size();
        for (size_t d = 0; same && d < s.size(); ++d) same = static_cast<int>(d) == axis || y[d] == s[d];
        IONN_RETURN_IF_ERROR(Expect(same, "input " + std::to_string(i) + " has shape " + ShapeToString(y) +
                                              ", incompatible with " + ShapeToString(*in[0])));
        s[axis] += y[axis];
      }
      *out = s;
      return Status::Ok();
    }
    case LayerKind::kAdd:
    case LayerKind::kMul:
    case LayerKind::kSub:
    case LayerKind::kDiv: {
      Shape a, b;
      IONN_RETURN_IF_ERROR(BinaryOperandShapes(l, in, &a, &b));
      IONN_RETURN_IF_ERROR(Broadcast(a, b, out));
      return Expect(out->size() <= 8, "more than 8 dimensions");
    }
    case LayerKind::kTranspose: {
      IONN_RETURN_IF_ERROR(CheckInputs(in, 1, 1));
      const Shape& x = *in[0];
      IONN_RETURN_IF_ERROR(Expect(l.perm.size() == x.size() && !x.empty() && x.size() <= 8,
                                  "perm " + ShapeToString(l.perm) + " does not fit input " + ShapeToString(x) +
                                      " (1 to 8 axes)"));
      std::vector<bool> seen(x.size(), false);
      Shape s;
      for (int64_t p : l.perm) {
        IONN_RETURN_IF_ERROR(Expect(p >= 0 && p < static_cast<int64_t>(x.size()) && !seen[p],
                                    "perm " + ShapeToString(l.perm) + " is not a permutation"));
        seen[p] = true;
        s.push_back(x[p]);
      }
      *out = s;
      return Status::Ok();
    }
    case LayerKind::kPad: {
      IONN_RETURN_IF_ERROR(CheckInputs(in, 1, 1));
      const Shape& x = *in[0];
      IONN_RETURN_IF_ERROR(Expect(x.size() == 4, "input must be 4-D NCHW"));
      IONN_RETURN_IF_ERROR(Expect(l.pad_top >= 0 && l.pad_left >= 0 && l.pad_bottom >= 0 && l.pad_right >= 0,
                                  "pads must be >= 0"));
      IONN_RETURN_IF_ERROR(Expect(!std::isnan(l.pad_value), "the pad value is NaN"));
      *out = {x[0], x[1], x[2] + l.pad_top + l.pad_bottom, x[3] + l.pad_left + l.pad_right};
      return Status::Ok();
    }
    case LayerKind::kSlice: {
      IONN_RETURN_IF_ERROR(CheckInputs(in, 1, 1));
      const Shape& x = *in[0];
      IONN_RETURN_IF_ERROR(Expect(l.axis >= 0 && l.axis < static_cast<int>(x.size()), "axis out of range"));
      IONN_RETURN_IF_ERROR(Expect(0 <= l.slice_begin && l.slice_begin < l.slice_end && l.slice_end <= x[l.axis],
                                  "slice [" + std::to_string(l.slice_begin) + ", " + std::to_string(l.slice_end) +
                                      ") is empty or outside axis " + std::to_string(l.axis) + " of " +
                                      ShapeToString(x)));
      *out = x;
      (*out)[l.axis] = l.slice_end - l.slice_begin;
      return Status::Ok();
    }
    case LayerKind::kBatchNorm:
    case LayerKind::kScale: {
      IONN_RETURN_IF_ERROR(CheckInputs(in, 1, 1));
      IONN_RETURN_IF_ERROR(Expect(in[0]->size() >= 2, "input must be at least 2-D"));
      const int64_t c = (*in[0])[1];
      IONN_RETURN_IF_ERROR(Expect(l.weights.size() == 4, "needs 4 weights (scale, bias, mean, var)"));
      for (size_t i = 0; i < 4; ++i) {
        IONN_RETURN_IF_ERROR(CheckWeight(l, i, {c}, "batch-norm parameter"));
      }
      *out = *in[0];
      return Status::Ok();
    }
    case LayerKind::kLrn:
      IONN_RETURN_IF_ERROR(CheckInputs(in, 1, 1));
      IONN_RETURN_IF_ERROR(Expect(in[0]->size() == 4 && l.lrn_size > 0, "needs 4-D input and size > 0"));
      *out = *in[0];
      return Status::Ok();
    case LayerKind::kSoftmax:
      IONN_RETURN_IF_ERROR(CheckInputs(in, 1, 1));
      IONN_RETURN_IF_ERROR(Expect(axis >= 0 && axis < static_cast<int>(in[0]->size()), "axis out of range"));
      *out = *in[0];
      return Status::Ok();
    case LayerKind::kRelu:
    case LayerKind::kClip:
    case LayerKind::kSigmoid:
    case LayerKind::kHardSigmoid:
    case LayerKind::kHardSwish:
    case LayerKind::kDropout:
      IONN_RETURN_IF_ERROR(CheckInputs(in, 1, 1));
      *out = *in[0];
      return Status::Ok();
#define IONN_OP_CASE(e, onnx, caffe) case LayerKind::e:
      IONN_OP_KINDS(IONN_OP_CASE)  // their descriptors, above
#undef IONN_OP_CASE
      break;
  }
  return Status::Internal("unknown layer kind");
}

}  // namespace ionn
