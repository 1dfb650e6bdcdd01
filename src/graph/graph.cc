#include "ionn/graph.h"

#include "shape.h"

#include <algorithm>
#include <climits>
#include <unordered_map>
#include <unordered_set>

namespace ionn {

const char* LayerKindName(LayerKind kind) {
  switch (kind) {
#define IONN_KIND_NAME(e, onnx, caffe) \
  case LayerKind::e:                   \
    return LayerKind::e == LayerKind::kScale ? "Scale" : onnx;
    IONN_LAYER_KINDS(IONN_KIND_NAME)
#undef IONN_KIND_NAME
  }
  return "?";
}

const char* LayerKindCaffeType(LayerKind kind) {
  switch (kind) {
#define IONN_KIND_CAFFE(e, onnx, caffe) \
  case LayerKind::e:                    \
    return caffe;
    IONN_LAYER_KINDS(IONN_KIND_CAFFE)
#undef IONN_KIND_CAFFE
  }
  return "?";
}

int64_t ElementCount(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && n > kMaxTensorElements / d)) return -1;  // negative or too large
    n *= d;
  }
  return n;
}

std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t TensorBytes(const Shape& shape) { return ElementCount(shape) * 4; }

int64_t LayerParameterCount(const Layer& layer) {
  // Caffe keeps only the running mean and variance in BatchNorm and only
  // gamma and beta in Scale; the ONNX encoding stores constants for the rest.
  if (layer.kind == LayerKind::kBatchNorm) return 2 * ElementCount(layer.weights[2].shape);
  if (layer.kind == LayerKind::kScale) return 2 * ElementCount(layer.weights[0].shape);
  int64_t n = 0;
  for (const auto& w : layer.weights) n += ElementCount(w.shape);
  return n;
}

int64_t LayerWeightBytes(const Layer& layer) { return LayerParameterCount(layer) * 4; }

namespace {

// The taps [lo, hi] of one axis that read the input at some output
// position: tap t reads row o * stride - pad + t * dilation; the first o
// with that row >= 0 decides whether any row falls inside [0, in).
void ReadingTaps(int64_t in, int64_t out, int k, int64_t stride, int64_t pad, int64_t dilation, int* lo, int* hi) {
  *lo = k, *hi = -1;
  for (int t = 0; t < k; ++t) {
    const int64_t first = -pad + t * dilation;
    const int64_t o = first >= 0 ? 0 : (-first + stride - 1) / stride;
    if (o < out && first + o * stride < in) *lo = std::min(*lo, t), *hi = t;
  }
}

}  // namespace

ConvWindow ReadingConvWindow(const Layer& l, const Shape& x) {
  ConvWindow w{l.kernel_h, l.kernel_w, l.pad_top, l.pad_left, l.pad_bottom, l.pad_right, l.dilation_h, l.dilation_w};
  if (l.kind != LayerKind::kConv || x.size() != 4 || l.ceil_mode) return w;
  const int64_t oh = (x[2] + l.pad_top + l.pad_bottom - (int64_t{l.kernel_h} - 1) * l.dilation_h - 1) / l.stride_h + 1;
  const int64_t ow = (x[3] + l.pad_left + l.pad_right - (int64_t{l.kernel_w} - 1) * l.dilation_w - 1) / l.stride_w + 1;
  if (oh < 1 || ow < 1) return w;
  int row_lo, row_hi, col_lo, col_hi;
  ReadingTaps(x[2], oh, l.kernel_h, l.stride_h, l.pad_top, l.dilation_h, &row_lo, &row_hi);
  ReadingTaps(x[3], ow, l.kernel_w, l.stride_w, l.pad_left, l.dilation_w, &col_lo, &col_hi);
  if (row_hi < row_lo || col_hi < col_lo) return w;  // reads nothing anywhere: left as it is
  if (row_lo == 0 && row_hi == l.kernel_h - 1 && col_lo == 0 && col_hi == l.kernel_w - 1) return w;
  // Per axis: the kept taps, the padding before them moved, the padding
  // after set for the same output count (any value up to stride - 1 above
  // the least one gives it: clamped at 0).
  auto axis = [](int64_t in, int64_t out, int64_t stride, int lo, int hi, int64_t pad, int64_t dilation, int* k,
                 int* pad_before, int* pad_after, int* dil) {
    *k = hi - lo + 1;
    const int64_t d = *k == 1 ? 1 : dilation;
    const int64_t before = pad - lo * dilation;
    const int64_t after = std::max<int64_t>(0, (out - 1) * stride + (*k - 1) * d + 1 - in - before);
    if (before < 0 || before > INT_MAX || after > INT_MAX) return false;
    *pad_before = static_cast<int>(before), *pad_after = static_cast<int>(after), *dil = static_cast<int>(d);
    return (in + before + after - (*k - 1) * d - 1) / stride + 1 == out;
  };
  ConvWindow t = w;
  if (!axis(x[2], oh, l.stride_h, row_lo, row_hi, l.pad_top, l.dilation_h, &t.kernel_h, &t.pad_top, &t.pad_bottom,
            &t.dilation_h) ||
      !axis(x[3], ow, l.stride_w, col_lo, col_hi, l.pad_left, l.dilation_w, &t.kernel_w, &t.pad_left, &t.pad_right,
            &t.dilation_w)) {
    return w;
  }
  t.first_row = row_lo, t.first_col = col_lo, t.trimmed = true;
  return t;
}

bool BroadcastWeightTo(Weight* w, const Shape& to) {
  if (static_cast<int64_t>(w->data.size()) != ElementCount(w->shape)) return false;
  Shape from = w->shape;
  while (from.size() > to.size() && from.front() == 1) from.erase(from.begin());
  if (from.size() > to.size()) return false;
  from.insert(from.begin(), to.size() - from.size(), 1);
  for (size_t d = 0; d < to.size(); ++d) {
    if (from[d] != 1 && from[d] != to[d]) return false;
  }
  const int64_t n = ElementCount(to);
  if (n < 0) return false;
  std::vector<float> out(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, at = 0, stride = 1;
    for (size_t d = to.size(); d-- > 0;) {
      const int64_t k = rest % to[d];
      rest /= to[d];
      if (from[d] != 1) at += k * stride;
      stride *= from[d];
    }
    out[i] = w->data[at];
  }
  w->data = std::move(out);
  w->shape = to;
  return true;
}

int Graph::FindLayer(const std::string& name) const {
  for (size_t k = 0; k < layers.size(); ++k) {
    if (layers[k].name == name) return static_cast<int>(k);
  }
  return -1;
}

const Shape* Graph::TensorShape(const std::string& name) const {
  for (const auto& in : inputs) {
    if (in.name == name) return &in.shape;
  }
  int k = FindLayer(name);
  return k < 0 ? nullptr : &layers[k].output_shape;
}

int64_t Graph::ParameterCount() const {
  int64_t n = 0;
  for (const auto& l : layers) n += LayerParameterCount(l);
  return n;
}

Status Graph::Finalize() {
  if (layers.empty()) return Status::Invalid("graph '" + name + "' has no layers");
  if (inputs.empty()) return Status::Invalid("graph '" + name + "' has no inputs");
  if (outputs.empty()) return Status::Invalid("graph '" + name + "' has no outputs");
  std::unordered_map<std::string, const Shape*> known;
  for (const auto& in : inputs) {
    if (in.name.empty()) return Status::Invalid("a graph input has no name");
    for (int64_t d : in.shape) {
      if (d <= 0) return Status::Invalid("graph input '" + in.name + "' has shape " + ShapeToString(in.shape) + "; every dimension must be > 0");
    }
    if (ElementCount(in.shape) < 0) {
      return Status::Invalid("graph input '" + in.name + "' has shape " + ShapeToString(in.shape) + ": too large");
    }
    if (!known.emplace(in.name, &in.shape).second) return Status::Invalid("duplicate graph input '" + in.name + "'");
  }
  std::unordered_set<std::string> names;
  for (const auto& l : layers) names.insert(l.name);
  for (size_t k = 0; k < layers.size(); ++k) {
    Layer& l = layers[k];
    const std::string where = "layer '" + l.name + "' (" + LayerKindName(l.kind) + ", index " + std::to_string(k) + ")";
    if (l.name.empty()) return Status::Invalid("layer " + std::to_string(k) + " has no name");
    std::vector<const Shape*> in;
    for (const auto& name : l.inputs) {
      auto it = known.find(name);
      if (it == known.end()) {
        return Status::Invalid(where + " reads tensor '" + name + "', " +
                               (names.count(name) ? "which comes later: layers must be in topological order"
                                                  : "which no layer produces and is not a graph input"));
      }
      in.push_back(it->second);
    }
    for (const auto& w : l.weights) {
      if (ElementCount(w.shape) < 0) {
        return Status::Invalid(where + ": weight '" + w.name + "' has shape " + ShapeToString(w.shape) +
                               ": negative or too large");
      }
      if (!w.data.empty() && static_cast<int64_t>(w.data.size()) != ElementCount(w.shape)) {
        return Status::Invalid(where + ": weight '" + w.name + "' has " + std::to_string(w.data.size()) +
                               " values for shape " + ShapeToString(w.shape));
      }
    }
    Status s = InferLayerShape(l, in, &l.output_shape);
    if (!s.ok()) return s.WithContext(where);
    if (ElementCount(l.output_shape) <= 0) {
      return Status::Invalid(where + ": output shape " + ShapeToString(l.output_shape) + " is empty or too large");
    }
    if (!known.emplace(l.name, &l.output_shape).second) {
      return Status::Invalid("duplicate tensor name '" + l.name + "' at " + where);
    }
  }
  for (const auto& o : outputs) {
    if (!names.count(o)) return Status::Invalid("graph output '" + o + "' is not produced by any layer");
  }
  return Status::Ok();
}

}  // namespace ionn
