// Internal to the graph part: shape inference of one layer.
#pragma once

#include <vector>

#include "ionn/graph.h"

namespace ionn {

// Checks `layer`'s attributes and weight shapes against its input shapes
// and computes its output shape.
Status InferLayerShape(const Layer& layer, const std::vector<const Shape*>& inputs, Shape* output);

// Numpy broadcasting of two shapes: aligned from the last axis, each pair of
// sizes equal or one of them 1.
Status Broadcast(const Shape& a, const Shape& b, Shape* out);

}  // namespace ionn
