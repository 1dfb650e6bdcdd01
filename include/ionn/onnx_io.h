// ONNX import and export (the ModelProto schema of Debian's libonnx-dev).
// Import accepts opsets 7 to 18 for the operators of OnnxOpArities() below
// (and opsets 1 to 6 for those few whose rows start there: their definition
// has not changed since);
// anything else, a dangling tensor, a bad shape, a node with the wrong number
// of inputs or outputs, an attribute of the wrong type or a truncated file is
// an error (never a crash) with a one-line message that names the node:
// "node 3 'conv1' (Conv): has 1 input, expects 2 to 3". The result has
// passed Graph::Finalize.
#pragma once

#include <climits>
#include <map>
#include <string>
#include <vector>

#include "ionn/graph.h"

namespace ionn {

// How many inputs and outputs a node of an ONNX operator may list, as the
// ONNX spec counts them (optional trailing ones included; an optional one in
// the middle is listed as ""). A row holds from its opset until the next row
// of the same operator.
struct OnnxOpArity {
  const char* op_type;
  int since_opset;
  int min_inputs, max_inputs;  // max_inputs kOnnxVariadic: no upper bound
  int min_outputs, max_outputs;
};
constexpr int kOnnxVariadic = INT_MAX;

// The operators of the kinds defined the older way (graph.h's
// IONN_LAYER_KINDS before IONN_OP_KINDS) and of the values import folds, in
// opsets 7 to 18. Import checks every node against its row
// (OnnxOpArities()) before it reads any input, output or attribute.
inline constexpr OnnxOpArity kOnnxOpArities[] = {
    // op_type, since opset, inputs min and max, outputs min and max
    {"Constant", 7, 0, 0, 1, 1},  // its value becomes an initializer
    {"Conv", 7, 2, 3, 1, 1},
    {"Relu", 7, 1, 1, 1, 1},
    {"Clip", 7, 1, 1, 1, 1},   // min and max are attributes
    {"Clip", 11, 1, 3, 1, 1},  // min and max are inputs
    {"LRN", 7, 1, 1, 1, 1},
    {"MaxPool", 7, 1, 1, 1, 1},
    {"MaxPool", 8, 1, 1, 1, 2},  // + Indices (rejected when named)
    {"AveragePool", 7, 1, 1, 1, 1},
    {"GlobalAveragePool", 7, 1, 1, 1, 1},
    {"Gemm", 7, 3, 3, 1, 1},  // C is required
    {"Gemm", 11, 2, 3, 1, 1},
    {"Flatten", 7, 1, 1, 1, 1},
    {"Reshape", 7, 2, 2, 1, 1},
    {"Dropout", 7, 1, 1, 1, 2},   // + mask (left undefined: reading it is an error)
    {"Dropout", 12, 1, 3, 1, 2},  // + ratio, training_mode (ignored)
    {"Softmax", 7, 1, 1, 1, 1},
    {"Add", 7, 2, 2, 1, 1},
    {"Sum", 7, 1, kOnnxVariadic, 1, 1},  // Sum, Max, Min, Mean: a chain of two-operand layers
    {"Max", 8, 1, kOnnxVariadic, 1, 1},
    {"Min", 8, 1, kOnnxVariadic, 1, 1},
    {"Mean", 8, 1, kOnnxVariadic, 1, 1},
    {"BatchNormalization", 7, 5, 5, 1, 5},  // + training outputs (rejected when named)
    {"BatchNormalization", 14, 5, 5, 1, 3},
    {"Identity", 7, 1, 1, 1, 1},
    {"Sigmoid", 7, 1, 1, 1, 1},
    {"HardSigmoid", 7, 1, 1, 1, 1},
    {"HardSwish", 14, 1, 1, 1, 1},
    {"Mul", 7, 2, 2, 1, 1},
    {"Sub", 7, 2, 2, 1, 1},
    {"Div", 7, 2, 2, 1, 1},
    {"Transpose", 7, 1, 1, 1, 1},
    {"Split", 7, 1, 1, 1, kOnnxVariadic},  // split: an attribute
    {"Split", 13, 1, 2, 1, kOnnxVariadic},  // split: an input
    {"Slice", 7, 1, 1, 1, 1},   // starts, ends, axes: attributes
    {"Slice", 10, 3, 5, 1, 1},  // starts, ends, axes, steps: inputs
    {"Squeeze", 7, 1, 1, 1, 1},   // axes: an attribute
    {"Squeeze", 13, 1, 2, 1, 1},  // axes: an input
    {"Pad", 7, 1, 1, 1, 1},   // pads and value: attributes
    {"Pad", 11, 2, 3, 1, 1},  // pads and constant_value: inputs
    {"Pad", 18, 2, 4, 1, 1},  // and axes
    {"Unsqueeze", 7, 1, 1, 1, 1},
    {"Unsqueeze", 13, 2, 2, 1, 1},
    {"Einsum", 12, 1, kOnnxVariadic, 1, 1},  // run as Transpose, Reshape, ReduceSum and MatMul layers
    // Only on values known at import (shapes and constants): folded away.
    {"Shape", 7, 1, 1, 1, 1},
    {"Cast", 7, 1, 1, 1, 1},
    {"ConstantOfShape", 9, 1, 1, 1, 1},
    {"Equal", 7, 2, 2, 1, 1},
    {"Less", 7, 2, 2, 1, 1},
    {"Greater", 7, 2, 2, 1, 1},
    {"And", 7, 2, 2, 1, 1},
    {"Or", 7, 2, 2, 1, 1},
    {"Not", 1, 1, 1, 1, 1},
    {"Mod", 10, 2, 2, 1, 1},
    {"Where", 9, 3, 3, 1, 1},
    {"Expand", 8, 2, 2, 1, 1},
    {"Range", 11, 3, 3, 1, 1},
    {"ScatterND", 11, 3, 3, 1, 1},
};

// Every operator import accepts: kOnnxOpArities's rows, then those of the
// kinds defined in one place (ionn/op.h, OpDescriptor::onnx).
const std::vector<OnnxOpArity>& OnnxOpArities();

// The row of OnnxOpArities() for op_type at opset; nullptr when import does
// not accept the operator or the opset is below its first row.
const OnnxOpArity* FindOnnxOpArity(const std::string& op_type, int opset);

// What the user says about a model that its file leaves open.
struct OnnxImportOptions {
  // The full shape of graph inputs (initializers are not inputs here), by
  // name; the key "" alone gives the shape of a model's only graph input.
  // A given shape must have the input's rank and agree with each of its
  // fixed dimensions; a name that is not a graph input is an error.
  std::map<std::string, Shape> input_shapes;
};

// A graph input's symbolic dimension (dim_param, or neither value nor
// param) takes its size from options.input_shapes. Without a given shape,
// the first dimension of an input of rank 2 or more (the batch, whatever
// its dim_param) is 1, and any other symbolic dimension is an error:
// "input 'x' has symbolic dimensions [N,3,H,W] (H at 2, W at 3): give its
// shape with --input-shape x=1x3x224x224".
Result<Graph> ParseOnnx(const std::string& bytes, const OnnxImportOptions& options = {});
Result<Graph> ReadOnnxFile(const std::string& path, const OnnxImportOptions& options = {});

// Writes opset 11 (12 for a graph with Celu). A fully connected layer on a 4-D input becomes Flatten +
// Gemm (the Flatten is folded back on import); Caffe's Scale becomes a
// BatchNormalization with mean 0, variance 1 and epsilon 0, which import
// recognises as a Scale layer again. Every weight must hold its data.
Result<std::string> SerializeOnnx(const Graph& graph);
Status WriteOnnxFile(const Graph& graph, const std::string& path);

}  // namespace ionn
