// A layer kind in one place. Each kind in IONN_OP_KINDS (graph.h) has one
// descriptor, defined in src/graph/ops/<kind>.cc, that says everything the
// graph, cost and calibration parts need of it: which ONNX operators it
// imports (and with how many inputs and outputs), how it reads a node into
// Layer::attrs, how it checks those attributes and infers its shape, how it
// is written back to ONNX, the variable its server prediction function is
// linear in, and the layers `ionn calibrate` measures to fit that function.
// Its kernel is src/engine/kernels/<kind>.cc. The wire and the content hash
// carry Layer::attrs as they are, so a new kind touches neither.
//
// Descriptors are immutable and live for the whole program; every function
// in them is thread-safe.
#pragma once

#include <string>
#include <vector>

#include "ionn/graph.h"
#include "ionn/onnx_io.h"

namespace ionn {

class OnnxNodeReader;  // src/graph/ops/onnx_node.h: one ONNX node, as import sees it
class OnnxNodeWriter;  // the node export writes

// One layer for `ionn calibrate` to time: weights have shapes only (weight
// k is filled with fill[k]).
struct CalibrationCase {
  Layer layer;
  std::vector<Shape> inputs;
  std::vector<float> fill;
};

struct OpDescriptor {
  LayerKind kind;
  // The ONNX operators it imports, rows as kOnnxOpArities's.
  std::vector<OnnxOpArity> onnx;
  // Reads the node into `layer` (kind and name are set): its inputs (the
  // reader's AddInput) and attrs. Errors name what is wrong, not the node
  // (import adds that). nullptr (and no rows above) for a kind import
  // makes itself from other operators (Max and Min: a chain per node).
  Status (*import)(OnnxNodeReader& node, Layer* layer);
  // Checks layer.attrs (every name it does not know is an error), weights
  // and input shapes, and computes the output shape. `layer` may come from
  // a client: nothing is trusted.
  Status (*infer_shape)(const Layer& layer, const std::vector<const Shape*>& inputs, Shape* output);
  // Writes the layer as ONNX (opset 11): inputs, attributes, constants.
  Status (*export_onnx)(const Layer& layer, OnnxNodeWriter& node);
  // The variable the kind's server prediction function is linear in, for
  // a layer that passed infer_shape.
  double (*regression_x)(const Layer& layer, const std::vector<const Shape*>& inputs);
  // The layers calibration times for an input of `channels` x hw x hw.
  std::vector<CalibrationCase> (*calibration)(int channels, int hw);
};

// The descriptor of `kind`; nullptr for the kinds defined the older way
// (the switches in shape.cc, onnx_io.cc, model_costs.cc and calibrate.cc).
const OpDescriptor* FindOp(LayerKind kind);
// The descriptor that imports ONNX operator `op_type`; nullptr when none.
const OpDescriptor* FindOnnxOp(const std::string& op_type);
// Every descriptor, in IONN_OP_KINDS order. Descriptors are set up before
// main: none of these may be called from another file's static initializer.
const std::vector<const OpDescriptor*>& RegisteredOps();

// For descriptors' infer_shape: a layer's attribute, or an error naming
// it; and that every attribute of `layer` is one of `known`.
Result<const LayerAttr*> RequiredAttr(const Layer& layer, const char* name);
Status CheckAttrNames(const Layer& layer, const std::vector<std::string>& known);

}  // namespace ionn
