// ONNX import and export (the ModelProto schema of Debian's libonnx-dev).
// Import accepts opsets 7 to 17 for the layer kinds of graph.h; anything
// else, a dangling tensor, a bad shape or a truncated file is an error that
// names the node. The result has passed Graph::Finalize.
#pragma once

#include <string>

#include "ionn/graph.h"

namespace ionn {

Result<Graph> ParseOnnx(const std::string& bytes);
Result<Graph> ReadOnnxFile(const std::string& path);

// Writes opset 11. A fully connected layer on a 4-D input becomes Flatten +
// Gemm (the Flatten is folded back on import); Caffe's Scale becomes a
// BatchNormalization with mean 0, variance 1 and epsilon 0, which import
// recognises as a Scale layer again. Every weight must hold its data.
Result<std::string> SerializeOnnx(const Graph& graph);
Status WriteOnnxFile(const Graph& graph, const std::string& path);

}  // namespace ionn
