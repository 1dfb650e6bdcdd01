// The layer graph IR: layers with their kind, attributes and weights, one
// output tensor per layer (named like the layer), in one topological order.
// A Graph is plain data; Finalize() validates it and infers every shape, and
// the rest of ionn only reads graphs that passed it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ionn/status.h"

namespace ionn {

// One list of layer kinds: enum name, ONNX operator, IONN/Caffe layer type
// (which per-type server prediction function applies).
#define IONN_LAYER_KINDS(X)                            \
  X(kConv, "Conv", "Convolution")                      \
  X(kRelu, "Relu", "ReLU")                             \
  X(kClip, "Clip", "ReLU")                             \
  X(kLrn, "LRN", "LRN")                                \
  X(kMaxPool, "MaxPool", "Pooling")                    \
  X(kAvgPool, "AveragePool", "Pooling")                \
  X(kGlobalAvgPool, "GlobalAveragePool", "Pooling")    \
  X(kFc, "Gemm", "InnerProduct")                       \
  X(kFlatten, "Flatten", "Flatten")                    \
  X(kReshape, "Reshape", "Reshape")                    \
  X(kDropout, "Dropout", "Dropout")                    \
  X(kSoftmax, "Softmax", "Softmax")                    \
  X(kConcat, "Concat", "Concat")                       \
  X(kAdd, "Add", "Eltwise")                            \
  X(kBatchNorm, "BatchNormalization", "BatchNorm")     \
  X(kScale, "BatchNormalization", "Scale")             \
  X(kSigmoid, "Sigmoid", "Sigmoid")                    \
  X(kHardSigmoid, "HardSigmoid", "Sigmoid")            \
  X(kHardSwish, "HardSwish", "Sigmoid")                \
  X(kMul, "Mul", "Eltwise")                            \
  X(kSub, "Sub", "Eltwise")                            \
  X(kDiv, "Div", "Eltwise")                            \
  X(kTranspose, "Transpose", "Permute")                \
  X(kSlice, "Slice", "Slice")                          \
  X(kPad, "Pad", "Padding")                            \
  IONN_OP_KINDS(X)

// The kinds defined each in one place: a descriptor (ionn/op.h; ONNX import
// and export, attribute checks and shape, prediction variable, calibration
// layers) in src/graph/ops/<kind>.cc and a kernel in
// src/engine/kernels/<kind>.cc, both found through this list. Their
// attributes are Layer::attrs. A new kind is a row here and those two files.
#define IONN_OP_KINDS(X)                          \
  X(kResize, "Resize", "Interp")                  \
  X(kTanh, "Tanh", "TanH")                        \
  X(kLeakyRelu, "LeakyRelu", "ReLU")              \
  X(kElu, "Elu", "ELU")                           \
  X(kSelu, "Selu", "SELU")                        \
  X(kCelu, "Celu", "CELU")                        \
  X(kThresholdedRelu, "ThresholdedRelu", "ThresholdedReLU") \
  X(kExp, "Exp", "Exp")                           \
  X(kLog, "Log", "Log")                           \
  X(kNeg, "Neg", "Power")                         \
  X(kAbs, "Abs", "AbsVal")                        \
  X(kSqrt, "Sqrt", "Power")                       \
  X(kReciprocal, "Reciprocal", "Power")           \
  X(kErf, "Erf", "Erf")                           \
  X(kSoftplus, "Softplus", "BNLL")                \
  X(kSoftsign, "Softsign", "Softsign")            \
  X(kFloor, "Floor", "Floor")                     \
  X(kCeil, "Ceil", "Floor")                       \
  X(kPRelu, "PRelu", "PReLU")                     \
  X(kReduceMean, "ReduceMean", "Pooling")         \
  X(kReduceSum, "ReduceSum", "Pooling")           \
  X(kReduceMax, "ReduceMax", "Pooling")           \
  X(kReduceMin, "ReduceMin", "Pooling")           \
  X(kInstanceNorm, "InstanceNormalization", "InstanceNorm") \
  X(kPow, "Pow", "Power")                         \
  X(kLayerNorm, "LayerNormalization", "LayerNorm") \
  X(kMatMul, "MatMul", "InnerProduct")           \
  X(kGather, "Gather", "Slice")                   \
  X(kConcatConstants, "ConcatWithConstants", "Concat") \
  X(kStridedSlice, "StridedSlice", "Slice")      \
  X(kMax, "Max", "Eltwise")                       \
  X(kMin, "Min", "Eltwise")                       \
  X(kConvTranspose, "ConvTranspose", "Deconvolution")

enum class LayerKind {
#define IONN_KIND_ENUM(e, onnx, caffe) e,
  IONN_LAYER_KINDS(IONN_KIND_ENUM)
#undef IONN_KIND_ENUM
};

const char* LayerKindName(LayerKind kind);  // "Conv", ... (kScale: "Scale")
const char* LayerKindCaffeType(LayerKind kind);

using Shape = std::vector<int64_t>;
// Tensors and weights larger than this are rejected (2^32 floats, 16 GiB).
constexpr int64_t kMaxTensorElements = int64_t{1} << 32;
// The number of elements, or -1 for a negative dimension or more than
// kMaxTensorElements.
int64_t ElementCount(const Shape& shape);
std::string ShapeToString(const Shape& shape);

// An attribute of a kind in IONN_OP_KINDS: integers, floats or a string,
// as its descriptor defines.
struct LayerAttr {
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::string text;
  bool operator==(const LayerAttr& o) const { return ints == o.ints && floats == o.floats && text == o.text; }
};
using LayerAttrs = std::map<std::string, LayerAttr>;

struct Weight {
  std::string name;
  Shape shape;
  std::vector<float> data;  // row-major, ElementCount(shape) values; empty = shape only
};

struct Layer {
  std::string name;  // also the name of its output tensor
  LayerKind kind = LayerKind::kRelu;
  std::vector<std::string> inputs;  // graph inputs or earlier layers

  // Convolution and pooling (2-D, NCHW).
  int kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1, group = 1;
  bool ceil_mode = false;
  bool count_include_pad = false;  // average pooling
  int out_channels = 0;            // convolution and fully connected
  // LRN, batch normalization, clip, softmax/concat/flatten axis, reshape.
  int lrn_size = 5;
  float lrn_alpha = 1e-4f, lrn_beta = 0.75f, lrn_bias = 1.0f;
  float epsilon = 1e-5f;
  float clip_min = 0, clip_max = 6;
  int axis = 1;
  bool softmax_coerce_2d = false;  // ONNX opset < 13 semantics
  Shape reshape_to;
  // HardSigmoid: y = max(0, min(1, alpha * x + beta)).
  float alpha = 0.2f, beta = 0.5f;
  // Add, Mul, Sub, Div (numpy broadcasting): two inputs, or one input and a
  // constant operand in weights[0], the left one when weight_first.
  bool weight_first = false;
  Shape perm;  // Transpose: output axis i is input axis perm[i]
  // Slice: along `axis`, elements [slice_begin, slice_end), step 1.
  int64_t slice_begin = 0, slice_end = 0;
  float pad_value = 0;  // Pad (constant mode): pads H and W by pad_top, ... with this value
  // The kinds in IONN_OP_KINDS keep their attributes here, by name; their
  // descriptor checks them (Graph::Finalize) and says what each means.
  LayerAttrs attrs;

  // Convolution: W [out, in/group, kh, kw], optional B [out].
  // Fully connected: W [out, in], optional B [out].
  // Batch norm and scale: gamma, beta, mean, var [C].
  // Add, Mul, Sub, Div with a constant operand: that constant.
  std::vector<Weight> weights;

  Shape output_shape;  // set by Graph::Finalize
};

struct GraphInput {
  std::string name;
  Shape shape;
};

struct Graph {
  std::string name;
  std::vector<GraphInput> inputs;
  std::vector<Layer> layers;
  std::vector<std::string> outputs;  // layer names

  // Checks names, references, order, attributes and weight shapes, and
  // infers every output shape. Errors name the layer and what is wrong.
  Status Finalize();

  int FindLayer(const std::string& name) const;  // -1 when absent
  // The shape of a graph input or a layer output; nullptr when unknown.
  const Shape* TensorShape(const std::string& name) const;
  int64_t ParameterCount() const;
};

// A convolution's window without the kernel taps that read only zero
// padding at every output position: the same function with fewer
// multiplies (DeepLab's ASPP: 3x3 taps of dilation 24 on a 14x14 map,
// where only the centre one reads the input). The taps kept are rows
// [first_row, first_row + kernel_h) and columns [first_col, first_col +
// kernel_w) of the layer's kernel; the padding moves so that the output
// is the same. `trimmed` false: the layer's own window. For a layer that
// passed Graph::Finalize and its input shape; engine and cost model both
// use it.
struct ConvWindow {
  int kernel_h = 1, kernel_w = 1, pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1;
  int first_row = 0, first_col = 0;
  bool trimmed = false;
};
ConvWindow ReadingConvWindow(const Layer& conv, const Shape& in);

// numpy's matmul of shapes a [..., M, K] and b [..., K, N] (a 1-D a is
// [1, K], a 1-D b [K, 1]): the output shape and M, K, N; an error when
// they do not multiply. MatMul's shape (src/graph/ops/matmul.cc) and kernel.
Status MatMulShapes(const Shape& a, const Shape& b, Shape* out, int64_t* m, int64_t* k, int64_t* n);

// Numpy's broadcasting of w to shape `to` (right-aligned; w's axes of size 1
// repeat, leading ones beyond `to`'s rank dropped): w holds `to`'s values
// after. False, w unchanged, when it does not broadcast or holds no data.
bool BroadcastWeightTo(Weight* w, const Shape& to);

// Replaces each LayerNorm written as its parts (ReduceMean over the last
// axes, Sub, Pow 2 or Mul, ReduceMean, Add epsilon, Sqrt, Div, and a
// constant Mul and Add after them when present) by one kLayerNorm layer
// named as the pattern's last, where no part is read from outside it;
// returns how many. For a finalized graph; it stays finalized.
int FuseLayerNorm(Graph* graph);

// Parameters as Caffe stores them (what a client uploads): BatchNorm counts
// its mean and variance, Scale its gamma and beta.
int64_t LayerParameterCount(const Layer& layer);
int64_t LayerWeightBytes(const Layer& layer);  // float32 parameters
int64_t TensorBytes(const Shape& shape);  // float32

}  // namespace ionn
