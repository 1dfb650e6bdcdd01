#include "ionn/onnx_io.h"

#include "ionn/file.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <onnx/onnx_pb.h>

namespace ionn {
namespace {

constexpr int kMinOpset = 7, kMaxOpset = 17, kExportOpset = 11;

using AttrMap = std::unordered_map<std::string, const onnx::AttributeProto*>;

struct Importer {
  Graph graph;
  int opset = 0;
  std::unordered_map<std::string, const onnx::TensorProto*> initializers;
  std::unordered_map<std::string, std::string> tensor_to_ir;  // ONNX tensor -> IR tensor
  std::unordered_set<std::string> layer_names;

  static Result<std::vector<float>> Floats(const onnx::TensorProto& t, int64_t count) {
    if (t.data_type() != onnx::TensorProto::FLOAT) {
      return Status::Unsupported("initializer '" + t.name() + "' is not float32");
    }
    std::vector<float> v;
    if (t.has_raw_data()) {
      if (t.raw_data().size() != static_cast<size_t>(count) * 4) {
        return Status::Invalid("initializer '" + t.name() + "' holds " + std::to_string(t.raw_data().size()) +
                               " bytes, its shape needs " + std::to_string(count * 4));
      }
      v.resize(count);
      std::memcpy(v.data(), t.raw_data().data(), count * 4);
    } else {
      if (t.float_data_size() != count) {
        return Status::Invalid("initializer '" + t.name() + "' holds " + std::to_string(t.float_data_size()) +
                               " values, its shape needs " + std::to_string(count));
      }
      v.assign(t.float_data().begin(), t.float_data().end());
    }
    return v;
  }

  static Result<std::vector<int64_t>> Ints(const onnx::TensorProto& t) {
    const int64_t count = ElementCount(Shape(t.dims().begin(), t.dims().end()));
    if (count < 0 || count > 64) return Status::Invalid("initializer '" + t.name() + "' has a bad shape for a shape");
    if (t.data_type() != onnx::TensorProto::INT64) {
      return Status::Unsupported("initializer '" + t.name() + "' must be int64");
    }
    std::vector<int64_t> v;
    if (t.has_raw_data()) {
      if (t.raw_data().size() != static_cast<size_t>(count) * 8) {
        return Status::Invalid("initializer '" + t.name() + "' has the wrong byte size");
      }
      v.resize(count);
      std::memcpy(v.data(), t.raw_data().data(), count * 8);
    } else {
      v.assign(t.int64_data().begin(), t.int64_data().end());
    }
    return v;
  }

  Result<Weight> WeightOf(const std::string& name, const std::string& role) {
    auto it = initializers.find(name);
    if (it == initializers.end()) {
      return Status::Unsupported(role + " '" + name + "' must be an initializer (constant weights)");
    }
    Weight w;
    w.name = name;
    for (auto d : it->second->dims()) w.shape.push_back(d);
    if (ElementCount(w.shape) < 0) {
      return Status::Invalid(role + " '" + name + "' has shape " + ShapeToString(w.shape) + ": negative or too large");
    }
    auto data = Floats(*it->second, ElementCount(w.shape));
    if (!data.ok()) return data.status();
    w.data = std::move(data).value();
    return w;
  }

  Result<std::string> Tensor(const std::string& onnx_name) {
    auto it = tensor_to_ir.find(onnx_name);
    if (it == tensor_to_ir.end()) {
      return Status::Invalid("reads tensor '" + onnx_name +
                             "', which no earlier node produces and is not a graph input "
                             "(dangling tensor, or nodes out of topological order)");
    }
    return it->second;
  }

  static std::vector<int64_t> IntsAttr(const AttrMap& a, const char* key, std::vector<int64_t> fallback) {
    auto it = a.find(key);
    if (it == a.end()) return fallback;
    return {it->second->ints().begin(), it->second->ints().end()};
  }
  static int64_t IntAttr(const AttrMap& a, const char* key, int64_t fallback) {
    auto it = a.find(key);
    return it == a.end() ? fallback : it->second->i();
  }
  static float FloatAttr(const AttrMap& a, const char* key, float fallback) {
    auto it = a.find(key);
    return it == a.end() ? fallback : it->second->f();
  }

  static Status Window(const AttrMap& a, Layer* l, bool needs_kernel, int64_t kh, int64_t kw) {
    auto ap = a.find("auto_pad");
    if (ap != a.end() && ap->second->s() != "NOTSET" && ap->second->s() != "VALID") {
      return Status::Unsupported("auto_pad " + ap->second->s() + " is not supported; use explicit pads");
    }
    auto kernel = IntsAttr(a, "kernel_shape", {});
    if (kernel.empty() && needs_kernel) return Status::Invalid("missing kernel_shape");
    if (kernel.empty()) kernel = {kh, kw};
    if (kernel.size() != 2) return Status::Unsupported("only 2-D windows are supported");
    auto strides = IntsAttr(a, "strides", {1, 1});
    auto pads = IntsAttr(a, "pads", {0, 0, 0, 0});
    auto dil = IntsAttr(a, "dilations", {1, 1});
    if (strides.size() != 2 || pads.size() != 4 || dil.size() != 2) {
      return Status::Invalid("strides, pads or dilations have the wrong length");
    }
    l->kernel_h = int(kernel[0]), l->kernel_w = int(kernel[1]);
    l->stride_h = int(strides[0]), l->stride_w = int(strides[1]);
    l->pad_top = int(pads[0]), l->pad_left = int(pads[1]), l->pad_bottom = int(pads[2]), l->pad_right = int(pads[3]);
    l->dilation_h = int(dil[0]), l->dilation_w = int(dil[1]);
    l->ceil_mode = IntAttr(a, "ceil_mode", 0) != 0;
    return Status::Ok();
  }

  Status ImportNode(const onnx::NodeProto& node, int index) {
    AttrMap a;
    for (const auto& attr : node.attribute()) a[attr.name()] = &attr;
    const std::string& op = node.op_type();
    if (!node.domain().empty() && node.domain() != "ai.onnx") {
      return Status::Unsupported("operator domain '" + node.domain() + "' is not supported");
    }
    if (node.output_size() < 1) return Status::Invalid("has no output");
    if (op == "Identity") {
      auto in = Tensor(node.input(0));
      if (!in.ok()) return in.status();
      tensor_to_ir[node.output(0)] = *in;
      return Status::Ok();
    }
    Layer l;
    l.name = node.name();
    if (l.name.empty() || layer_names.count(l.name) || tensor_to_ir.count(l.name)) l.name = node.output(0);
    if (layer_names.count(l.name) || tensor_to_ir.count(l.name)) l.name += "#" + std::to_string(index);
    auto data_input = [&](int i) -> Status {
      if (node.input_size() <= i || node.input(i).empty()) return Status::Invalid("missing input " + std::to_string(i));
      auto t = Tensor(node.input(i));
      if (!t.ok()) return t.status();
      l.inputs.push_back(*t);
      return Status::Ok();
    };
    auto weight = [&](int i, const std::string& role) -> Status {
      if (node.input_size() <= i || node.input(i).empty()) return Status::Invalid("missing " + role);
      auto w = WeightOf(node.input(i), role);
      if (!w.ok()) return w.status();
      l.weights.push_back(std::move(w).value());
      return Status::Ok();
    };
    if (op == "Conv") {
      l.kind = LayerKind::kConv;
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_RETURN_IF_ERROR(weight(1, "weight"));
      if (node.input_size() > 2 && !node.input(2).empty()) IONN_RETURN_IF_ERROR(weight(2, "bias"));
      const Shape& w = l.weights[0].shape;
      if (w.size() != 4) return Status::Unsupported("only 2-D convolutions are supported, weight is " + ShapeToString(w));
      IONN_RETURN_IF_ERROR(Window(a, &l, false, w[2], w[3]));
      l.group = int(IntAttr(a, "group", 1));
      l.out_channels = int(w[0]);
    } else if (op == "Relu") {
      l.kind = LayerKind::kRelu;
      IONN_RETURN_IF_ERROR(data_input(0));
    } else if (op == "Clip") {
      l.kind = LayerKind::kClip;
      IONN_RETURN_IF_ERROR(data_input(0));
      l.clip_min = -3.4e38f, l.clip_max = 3.4e38f;
      if (opset < 11) {
        l.clip_min = FloatAttr(a, "min", l.clip_min), l.clip_max = FloatAttr(a, "max", l.clip_max);
      } else {
        for (int i = 1; i <= 2 && i < node.input_size(); ++i) {
          if (node.input(i).empty()) continue;
          auto it = initializers.find(node.input(i));
          if (it == initializers.end()) return Status::Unsupported("Clip bounds must be initializers");
          auto v = Floats(*it->second, 1);
          if (!v.ok()) return v.status();
          (i == 1 ? l.clip_min : l.clip_max) = (*v)[0];
        }
      }
    } else if (op == "LRN") {
      l.kind = LayerKind::kLrn;
      IONN_RETURN_IF_ERROR(data_input(0));
      l.lrn_size = int(IntAttr(a, "size", 0));
      l.lrn_alpha = FloatAttr(a, "alpha", 1e-4f), l.lrn_beta = FloatAttr(a, "beta", 0.75f);
      l.lrn_bias = FloatAttr(a, "bias", 1.0f);
    } else if (op == "MaxPool" || op == "AveragePool") {
      l.kind = op == "MaxPool" ? LayerKind::kMaxPool : LayerKind::kAvgPool;
      if (node.output_size() > 1 && !node.output(1).empty()) return Status::Unsupported("MaxPool indices output");
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_RETURN_IF_ERROR(Window(a, &l, true, 0, 0));
      l.count_include_pad = IntAttr(a, "count_include_pad", 0) != 0;
    } else if (op == "GlobalAveragePool") {
      l.kind = LayerKind::kGlobalAvgPool;
      IONN_RETURN_IF_ERROR(data_input(0));
    } else if (op == "Gemm" || op == "MatMul") {
      l.kind = LayerKind::kFc;
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_RETURN_IF_ERROR(weight(1, "weight"));
      const bool trans_b = op == "Gemm" && IntAttr(a, "transB", 0) != 0;
      if (op == "Gemm" && IntAttr(a, "transA", 0) != 0) return Status::Unsupported("Gemm with transA=1");
      Weight& w = l.weights[0];
      if (w.shape.size() != 2) return Status::Invalid("weight must be 2-D, is " + ShapeToString(w.shape));
      if (!trans_b) {  // [in, out] -> [out, in]
        const int64_t in = w.shape[0], out = w.shape[1];
        std::vector<float> t(w.data.size());
        for (int64_t i = 0; i < in; ++i)
          for (int64_t o = 0; o < out; ++o) t[o * in + i] = w.data[i * out + o];
        w.data = std::move(t);
        w.shape = {out, in};
      }
      const float alpha = FloatAttr(a, "alpha", 1), beta = FloatAttr(a, "beta", 1);
      if (alpha != 1) for (float& v : w.data) v *= alpha;
      l.out_channels = int(w.shape[0]);
      if (op == "Gemm" && node.input_size() > 2 && !node.input(2).empty()) {
        IONN_RETURN_IF_ERROR(weight(2, "bias"));
        Weight& b = l.weights[1];
        if (ElementCount(b.shape) != l.out_channels) return Status::Unsupported("Gemm bias must have one value per output");
        b.shape = {l.out_channels};
        if (beta != 1) for (float& v : b.data) v *= beta;
      }
    } else if (op == "Flatten") {
      l.kind = LayerKind::kFlatten;
      IONN_RETURN_IF_ERROR(data_input(0));
      l.axis = int(IntAttr(a, "axis", 1));
    } else if (op == "Reshape") {
      l.kind = LayerKind::kReshape;
      IONN_RETURN_IF_ERROR(data_input(0));
      if (opset < 5 || node.input_size() < 2) return Status::Unsupported("Reshape needs its shape as an input");
      auto it = initializers.find(node.input(1));
      if (it == initializers.end()) return Status::Unsupported("Reshape shape must be an initializer");
      auto s = Ints(*it->second);
      if (!s.ok()) return s.status();
      l.reshape_to = *s;
    } else if (op == "Dropout") {
      l.kind = LayerKind::kDropout;
      if (node.output_size() > 1 && !node.output(1).empty()) return Status::Unsupported("Dropout mask output");
      IONN_RETURN_IF_ERROR(data_input(0));
    } else if (op == "Softmax") {
      l.kind = LayerKind::kSoftmax;
      IONN_RETURN_IF_ERROR(data_input(0));
      l.softmax_coerce_2d = opset < 13;
      l.axis = int(IntAttr(a, "axis", opset < 13 ? 1 : -1));
    } else if (op == "Concat") {
      l.kind = LayerKind::kConcat;
      for (int i = 0; i < node.input_size(); ++i) IONN_RETURN_IF_ERROR(data_input(i));
      if (!a.count("axis")) return Status::Invalid("Concat needs an axis");
      l.axis = int(IntAttr(a, "axis", 1));
    } else if (op == "Add" || op == "Sum") {
      l.kind = LayerKind::kAdd;
      if (node.input_size() != 2) return Status::Unsupported(op + " with " + std::to_string(node.input_size()) + " inputs");
      if (initializers.count(node.input(1)) || initializers.count(node.input(0))) {
        return Status::Unsupported(op + " with a constant input (only element-wise sums of two tensors)");
      }
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_RETURN_IF_ERROR(data_input(1));
    } else if (op == "BatchNormalization") {
      IONN_RETURN_IF_ERROR(data_input(0));
      for (int i = 1; i <= 4; ++i) IONN_RETURN_IF_ERROR(weight(i, i == 1 ? "scale" : i == 2 ? "bias" : i == 3 ? "mean" : "var"));
      for (int i = 1; i < node.output_size(); ++i) {
        if (!node.output(i).empty()) return Status::Unsupported("BatchNormalization in training mode");
      }
      l.epsilon = FloatAttr(a, "epsilon", 1e-5f);
      bool identity_stats = l.epsilon == 0;
      for (float v : l.weights[2].data) identity_stats = identity_stats && v == 0;
      for (float v : l.weights[3].data) identity_stats = identity_stats && v == 1;
      l.kind = identity_stats ? LayerKind::kScale : LayerKind::kBatchNorm;
    } else {
      return Status::Unsupported("operator '" + op +
                                 "' is not supported (supported: Conv, Relu, Clip, LRN, MaxPool, AveragePool, "
                                 "GlobalAveragePool, Gemm, MatMul, Flatten, Reshape, Dropout, Softmax, Concat, "
                                 "Add, Sum, BatchNormalization, Identity)");
    }
    tensor_to_ir[node.output(0)] = l.name;
    layer_names.insert(l.name);
    graph.layers.push_back(std::move(l));
    return Status::Ok();
  }

  // A Flatten (axis 1) whose only reader is a fully connected layer is that
  // layer's implicit flatten, as in Caffe's InnerProduct.
  void FoldFlattens() {
    std::unordered_map<std::string, int> readers;
    for (const auto& l : graph.layers)
      for (const auto& in : l.inputs) ++readers[in];
    std::unordered_set<std::string> outputs(graph.outputs.begin(), graph.outputs.end());
    std::vector<Layer> kept;
    std::unordered_map<std::string, std::string> replaced;
    for (auto& l : graph.layers) {
      for (auto& in : l.inputs) {
        auto it = replaced.find(in);
        if (it != replaced.end()) in = it->second;
      }
      kept.push_back(std::move(l));
    }
    graph.layers.clear();
    for (size_t k = 0; k < kept.size(); ++k) {
      Layer& l = kept[k];
      bool fold = l.kind == LayerKind::kFlatten && l.axis == 1 && readers[l.name] == 1 && !outputs.count(l.name);
      if (fold) {
        fold = false;
        for (size_t m = k + 1; m < kept.size(); ++m) {
          for (auto& in : kept[m].inputs) {
            if (in == l.name && kept[m].kind == LayerKind::kFc) in = l.inputs[0], fold = true;
          }
        }
      }
      if (!fold) graph.layers.push_back(std::move(l));
    }
  }
};

Status CheckTensorType(const onnx::ValueInfoProto& v) {
  if (!v.type().has_tensor_type()) return Status::Unsupported("'" + v.name() + "' is not a tensor");
  if (v.type().tensor_type().elem_type() != onnx::TensorProto::FLOAT) {
    return Status::Unsupported("'" + v.name() + "' is not float32");
  }
  return Status::Ok();
}

}  // namespace

Result<Graph> ParseOnnx(const std::string& bytes) {
  onnx::ModelProto model;
  if (bytes.empty()) return Status::Invalid("the file is empty");
  if (!model.ParseFromString(bytes)) {
    return Status::Invalid("not a valid ONNX model (protobuf parse failed: truncated or not ONNX)");
  }
  if (!model.has_graph()) return Status::Invalid("the model has no graph (truncated or not ONNX)");
  Importer im;
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") im.opset = int(o.version());
  }
  if (im.opset < kMinOpset || im.opset > kMaxOpset) {
    return Status::Unsupported("opset " + std::to_string(im.opset) + " is not supported (supported: " +
                               std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) + ")");
  }
  const onnx::GraphProto& g = model.graph();
  im.graph.name = g.name().empty() ? "model" : g.name();
  for (const auto& t : g.initializer()) im.initializers[t.name()] = &t;
  for (const auto& in : g.input()) {
    if (im.initializers.count(in.name())) continue;
    IONN_RETURN_IF_ERROR(CheckTensorType(in).WithContext("graph input"));
    GraphInput gi{in.name(), {}};
    for (const auto& d : in.type().tensor_type().shape().dim()) {
      gi.shape.push_back(d.has_dim_value() ? d.dim_value() : 1);  // symbolic (batch) dimensions: 1
    }
    im.tensor_to_ir[in.name()] = in.name();
    im.graph.inputs.push_back(std::move(gi));
  }
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& node = g.node(i);
    Status s = im.ImportNode(node, i);
    if (!s.ok()) {
      return s.WithContext("node " + std::to_string(i) + " '" + (node.name().empty() ? node.output_size() ? node.output(0) : "" : node.name()) +
                           "' (" + node.op_type() + ")");
    }
  }
  for (const auto& out : g.output()) {
    auto it = im.tensor_to_ir.find(out.name());
    if (it == im.tensor_to_ir.end() || im.graph.FindLayer(it->second) < 0) {
      return Status::Invalid("graph output '" + out.name() + "' is not produced by any node");
    }
    im.graph.outputs.push_back(it->second);
  }
  im.FoldFlattens();
  IONN_RETURN_IF_ERROR(im.graph.Finalize());
  return std::move(im.graph);
}

Result<Graph> ReadOnnxFile(const std::string& path) { return ParseFile(path, ParseOnnx); }

namespace {

void AddInts(onnx::NodeProto* n, const char* name, std::vector<int64_t> v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}
void AddInt(onnx::NodeProto* n, const char* name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
void AddFloat(onnx::NodeProto* n, const char* name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}
void SetShape(onnx::ValueInfoProto* v, const std::string& name, const Shape& shape) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (auto d : shape) t->mutable_shape()->add_dim()->set_dim_value(d);
}

}  // namespace

Result<std::string> SerializeOnnx(const Graph& graph) {
  onnx::ModelProto model;
  model.set_ir_version(6);
  model.set_producer_name("ionn");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kExportOpset);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name(graph.name);
  for (const auto& in : graph.inputs) SetShape(g->add_input(), in.name, in.shape);
  auto add_weight = [&](const Weight& w) -> Status {
    if (static_cast<int64_t>(w.data.size()) != ElementCount(w.shape)) {
      return Status::Invalid("weight '" + w.name + "' holds no data (a shapes-only graph cannot be exported)");
    }
    auto* t = g->add_initializer();
    t->set_name(w.name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : w.shape) t->add_dims(d);
    t->set_raw_data(w.data.data(), w.data.size() * 4);
    return Status::Ok();
  };
  for (const auto& l : graph.layers) {
    std::vector<std::string> inputs = l.inputs;
    if (l.kind == LayerKind::kFc) {
      const Shape* s = graph.TensorShape(l.inputs[0]);
      if (s && s->size() != 2) {
        auto* f = g->add_node();
        f->set_name(l.name + "/flatten");
        f->set_op_type("Flatten");
        f->add_input(l.inputs[0]);
        f->add_output(l.name + "/flatten");
        AddInt(f, "axis", 1);
        inputs = {l.name + "/flatten"};
      }
    }
    auto* n = g->add_node();
    n->set_name(l.name);
    n->set_op_type(l.kind == LayerKind::kScale ? "BatchNormalization" : LayerKindName(l.kind));
    for (const auto& in : inputs) n->add_input(in);
    for (const auto& w : l.weights) {
      IONN_RETURN_IF_ERROR(add_weight(w));
      n->add_input(w.name);
    }
    n->add_output(l.name);
    auto window = [&](bool dilations) {
      AddInts(n, "kernel_shape", {l.kernel_h, l.kernel_w});
      AddInts(n, "strides", {l.stride_h, l.stride_w});
      AddInts(n, "pads", {l.pad_top, l.pad_left, l.pad_bottom, l.pad_right});
      if (dilations) AddInts(n, "dilations", {l.dilation_h, l.dilation_w});
    };
    switch (l.kind) {
      case LayerKind::kConv:
        window(true);
        AddInt(n, "group", l.group);
        break;
      case LayerKind::kMaxPool:
      case LayerKind::kAvgPool:
        window(false);
        if (l.ceil_mode) AddInt(n, "ceil_mode", 1);
        if (l.kind == LayerKind::kAvgPool) AddInt(n, "count_include_pad", l.count_include_pad);
        break;
      case LayerKind::kLrn:
        AddInt(n, "size", l.lrn_size);
        AddFloat(n, "alpha", l.lrn_alpha);
        AddFloat(n, "beta", l.lrn_beta);
        AddFloat(n, "bias", l.lrn_bias);
        break;
      case LayerKind::kFc:
        AddInt(n, "transB", 1);
        break;
      case LayerKind::kBatchNorm:
      case LayerKind::kScale:
        AddFloat(n, "epsilon", l.epsilon);
        break;
      case LayerKind::kSoftmax:
      case LayerKind::kConcat:
      case LayerKind::kFlatten:
        AddInt(n, "axis", l.axis);
        break;
      case LayerKind::kClip:
        for (float bound : {l.clip_min, l.clip_max}) {
          Weight w{l.name + (bound == l.clip_min ? "/min" : "/max"), {}, {bound}};
          IONN_RETURN_IF_ERROR(add_weight(w));
          n->add_input(w.name);
        }
        break;
      case LayerKind::kReshape: {
        auto* t = g->add_initializer();
        t->set_name(l.name + "/shape");
        t->set_data_type(onnx::TensorProto::INT64);
        t->add_dims(static_cast<int64_t>(l.reshape_to.size()));
        for (auto d : l.reshape_to) t->add_int64_data(d);
        n->add_input(t->name());
        break;
      }
      default:
        break;
    }
  }
  for (const auto& o : graph.outputs) {
    const Shape* s = graph.TensorShape(o);
    SetShape(g->add_output(), o, s ? *s : Shape{});
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) return Status::Internal("protobuf serialization failed");
  return bytes;
}

Status WriteOnnxFile(const Graph& graph, const std::string& path) {
  auto bytes = SerializeOnnx(graph);
  if (!bytes.ok()) return bytes.status();
  std::ofstream out(path, std::ios::binary);
  if (!out) return Status::Io("cannot write '" + path + "'");
  out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
  if (!out) return Status::Io("short write to '" + path + "'");
  return Status::Ok();
}

}  // namespace ionn
