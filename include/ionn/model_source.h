// Where a model comes from: an ONNX file or a model of the zoo (zoo.h). The
// one place every command, and later the client, turns that choice into a
// graph.
#pragma once

#include <string>

#include "ionn/graph.h"
#include "ionn/onnx_io.h"

namespace ionn {

// Loads the model of ONNX file `onnx_file` or zoo model `zoo_name` (seed 1);
// exactly one of the two must be non-empty, else InvalidArgument (worded
// for the command line: "give a model file or --zoo NAME"). With
// `with_weights` false a zoo model leaves its weight data empty (shapes
// only: enough for costs and plans, and much faster); an ONNX file always
// comes with the weights it holds. `onnx` applies to a file (ParseOnnx);
// input shapes with a zoo model, whose shapes are fixed, are an error. The
// result has passed Graph::Finalize.
Result<Graph> LoadModel(const std::string& onnx_file, const std::string& zoo_name, bool with_weights,
                        const OnnxImportOptions& onnx = {});

}  // namespace ionn
