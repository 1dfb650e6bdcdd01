#include "wire.h"

#include <algorithm>

#include <openssl/evp.h>

#include <cmath>
#include <cstring>
#include <unordered_set>

namespace ionn::net {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the wire format is little-endian float32");

namespace {

void DimsToProto(const Shape& shape, v1::Dims* out) {
  for (int64_t d : shape) out->add_dims(d);
}

Shape DimsFromProto(const v1::Dims& dims) { return Shape(dims.dims().begin(), dims.dims().end()); }

Result<LayerKind> KindFromName(const std::string& name) {
#define IONN_KIND_FROM_NAME(e, onnx, caffe) \
  if (name == LayerKindName(LayerKind::e)) return LayerKind::e;
  IONN_LAYER_KINDS(IONN_KIND_FROM_NAME)
#undef IONN_KIND_FROM_NAME
  return Status::Invalid("unknown layer kind '" + name.substr(0, 64) + "'");
}

// Well-formed UTF-8: no stray continuation bytes, no overlong forms, no
// surrogates, nothing above U+10FFFF.
bool IsUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int more = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      more = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      more = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      more = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + more >= s.size()) return false;  // cut short
    for (int k = 1; k <= more; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[more] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += more + 1;
  }
  return true;
}

Status CheckName(const std::string& name, const std::string& what, const WireLimits& limits) {
  if (name.empty()) return Status::Invalid(what + " has an empty name");
  if (name.size() > limits.max_name_bytes) {
    return Status::Invalid(what + " name is " + std::to_string(name.size()) + " bytes, over the limit of " +
                           std::to_string(limits.max_name_bytes));
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return Status::Invalid(what + " name has a control character");
  }
  if (!IsUtf8(name)) return Status::Invalid(what + " name is not UTF-8");
  return Status::Ok();
}

Result<Shape> CheckedShape(const v1::Dims& dims, const std::string& what) {
  if (dims.dims_size() > 8) return Status::Invalid(what + " has " + std::to_string(dims.dims_size()) + " dimensions (at most 8)");
  Shape s = DimsFromProto(dims);
  if (ElementCount(s) < 0) return Status::Invalid(what + " has shape " + ShapeToString(s) + ": negative or too large");
  return s;
}

// A canonical byte encoding of what a layer computes, for hashing.
class Canon {
 public:
  void Int(int64_t v) { bytes_.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void Float(float v) { bytes_.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void Str(const std::string& s) {
    Int(static_cast<int64_t>(s.size()));
    bytes_ += s;
  }
  void Dims(const Shape& s) {
    Int(static_cast<int64_t>(s.size()));
    for (int64_t d : s) Int(d);
  }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
};

std::string Sha256(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

}  // namespace

std::string LayerContentHash(const Graph& graph, const Layer& l) {
  Canon c;
  c.Str(LayerKindName(l.kind));
  for (const auto& in : l.inputs) {
    const Shape* s = graph.TensorShape(in);
    c.Dims(s ? *s : Shape{});
  }
  c.Dims(l.output_shape);
  for (int v : {l.kernel_h, l.kernel_w, l.stride_h, l.stride_w, l.pad_top, l.pad_left, l.pad_bottom, l.pad_right,
                l.dilation_h, l.dilation_w, l.group, int(l.ceil_mode), int(l.count_include_pad), l.out_channels,
                l.lrn_size, l.axis, int(l.softmax_coerce_2d)}) {
    c.Int(v);
  }
  for (float v : {l.lrn_alpha, l.lrn_beta, l.lrn_bias, l.epsilon, l.clip_min, l.clip_max}) c.Float(v);
  c.Dims(l.reshape_to);
  // The attributes of later kinds count only for the kinds that have them:
  // the layers of every other kind keep the hashes that clients before
  // them computed.
  switch (l.kind) {
    case LayerKind::kHardSigmoid: c.Float(l.alpha), c.Float(l.beta); break;
    case LayerKind::kAdd:
    case LayerKind::kMul:
    case LayerKind::kSub:
    case LayerKind::kDiv:
      if (!l.weights.empty()) c.Int(l.weight_first);
      break;
    case LayerKind::kTranspose: c.Dims(l.perm); break;
    case LayerKind::kSlice: c.Dims({l.slice_begin, l.slice_end}); break;
    case LayerKind::kPad: c.Float(l.pad_value); break;
    default: break;
  }
  if (!l.attrs.empty()) {  // in name order (a std::map)
    c.Int(static_cast<int64_t>(l.attrs.size()));
    for (const auto& [name, attr] : l.attrs) {
      c.Str(name);
      c.Dims(Shape(attr.ints.begin(), attr.ints.end()));
      c.Int(static_cast<int64_t>(attr.floats.size()));
      for (float v : attr.floats) c.Float(v);
      c.Str(attr.text);
    }
  }
  for (const auto& w : l.weights) {
    c.Dims(w.shape);
    c.bytes().append(reinterpret_cast<const char*>(w.data.data()), w.data.size() * sizeof(float));
  }
  return Sha256(c.bytes());
}

v1::Architecture ArchitectureToProto(const Graph& g) {
  v1::Architecture a;
  a.set_name(g.name);
  for (const auto& in : g.inputs) {
    auto* i = a.add_inputs();
    i->set_name(in.name);
    DimsToProto(in.shape, i->mutable_shape());
  }
  for (const auto& l : g.layers) {
    v1::LayerSpec* p = a.add_layers();
    p->set_name(l.name);
    p->set_kind(LayerKindName(l.kind));
    for (const auto& in : l.inputs) p->add_inputs(in);
    p->set_kernel_h(l.kernel_h), p->set_kernel_w(l.kernel_w);
    p->set_stride_h(l.stride_h), p->set_stride_w(l.stride_w);
    p->set_pad_top(l.pad_top), p->set_pad_left(l.pad_left), p->set_pad_bottom(l.pad_bottom), p->set_pad_right(l.pad_right);
    p->set_dilation_h(l.dilation_h), p->set_dilation_w(l.dilation_w), p->set_group(l.group);
    p->set_ceil_mode(l.ceil_mode), p->set_count_include_pad(l.count_include_pad);
    p->set_out_channels(l.out_channels);
    p->set_lrn_size(l.lrn_size), p->set_lrn_alpha(l.lrn_alpha), p->set_lrn_beta(l.lrn_beta), p->set_lrn_bias(l.lrn_bias);
    p->set_epsilon(l.epsilon), p->set_clip_min(l.clip_min), p->set_clip_max(l.clip_max);
    p->set_axis(l.axis), p->set_softmax_coerce_2d(l.softmax_coerce_2d);
    DimsToProto(l.reshape_to, p->mutable_reshape_to());
    p->set_alpha(l.alpha), p->set_beta(l.beta), p->set_weight_first(l.weight_first);
    DimsToProto(l.perm, p->mutable_perm());
    p->set_slice_begin(l.slice_begin), p->set_slice_end(l.slice_end), p->set_pad_value(l.pad_value);
    for (const auto& [name, attr] : l.attrs) {
      v1::LayerAttr* pa = p->add_attrs();
      pa->set_name(name);
      for (int64_t v : attr.ints) pa->add_ints(v);
      for (float v : attr.floats) pa->add_floats(v);
      pa->set_text(attr.text);
    }
    for (const auto& w : l.weights) {
      auto* ws = p->add_weights();
      ws->set_name(w.name);
      DimsToProto(w.shape, ws->mutable_shape());
    }
    p->set_content_hash(LayerContentHash(g, l));
  }
  for (const auto& o : g.outputs) a.add_outputs(o);
  return a;
}

Result<Graph> ArchitectureFromProto(const v1::Architecture& a, const WireLimits& limits) {
  Graph g;
  if (!a.name().empty()) IONN_RETURN_IF_ERROR(CheckName(a.name(), "the model", limits));  // it reaches the server's log
  g.name = a.name();
  if (a.layers_size() == 0) return Status::Invalid("the architecture has no layers");
  if (static_cast<uint64_t>(a.layers_size()) > limits.max_layers) {
    return Status::ResourceExhausted("the architecture has " + std::to_string(a.layers_size()) +
                                     " layers, over the limit of " + std::to_string(limits.max_layers));
  }
  if (a.inputs_size() == 0 || a.inputs_size() > 64) return Status::Invalid("the architecture needs 1 to 64 inputs");
  for (int i = 0; i < a.inputs_size(); ++i) {
    const auto& in = a.inputs(i);
    IONN_RETURN_IF_ERROR(CheckName(in.name(), "input " + std::to_string(i), limits));
    IONN_ASSIGN_OR_RETURN(Shape shape, CheckedShape(in.shape(), "input '" + in.name() + "'"));
    g.inputs.push_back({in.name(), std::move(shape)});
  }
  int64_t weight_bytes = 0;
  for (int k = 0; k < a.layers_size(); ++k) {
    const v1::LayerSpec& p = a.layers(k);
    const std::string where = "layer " + std::to_string(k);
    IONN_RETURN_IF_ERROR(CheckName(p.name(), where, limits));
    Layer l;
    l.name = p.name();
    auto kind = KindFromName(p.kind());
    if (!kind.ok()) return kind.status().WithContext(where + " '" + p.name() + "'");
    l.kind = *kind;
    if (p.inputs_size() == 0 || p.inputs_size() > 1024) return Status::Invalid(where + " '" + p.name() + "' needs 1 to 1024 inputs");
    for (const auto& in : p.inputs()) {
      IONN_RETURN_IF_ERROR(CheckName(in, where + " input", limits));
      l.inputs.push_back(in);
    }
    l.kernel_h = p.kernel_h(), l.kernel_w = p.kernel_w(), l.stride_h = p.stride_h(), l.stride_w = p.stride_w();
    l.pad_top = p.pad_top(), l.pad_left = p.pad_left(), l.pad_bottom = p.pad_bottom(), l.pad_right = p.pad_right();
    l.dilation_h = p.dilation_h(), l.dilation_w = p.dilation_w(), l.group = p.group();
    l.ceil_mode = p.ceil_mode(), l.count_include_pad = p.count_include_pad(), l.out_channels = p.out_channels();
    l.lrn_size = p.lrn_size(), l.lrn_alpha = p.lrn_alpha(), l.lrn_beta = p.lrn_beta(), l.lrn_bias = p.lrn_bias();
    l.epsilon = p.epsilon(), l.clip_min = p.clip_min(), l.clip_max = p.clip_max();
    l.axis = p.axis(), l.softmax_coerce_2d = p.softmax_coerce_2d();
    for (float v : {l.lrn_alpha, l.lrn_beta, l.lrn_bias, l.epsilon}) {
      if (!std::isfinite(v)) return Status::Invalid(where + " '" + p.name() + "' has a non-finite attribute");
    }
    if (std::isnan(l.clip_min) || std::isnan(l.clip_max)) return Status::Invalid(where + " '" + p.name() + "' has a NaN clip bound");
    if (p.reshape_to().dims_size() > 8) return Status::Invalid(where + " '" + p.name() + "' reshapes to more than 8 dimensions");
    l.reshape_to = DimsFromProto(p.reshape_to());
    l.alpha = p.alpha(), l.beta = p.beta(), l.weight_first = p.weight_first();
    if (!std::isfinite(l.alpha) || !std::isfinite(l.beta)) return Status::Invalid(where + " '" + p.name() + "' has a non-finite attribute");
    if (p.perm().dims_size() > 8) return Status::Invalid(where + " '" + p.name() + "' permutes more than 8 dimensions");
    l.perm = DimsFromProto(p.perm());
    l.slice_begin = p.slice_begin(), l.slice_end = p.slice_end(), l.pad_value = p.pad_value();
    if (p.attrs_size() > 16) return Status::Invalid(where + " '" + p.name() + "' has more than 16 attributes");
    for (const auto& pa : p.attrs()) {
      const std::string what = where + " '" + p.name() + "' attribute";
      IONN_RETURN_IF_ERROR(CheckName(pa.name(), what, limits));
      if (pa.name().size() > 64 || pa.text().size() > 256 || pa.ints_size() > 64 || pa.floats_size() > 64) {
        return Status::Invalid(what + " '" + pa.name().substr(0, 64) +
                               "' is too long (names 64 bytes, text 256, at most 64 values)");
      }
      if (!IsUtf8(pa.text())) return Status::Invalid(what + " '" + pa.name() + "' text is not UTF-8");
      LayerAttr attr{{pa.ints().begin(), pa.ints().end()}, {pa.floats().begin(), pa.floats().end()}, pa.text()};
      for (float v : attr.floats) {
        if (!std::isfinite(v)) return Status::Invalid(what + " '" + pa.name() + "' is not finite");
      }
      if (!l.attrs.emplace(pa.name(), std::move(attr)).second) {
        return Status::Invalid(what + " '" + pa.name() + "' is given twice");
      }
    }
    if (p.weights_size() > 8) return Status::Invalid(where + " '" + p.name() + "' declares more than 8 weights");
    for (const auto& w : p.weights()) {
      IONN_RETURN_IF_ERROR(CheckName(w.name(), where + " weight", limits));
      for (const auto& earlier : l.weights) {
        if (earlier.name == w.name()) return Status::Invalid(where + " '" + p.name() + "' declares weight '" + w.name() + "' twice");
      }
      IONN_ASSIGN_OR_RETURN(Shape shape, CheckedShape(w.shape(), where + " weight '" + w.name() + "'"));
      weight_bytes += ElementCount(shape) * 4;
      if (static_cast<uint64_t>(weight_bytes) > limits.max_model_bytes) {
        return Status::ResourceExhausted("the model's weights pass the limit of " + std::to_string(limits.max_model_bytes) +
                                         " bytes at " + where + " '" + p.name() + "'");
      }
      l.weights.push_back({w.name(), std::move(shape), {}});
    }
    if (p.content_hash().size() != 32) return Status::Invalid(where + " '" + p.name() + "': content_hash must be 32 bytes (SHA-256)");
    g.layers.push_back(std::move(l));
  }
  std::unordered_set<std::string> outputs;
  for (const auto& o : a.outputs()) {
    IONN_RETURN_IF_ERROR(CheckName(o, "output", limits));
    if (!outputs.insert(o).second) return Status::Invalid("output '" + o.substr(0, 64) + "' is listed twice");
    g.outputs.push_back(o);
  }
  IONN_RETURN_IF_ERROR(g.Finalize());
  return g;
}

void TensorToProto(const std::string& name, const Tensor& t, v1::Tensor* out) {
  out->set_name(name);
  DimsToProto(t.shape, out->mutable_shape());
  out->set_data(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
}

Result<Tensor> TensorFromProto(const v1::Tensor& p, const Shape& expected) {
  const Shape shape = DimsFromProto(p.shape());
  if (shape != expected) {
    return Status::Invalid("tensor '" + p.name().substr(0, 64) + "' has shape " + ShapeToString(shape).substr(0, 64) +
                           ", expected " + ShapeToString(expected));
  }
  const int64_t count = ElementCount(expected);
  if (static_cast<int64_t>(p.data().size()) != count * 4) {
    return Status::Invalid("tensor '" + p.name().substr(0, 64) + "' holds " + std::to_string(p.data().size()) +
                           " bytes, its shape needs " + std::to_string(count * 4));
  }
  Tensor t{expected, std::vector<float>(count)};
  if (!p.data().empty()) std::memcpy(t.data.data(), p.data().data(), p.data().size());
  return t;
}

int64_t LayerUploadBytes(const Layer& declared) {
  int64_t bytes = 0;
  for (const auto& w : declared.weights) bytes += ElementCount(w.shape) * 4;
  return bytes;
}

void AppendLayerWeights(const Layer& layer, std::string* out) {
  for (const auto& w : layer.weights) out->append(reinterpret_cast<const char*>(w.data.data()), w.data.size() * 4);
}

std::string LayerWeightBytesAt(const Layer& layer, uint64_t offset, uint64_t n) {
  std::string out;
  uint64_t start = 0;  // of the current weight within the layer's bytes
  for (const auto& w : layer.weights) {
    const uint64_t size = w.data.size() * 4;
    const uint64_t from = std::max(offset, start), to = std::min(offset + n, start + size);
    if (from < to) out.append(reinterpret_cast<const char*>(w.data.data()) + (from - start), to - from);
    start += size;
  }
  return out;
}

std::vector<Weight> WeightsFromBytes(const Layer& declared, const char* bytes) {
  std::vector<Weight> weights;
  for (const auto& d : declared.weights) {
    Weight w{d.name, d.shape, std::vector<float>(ElementCount(d.shape))};
    if (!w.data.empty()) std::memcpy(w.data.data(), bytes, w.data.size() * 4);
    bytes += w.data.size() * 4;
    weights.push_back(std::move(w));
  }
  return weights;
}

void RegressionToProto(const ServerRegression& regression, v1::HelloReply* hello) {
  for (const auto& [type, ab] : regression.by_type) {
    auto* f = hello->add_functions();
    f->set_layer_type(type);
    f->set_a_ms_per_unit(ab.first);
    f->set_b_ms(ab.second);
  }
}

Result<ServerRegression> RegressionFromProto(const v1::HelloReply& hello) {
  ServerRegression r;
  for (const auto& f : hello.functions()) {
    if (f.layer_type().empty() || f.layer_type().size() > 64) return Status::Invalid("a prediction function has a bad layer type");
    if (!std::isfinite(f.a_ms_per_unit()) || !std::isfinite(f.b_ms())) {
      return Status::Invalid("prediction function for '" + f.layer_type() + "' is not finite");
    }
    if (!r.by_type.emplace(f.layer_type(), std::make_pair(f.a_ms_per_unit(), f.b_ms())).second) {
      return Status::Invalid("two prediction functions for '" + f.layer_type() + "'");
    }
  }
  return r;
}

Status ValidateSecret(const std::string& secret) {
  if (secret.size() < 16 || secret.size() > 1024) {
    return Status::Invalid("the shared secret has " + std::to_string(secret.size()) +
                           " bytes; it needs 16 to 1024 (e.g. `openssl rand -hex 32 > secret`)");
  }
  for (unsigned char c : secret) {
    if (c < 0x21 || c > 0x7e) return Status::Invalid("the shared secret must be printable ASCII without spaces");
  }
  return Status::Ok();
}

}  // namespace ionn::net
