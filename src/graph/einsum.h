// Internal to the graph part: ONNX's Einsum (opset 12) of one or two
// operands, as the layers the engine already runs. One operand: ReduceSum
// over the indices the output drops, then Transpose. Two: each operand's
// own summed indices reduced, each transposed to [batch, free, contracted]
// (the right one [batch, contracted, free]) and reshaped to [batch..., M, K]
// and [batch..., K, N], one MatMul, then Reshape and Transpose into the
// output's order. Steps that change nothing are left out.
//
// Refused (Unsupported): more than two operands, an index repeated within
// one operand (a diagonal), broadcast (ellipsis) axes the output drops or
// contracts with different sizes. The planning is pure: import turns the
// plan into layers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ionn/graph.h"
#include "ionn/status.h"

namespace ionn {

// What one operand goes through before the product. Empty fields: no step.
struct EinsumOperandSteps {
  std::vector<int64_t> reduce_axes;  // ReduceSum, keepdims 0 (ascending)
  Shape perm;                        // then Transpose
  Shape reshape;                     // then Reshape to this
};

struct EinsumPlan {
  // Two operands: multiply operand `left` (0 or 1) by the other; the plan
  // puts a constant operand on the right, where MatMul takes a weight.
  int left = 0;
  EinsumOperandSteps operand[2];  // indexed by operand, not by side
  std::optional<Shape> product_reshape;  // after the MatMul ([] for a scalar)
  Shape output_perm;              // last: Transpose into the output's order
  Shape output;                   // the output's shape
};

// `equation` as the node's attribute; `shapes` those of its inputs;
// `constant[i]` whether input i is known at import. Errors say what is
// wrong with the equation (import adds the node).
Result<EinsumPlan> PlanEinsum(const std::string& equation, const std::vector<Shape>& shapes,
                              const std::vector<bool>& constant);

}  // namespace ionn
