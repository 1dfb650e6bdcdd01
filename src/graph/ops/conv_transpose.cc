// ConvTranspose (opset 1 on), 2-D (import runs a 1-D one as 2-D over
// [N, C, 1, L]): the gradient of a convolution, which
// upsamples. x [N, C, H, W], weight W [C, M/group, kh, kw], optional bias
// [M]; every input pixel adds x * W's tap at (ih * stride - pad_top +
// kh * dilation, ...). Output [N, M, (H - 1) * stride + (kh - 1) *
// dilation + 1 - pad_top - pad_bottom, ...].
//
// Attributes, as import resolves ONNX's: kernel [kh, kw], strides,
// dilations, group [g], and pads [top, left, bottom, right], where the end
// pads already have output_padding taken off (so may be negative: rows
// past what any input reaches, which hold the bias alone; output_shape may
// ask for more of them) and auto_pad and output_shape are turned into pads
// as the ONNX spec says.
#include <algorithm>

#include "ionn/op.h"
#include "onnx_node.h"

namespace ionn {
namespace {

// The output size along one axis, for input size `in`.
int64_t OutputSize(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t pad_begin, int64_t pad_end) {
  return (in - 1) * stride + (kernel - 1) * dilation + 1 - pad_begin - pad_end;
}

Status Import(OnnxNodeReader& node, Layer* l) {
  if (node.Known(0)) return Status::Unsupported("ConvTranspose of a constant input");
  IONN_RETURN_IF_ERROR(node.AddInput(0));
  IONN_RETURN_IF_ERROR(node.AddWeight(1, "weight"));
  if (node.HasInput(2)) IONN_RETURN_IF_ERROR(node.AddWeight(2, "bias"));
  IONN_ASSIGN_OR_RETURN(Shape x, node.InputShape(0));
  const Shape& w = l->weights[0].shape;
  if (x.size() != 4 || w.size() != 4) {
    return Status::Unsupported("only 1-D and 2-D ConvTranspose (input [N, C, L] or [N, C, H, W]), input is " + ShapeToString(x) +
                               ", weight " + ShapeToString(w));
  }
  IONN_ASSIGN_OR_RETURN(std::vector<int64_t> kernel, node.Ints("kernel_shape", {w[2], w[3]}));
  IONN_ASSIGN_OR_RETURN(std::vector<int64_t> strides, node.Ints("strides", {1, 1}));
  IONN_ASSIGN_OR_RETURN(std::vector<int64_t> dilations, node.Ints("dilations", {1, 1}));
  IONN_ASSIGN_OR_RETURN(std::vector<int64_t> pads, node.Ints("pads", {0, 0, 0, 0}));
  IONN_ASSIGN_OR_RETURN(std::vector<int64_t> output_padding, node.Ints("output_padding", {0, 0}));
  IONN_ASSIGN_OR_RETURN(std::vector<int64_t> output_shape, node.Ints("output_shape", {}));
  IONN_ASSIGN_OR_RETURN(int64_t group, node.Int("group", 1));
  IONN_ASSIGN_OR_RETURN(std::string auto_pad, node.String("auto_pad", "NOTSET"));
  auto two = [](const std::vector<int64_t>& v, const char* name) -> Status {
    if (v.size() != 2) return Status::Invalid(std::string(name) + " must have 2 values, has " + std::to_string(v.size()));
    return Status::Ok();
  };
  IONN_RETURN_IF_ERROR(two(kernel, "kernel_shape"));
  IONN_RETURN_IF_ERROR(two(strides, "strides"));
  IONN_RETURN_IF_ERROR(two(dilations, "dilations"));
  IONN_RETURN_IF_ERROR(two(output_padding, "output_padding"));
  if (pads.size() != 4) return Status::Invalid("pads must have 4 values, has " + std::to_string(pads.size()));
  if (kernel[0] != w[2] || kernel[1] != w[3]) {
    return Status::Invalid("kernel_shape " + ShapeToString(kernel) + " differs from the weight's " + ShapeToString(w));
  }
  for (int d = 0; d < 2; ++d) {
    if (strides[d] < 1 || strides[d] > 1024 || dilations[d] < 1 || dilations[d] > 1024) {
      return Status::Invalid("strides and dilations must be 1 to 1024, are " + ShapeToString(strides) + " and " +
                             ShapeToString(dilations));
    }
    if (output_padding[d] < 0 || output_padding[d] >= std::max(strides[d], dilations[d])) {
      return Status::Invalid("output_padding " + ShapeToString(output_padding) +
                             " must be below the stride or the dilation (" + ShapeToString(strides) + ", " +
                             ShapeToString(dilations) + ")");
    }
  }
  for (int64_t p : pads) {
    if (p < 0 || p > (int64_t{1} << 20)) return Status::Invalid("pads must be 0 to 2^20, are " + ShapeToString(pads));
  }
  if (auto_pad != "NOTSET" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER" && auto_pad != "VALID") {
    return Status::Invalid("auto_pad '" + auto_pad.substr(0, 32) + "' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID");
  }
  // ONNX: output_shape (or SAME's input * stride) sets the total padding,
  // split with the odd one at the end for SAME_UPPER, at the start otherwise.
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    if (output_shape.empty()) output_shape = {x[2] * strides[0], x[3] * strides[1]};
  } else if (auto_pad == "VALID") {
    pads = {0, 0, 0, 0};
  }
  if (!output_shape.empty()) {
    if (output_shape.size() == 4) output_shape = {output_shape[2], output_shape[3]};  // given with N and C
    IONN_RETURN_IF_ERROR(two(output_shape, "output_shape"));
    for (int d = 0; d < 2; ++d) {
      const int64_t full = OutputSize(x[2 + d], kernel[d], strides[d], dilations[d], 0, 0) + output_padding[d];
      const int64_t total = full - output_shape[d];
      if (output_shape[d] < 1 || output_shape[d] > (int64_t{1} << 24)) {
        return Status::Invalid("output_shape " + ShapeToString(output_shape) + " must be 1 to 2^24");
      }
      // Larger than the inputs reach: the rows past them hold the bias
      // alone, at the end (as ONNX Runtime's; ONNX's reference splits an
      // odd -1 the same way).
      const bool upper = auto_pad == "SAME_UPPER";
      pads[d] = total < 0 ? 0 : upper ? total / 2 : total - total / 2;
      pads[2 + d] = total - pads[d];
    }
  }
  l->attrs["kernel"].ints = kernel;
  l->attrs["strides"].ints = strides;
  l->attrs["dilations"].ints = dilations;
  l->attrs["group"].ints = {group};
  l->attrs["pads"].ints = {pads[0], pads[1], pads[2] - output_padding[0], pads[3] - output_padding[1]};
  return Status::Ok();
}

Status InferShape(const Layer& l, const std::vector<const Shape*>& in, Shape* out) {
  IONN_RETURN_IF_ERROR(CheckAttrNames(l, {"kernel", "strides", "dilations", "group", "pads"}));
  if (in.size() != 1) return Status::Invalid("expects 1 input, got " + std::to_string(in.size()));
  const Shape& x = *in[0];
  if (x.size() != 4) return Status::Invalid("input must be [N, C, H, W], is " + ShapeToString(x));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* kernel, RequiredAttr(l, "kernel"));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* strides, RequiredAttr(l, "strides"));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* dilations, RequiredAttr(l, "dilations"));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* group, RequiredAttr(l, "group"));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* pads, RequiredAttr(l, "pads"));
  if (kernel->ints.size() != 2 || strides->ints.size() != 2 || dilations->ints.size() != 2 ||
      group->ints.size() != 1 || pads->ints.size() != 4) {
    return Status::Invalid("kernel, strides and dilations take 2 values, group 1, pads 4");
  }
  const int64_t g = group->ints[0];
  if (l.weights.empty() || l.weights.size() > 2) return Status::Invalid("expects a weight and an optional bias");
  const Shape& w = l.weights[0].shape;
  if (g < 1 || x[1] % g != 0) {
    return Status::Invalid("group " + std::to_string(g) + " does not divide the " + std::to_string(x[1]) +
                           " input channels");
  }
  if (w.size() != 4 || w[0] != x[1] || w[1] < 1 || w[2] != kernel->ints[0] || w[3] != kernel->ints[1]) {
    return Status::Invalid("weight " + ShapeToString(w) + " does not fit input " + ShapeToString(x) + " and kernel " +
                           ShapeToString(kernel->ints) + " (expected [C, M/group, kh, kw])");
  }
  const int64_t m = w[1] * g;
  if (l.weights.size() == 2 && l.weights[1].shape != Shape{m}) {
    return Status::Invalid("bias " + ShapeToString(l.weights[1].shape) + " must be [" + std::to_string(m) + "]");
  }
  Shape s = {x[0], m, 0, 0};
  for (int d = 0; d < 2; ++d) {
    const int64_t k = kernel->ints[d], st = strides->ints[d], di = dilations->ints[d];
    const int64_t begin = pads->ints[d], end = pads->ints[2 + d];
    if (k < 1 || k > 1024 || st < 1 || st > 1024 || di < 1 || di > 1024 || begin < 0 || begin > (int64_t{1} << 20) ||
        end > (int64_t{1} << 20) || end < -(int64_t{1} << 24)) {
      return Status::Invalid("kernel, strides, dilations or pads out of range (" + ShapeToString(kernel->ints) + ", " +
                             ShapeToString(strides->ints) + ", " + ShapeToString(dilations->ints) + ", " +
                             ShapeToString(pads->ints) + ")");
    }
    s[2 + d] = OutputSize(x[2 + d], k, st, di, begin, end);
    if (s[2 + d] < 1) return Status::Invalid("the pads leave no output along axis " + std::to_string(2 + d));
  }
  if (ElementCount(s) <= 0) return Status::Invalid("output " + ShapeToString(s) + " is too large");
  *out = s;
  return Status::Ok();
}

// Negative end pads are output_padding where it stays below the stride or
// dilation; past that, output_shape, whose pads import derives back.
Status Export(const Layer& l, OnnxNodeWriter& node) {
  const std::vector<int64_t>& p = l.attrs.at("pads").ints;
  const std::vector<int64_t>& strides = l.attrs.at("strides").ints;
  const std::vector<int64_t>& dilations = l.attrs.at("dilations").ints;
  node.SetInts("kernel_shape", l.attrs.at("kernel").ints);
  node.SetInts("strides", strides);
  node.SetInts("dilations", dilations);
  node.SetInt("group", l.attrs.at("group").ints[0]);
  bool as_padding = true, as_shape = true;
  for (int d = 0; d < 2; ++d) {
    const int64_t begin = p[d], end = p[2 + d], total = begin + end;
    as_padding = as_padding && end > -std::max(strides[d], dilations[d]);
    as_shape = as_shape && begin == (total < 0 ? 0 : total - total / 2);
  }
  if (as_padding) {
    node.SetInts("pads", {p[0], p[1], std::max<int64_t>(p[2], 0), std::max<int64_t>(p[3], 0)});
    node.SetInts("output_padding", {std::max<int64_t>(-p[2], 0), std::max<int64_t>(-p[3], 0)});
    return Status::Ok();
  }
  if (!as_shape) {
    return Status::Unsupported("ConvTranspose pads " + ShapeToString(p) + " have no ONNX form (output_padding or "
                               "output_shape)");
  }
  node.SetInts("output_shape", {l.output_shape[2], l.output_shape[3]});
  return Status::Ok();
}

double RegressionX(const Layer& l, const std::vector<const Shape*>& in) {  // multiply-adds
  const Shape& w = l.weights[0].shape;
  return static_cast<double>(ElementCount(*in[0])) * static_cast<double>(w[1] * w[2] * w[3]);
}

std::vector<CalibrationCase> Calibration(int channels, int hw) {
  CalibrationCase c;  // a decoder's 2x upsampling: 4x4, stride 2, pads 1
  c.layer.kind = LayerKind::kConvTranspose;
  c.layer.attrs["kernel"].ints = {4, 4};
  c.layer.attrs["strides"].ints = {2, 2};
  c.layer.attrs["dilations"].ints = {1, 1};
  c.layer.attrs["group"].ints = {1};
  c.layer.attrs["pads"].ints = {1, 1, 1, 1};
  c.layer.weights = {{"W", {channels, std::max(1, channels / 2), 4, 4}, {}}};
  c.inputs = {{1, channels, std::max(1, hw / 2), std::max(1, hw / 2)}};
  c.fill = {0.01f};
  return {c};
}

}  // namespace

extern const OpDescriptor kConvTransposeOp;
const OpDescriptor kConvTransposeOp = {
    LayerKind::kConvTranspose, {{"ConvTranspose", 1, 2, 3, 1, 1}}, Import, InferShape, Export, RegressionX,
    Calibration,
};

}  // namespace ionn
