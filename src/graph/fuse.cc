// Patterns import turns into one layer: the LayerNorm older exporters write
// as seven operators (PyTorch before opset 17, tf2onnx, ionn's own export).
#include <map>
#include <set>

#include "ionn/graph.h"

namespace ionn {
namespace {

// Past this many normalized elements a pattern is left as it is (its scale
// would be expanded to that size).
constexpr int64_t kMaxNormalized = int64_t{1} << 24;

bool IsReduceMeanOver(const Layer& l, int64_t axis, size_t rank) {
  if (l.kind != LayerKind::kReduceMean) return false;
  auto axes = l.attrs.find("axes"), keep = l.attrs.find("keepdims");
  if (axes == l.attrs.end() || keep == l.attrs.end() || keep->second.ints != std::vector<int64_t>{1}) return false;
  std::vector<int64_t> want;
  for (int64_t d = axis; d < static_cast<int64_t>(rank); ++d) want.push_back(d);
  return axes->second.ints == want;
}

// A constant operand of one value that does not widen `shape` (an Add's
// epsilon on the variance).
bool OneConstant(const Layer& l, LayerKind kind, const Shape& shape, float* value) {
  if (l.kind != kind || l.inputs.size() != 1 || l.weights.size() != 1 || l.weights[0].data.size() != 1 ||
      l.output_shape != shape) {
    return false;
  }
  *value = l.weights[0].data[0];
  return true;
}

// A constant operand that broadcasts within the normalized axes `normalized`
// (a LayerNorm's scale or shift), expanded to that shape into *w.
bool AffineConstant(const Layer& l, LayerKind kind, const Shape& out, const Shape& normalized, Weight* w) {
  if (l.kind != kind || l.inputs.size() != 1 || l.weights.size() != 1 || l.output_shape != out) return false;
  Weight expanded = l.weights[0];
  if (!BroadcastWeightTo(&expanded, normalized)) return false;
  *w = std::move(expanded);
  return true;
}

}  // namespace

int FuseLayerNorm(Graph* g) {
  // One pass: patterns do not share layers (every inner tensor has one
  // reader), so the readers and shapes found first stay true for the others.
  std::map<std::string, std::vector<int>> readers;
  std::map<std::string, const Shape*> shapes;
  for (const GraphInput& in : g->inputs) shapes[in.name] = &in.shape;
  for (size_t k = 0; k < g->layers.size(); ++k) {
    for (const std::string& in : g->layers[k].inputs) readers[in].push_back(static_cast<int>(k));
    shapes[g->layers[k].name] = &g->layers[k].output_shape;
  }
  const std::set<std::string> outputs(g->outputs.begin(), g->outputs.end());
  auto only_reader = [&](int k) -> int {  // the one layer that reads layer k's output, not a graph output
    auto it = readers.find(g->layers[k].name);
    if (it == readers.end() || it->second.size() != 1 || outputs.count(g->layers[k].name)) return -1;
    return it->second[0];
  };
  std::vector<bool> gone(g->layers.size(), false);
  std::vector<Layer> made;  // kept apart until the pass ends: `shapes` points into the layers
  std::vector<int> made_at;
  for (size_t r1 = 0; r1 < g->layers.size(); ++r1) {
    const Layer& mean = g->layers[r1];
    if (gone[r1] || mean.kind != LayerKind::kReduceMean || mean.inputs.size() != 1) continue;
    const std::string& x = mean.inputs[0];
    auto xs_it = shapes.find(x);
    if (xs_it == shapes.end() || xs_it->second->empty()) continue;
    const Shape xs = *xs_it->second;
    auto axes = mean.attrs.find("axes");
    if (axes == mean.attrs.end() || axes->second.ints.empty()) continue;
    const int64_t axis = axes->second.ints[0];
    if (!IsReduceMeanOver(mean, axis, xs.size())) continue;
    const Shape normalized(xs.begin() + axis, xs.end());
    if (ElementCount(normalized) > kMaxNormalized) continue;
    const int sub = only_reader(static_cast<int>(r1));
    if (sub < 0) continue;
    const Layer& centered = g->layers[sub];
    if (centered.kind != LayerKind::kSub || centered.inputs != std::vector<std::string>{x, mean.name} ||
        !centered.weights.empty() || centered.output_shape != xs || outputs.count(centered.name)) {
      continue;
    }
    // The centered tensor feeds the square and the division, nothing else.
    auto it = readers.find(centered.name);
    if (it == readers.end() || it->second.size() < 2 || it->second.size() > 3) continue;
    int square = -1, div = -1;
    bool other = false;
    for (int k : it->second) {
      const Layer& c = g->layers[k];
      const bool pow2 = c.kind == LayerKind::kPow && c.attrs.count("exponent") &&
                        c.attrs.at("exponent").floats == std::vector<float>{2.0f};
      const bool mul = c.kind == LayerKind::kMul && c.weights.empty() &&
                       c.inputs == std::vector<std::string>{centered.name, centered.name};
      if ((pow2 || mul) && (square < 0 || square == k)) {
        square = k;
      } else if (c.kind == LayerKind::kDiv && c.weights.empty() && c.inputs.size() == 2 &&
                 c.inputs[0] == centered.name && div < 0) {
        div = k;
      } else {
        other = true;
      }
    }
    if (other || square < 0 || div < 0 || g->layers[div].output_shape != xs) continue;
    const int var = only_reader(square);
    if (var < 0 || !IsReduceMeanOver(g->layers[var], axis, xs.size())) continue;
    const int add = only_reader(var);
    float epsilon;
    if (add < 0 || !OneConstant(g->layers[add], LayerKind::kAdd, g->layers[var].output_shape, &epsilon) ||
        !(epsilon >= 0 && epsilon < 3.4e38f)) {
      continue;
    }
    const int sqrt = only_reader(add);
    if (sqrt < 0 || g->layers[sqrt].kind != LayerKind::kSqrt || only_reader(sqrt) != div ||
        g->layers[div].inputs[1] != g->layers[sqrt].name) {
      continue;
    }
    // The affine part, when a constant Mul (and Add) follow.
    std::vector<int> chain = {static_cast<int>(r1), sub, square, var, add, sqrt, div};
    Weight scale{"scale", normalized, std::vector<float>(ElementCount(normalized), 1.0f)}, bias;
    bool has_bias = false;
    int last = div;
    if (int m = only_reader(div); m >= 0 && AffineConstant(g->layers[m], LayerKind::kMul, xs, normalized, &scale)) {
      chain.push_back(last = m);
      if (int b = only_reader(m); b >= 0 && AffineConstant(g->layers[b], LayerKind::kAdd, xs, normalized, &bias)) {
        chain.push_back(last = b);
        has_bias = true;
      }
    }
    Layer ln;
    ln.name = g->layers[last].name;
    ln.kind = LayerKind::kLayerNorm;
    ln.inputs = {x};
    ln.attrs["axis"].ints = {axis};
    ln.attrs["epsilon"].floats = {epsilon};
    scale.name = ln.name + "/scale";
    ln.weights.push_back(std::move(scale));
    if (has_bias) {
      bias.name = ln.name + "/B";
      ln.weights.push_back(std::move(bias));
    }
    ln.output_shape = xs;
    for (int k : chain) gone[k] = true;
    made.push_back(std::move(ln));
    made_at.push_back(last);
  }
  for (size_t i = 0; i < made.size(); ++i) {
    g->layers[made_at[i]] = std::move(made[i]);
    gone[made_at[i]] = false;
  }
  std::vector<Layer> kept;
  for (size_t k = 0; k < g->layers.size(); ++k) {
    if (!gone[k]) kept.push_back(std::move(g->layers[k]));
  }
  g->layers = std::move(kept);
  return static_cast<int>(made.size());
}

}  // namespace ionn
