#include "ionn/onnx_io.h"

#include "ionn/file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <onnx/onnx_pb.h>

namespace ionn {

const OnnxOpArity* FindOnnxOpArity(const std::string& op_type, int opset) {
  const OnnxOpArity* found = nullptr;
  for (const OnnxOpArity& row : kOnnxOpArities) {
    if (op_type == row.op_type && row.since_opset <= opset) found = &row;
  }
  return found;
}

namespace {

constexpr int kMinOpset = 7, kMaxOpset = 17, kExportOpset = 11;

// A name or string from the file, fit for a one-line message: control
// characters escaped, long ones cut.
std::string Printable(const std::string& s, size_t max_chars = 64) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == max_chars) return out + "...";
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}
std::string Quoted(const std::string& s) { return "'" + Printable(s) + "'"; }

std::string Plural(int64_t n, const char* noun) { return std::to_string(n) + " " + noun + (n == 1 ? "" : "s"); }

std::string CountRange(int lo, int hi) {
  if (hi == kOnnxVariadic) return "at least " + std::to_string(lo);
  if (lo == hi) return std::to_string(lo);
  return std::to_string(lo) + " to " + std::to_string(hi);
}

std::string SupportedOps() {
  std::string list;
  for (const OnnxOpArity& row : kOnnxOpArities) {
    if (FindOnnxOpArity(row.op_type, kMaxOpset) != &row) continue;  // once per operator
    list += (list.empty() ? "" : ", ") + std::string(row.op_type);
  }
  return list;
}

// Every index a node's fields are read at is in range once this passes.
Status CheckArity(const onnx::NodeProto& node, int opset) {
  const std::string& op = node.op_type();
  const OnnxOpArity* row = FindOnnxOpArity(op, opset);
  if (!row) {
    return Status::Unsupported("operator " + Quoted(op) + " is not supported (supported: " + SupportedOps() + ")");
  }
  // Where another opset allows other counts, the message says which opset it holds for.
  bool inputs_vary = false, outputs_vary = false;
  for (const OnnxOpArity& other : kOnnxOpArities) {
    if (op != other.op_type) continue;
    inputs_vary |= other.min_inputs != row->min_inputs || other.max_inputs != row->max_inputs;
    outputs_vary |= other.min_outputs != row->min_outputs || other.max_outputs != row->max_outputs;
  }
  const std::string at = " at opset " + std::to_string(opset);
  if (node.input_size() < row->min_inputs || node.input_size() > row->max_inputs) {
    return Status::Invalid("has " + Plural(node.input_size(), "input") + ", expects " +
                           CountRange(row->min_inputs, row->max_inputs) + (inputs_vary ? at : ""));
  }
  if (node.output_size() < row->min_outputs || node.output_size() > row->max_outputs) {
    return Status::Invalid("has " + Plural(node.output_size(), "output") + ", expects " +
                           CountRange(row->min_outputs, row->max_outputs) + (outputs_vary ? at : ""));
  }
  for (int i = 0; i < row->min_inputs; ++i) {
    if (node.input(i).empty()) {
      return Status::Invalid("input " + std::to_string(i) + " has no name, but it is required");
    }
  }
  for (int i = 0; i < row->min_outputs; ++i) {
    if (node.output(i).empty()) {
      return Status::Invalid("output " + std::to_string(i) + " has no name, but it is required");
    }
  }
  return Status::Ok();
}

Result<int> ToInt(int64_t v, const std::string& what) {
  if (v < INT_MIN || v > INT_MAX) return Status::Invalid(what + " is " + std::to_string(v) + ", out of range");
  return static_cast<int>(v);
}

// A node's attributes by name, read with the type the operator defines.
class Attributes {
 public:
  Status Index(const onnx::NodeProto& node) {
    for (const auto& attr : node.attribute()) {
      if (!by_name_.emplace(attr.name(), &attr).second) {
        return Status::Invalid("attribute " + Quoted(attr.name()) + " appears twice");
      }
    }
    return Status::Ok();
  }
  bool Has(const char* key) const { return by_name_.count(key) != 0; }
  // The attribute `key` of type `type`, nullptr when absent (an error when
  // of another type).
  Result<const onnx::AttributeProto*> Find(const char* key, onnx::AttributeProto::AttributeType type) const {
    return Get(key, type);
  }
  size_t size() const { return by_name_.size(); }

  Result<int> Int(const char* key, int fallback) const {
    IONN_ASSIGN_OR_RETURN(const onnx::AttributeProto* attr, Get(key, onnx::AttributeProto::INT));
    if (!attr) return fallback;
    return ToInt(attr->i(), std::string("attribute '") + key + "'");
  }
  Result<float> Float(const char* key, float fallback) const {
    IONN_ASSIGN_OR_RETURN(const onnx::AttributeProto* attr, Get(key, onnx::AttributeProto::FLOAT));
    return attr ? attr->f() : fallback;
  }
  Result<std::string> String(const char* key, std::string fallback) const {
    IONN_ASSIGN_OR_RETURN(const onnx::AttributeProto* attr, Get(key, onnx::AttributeProto::STRING));
    return attr ? attr->s() : fallback;
  }
  Result<std::vector<int>> Ints(const char* key, std::vector<int> fallback) const {
    IONN_ASSIGN_OR_RETURN(const onnx::AttributeProto* attr, Get(key, onnx::AttributeProto::INTS));
    if (!attr) return fallback;
    std::vector<int> v;
    for (int i = 0; i < attr->ints_size(); ++i) {
      const std::string what = std::string("attribute '") + key + "' value " + std::to_string(i);
      IONN_ASSIGN_OR_RETURN(int x, ToInt(attr->ints(i), what));
      v.push_back(x);
    }
    return v;
  }

 private:
  // nullptr when the node does not set the attribute.
  Result<const onnx::AttributeProto*> Get(const char* key, onnx::AttributeProto::AttributeType type) const {
    auto it = by_name_.find(key);
    if (it == by_name_.end()) return static_cast<const onnx::AttributeProto*>(nullptr);
    if (it->second->type() != type) {
      return Status::Invalid(std::string("attribute '") + key + "' has type " +
                             onnx::AttributeProto::AttributeType_Name(it->second->type()) + ", expects " +
                             onnx::AttributeProto::AttributeType_Name(type));
    }
    return it->second;
  }

  std::unordered_map<std::string, const onnx::AttributeProto*> by_name_;
};

struct Importer {
  Graph graph;
  int opset = 0;
  std::unordered_map<std::string, const onnx::TensorProto*> initializers;
  std::deque<onnx::TensorProto> constants;  // Constant nodes' values, as initializers (stable addresses)
  std::unordered_map<std::string, std::string> tensor_to_ir;  // ONNX tensor -> IR tensor
  std::unordered_set<std::string> layer_names;

  static Result<std::vector<float>> Floats(const onnx::TensorProto& t, int64_t count) {
    if (t.data_type() != onnx::TensorProto::FLOAT) {
      return Status::Unsupported("initializer " + Quoted(t.name()) + " is not float32");
    }
    std::vector<float> v;
    if (t.has_raw_data()) {
      if (t.raw_data().size() != static_cast<size_t>(count) * 4) {
        return Status::Invalid("initializer " + Quoted(t.name()) + " holds " + std::to_string(t.raw_data().size()) +
                               " bytes, its shape needs " + std::to_string(count * 4));
      }
      v.resize(count);
      std::memcpy(v.data(), t.raw_data().data(), count * 4);
    } else {
      if (t.float_data_size() != count) {
        return Status::Invalid("initializer " + Quoted(t.name()) + " holds " + std::to_string(t.float_data_size()) +
                               " values, its shape needs " + std::to_string(count));
      }
      v.assign(t.float_data().begin(), t.float_data().end());
    }
    return v;
  }

  static Result<std::vector<int64_t>> Ints(const onnx::TensorProto& t) {
    const int64_t count = ElementCount(Shape(t.dims().begin(), t.dims().end()));
    if (count < 0 || count > 64) {
      return Status::Invalid("initializer " + Quoted(t.name()) + " has a bad shape for a shape");
    }
    if (t.data_type() != onnx::TensorProto::INT64) {
      return Status::Unsupported("initializer " + Quoted(t.name()) + " must be int64");
    }
    std::vector<int64_t> v;
    if (t.has_raw_data()) {
      if (t.raw_data().size() != static_cast<size_t>(count) * 8) {
        return Status::Invalid("initializer " + Quoted(t.name()) + " has the wrong byte size");
      }
      v.resize(count);
      std::memcpy(v.data(), t.raw_data().data(), count * 8);
    } else {
      if (t.int64_data_size() != count) {
        return Status::Invalid("initializer " + Quoted(t.name()) + " holds " + std::to_string(t.int64_data_size()) +
                               " values, its shape needs " + std::to_string(count));
      }
      v.assign(t.int64_data().begin(), t.int64_data().end());
    }
    return v;
  }

  Result<Weight> WeightOf(const std::string& name, const std::string& role) {
    auto it = initializers.find(name);
    if (it == initializers.end()) {
      return Status::Unsupported(role + " " + Quoted(name) + " must be an initializer (constant weights)");
    }
    Weight w;
    w.name = name;
    for (auto d : it->second->dims()) w.shape.push_back(d);
    if (ElementCount(w.shape) < 0) {
      return Status::Invalid(role + " " + Quoted(name) + " has shape " + Printable(ShapeToString(w.shape), 200) +
                             ": negative or too large");
    }
    IONN_ASSIGN_OR_RETURN(w.data, Floats(*it->second, ElementCount(w.shape)));
    return w;
  }

  Result<std::string> Tensor(const std::string& onnx_name) {
    auto it = tensor_to_ir.find(onnx_name);
    if (it == tensor_to_ir.end()) {
      return Status::Invalid("reads tensor " + Quoted(onnx_name) +
                             ", which no earlier node produces and is not a graph input "
                             "(dangling tensor, or nodes out of topological order)");
    }
    return it->second;
  }

  static Status Window(const Attributes& a, Layer* l, bool needs_kernel, int64_t kh, int64_t kw) {
    IONN_ASSIGN_OR_RETURN(std::string auto_pad, a.String("auto_pad", "NOTSET"));
    if (auto_pad != "NOTSET" && auto_pad != "VALID") {
      return Status::Unsupported("auto_pad " + Printable(auto_pad) + " is not supported; use explicit pads");
    }
    IONN_ASSIGN_OR_RETURN(auto kernel, a.Ints("kernel_shape", {}));
    if (kernel.empty() && needs_kernel) return Status::Invalid("missing kernel_shape");
    if (kernel.empty()) {
      IONN_ASSIGN_OR_RETURN(int h, ToInt(kh, "kernel height"));
      IONN_ASSIGN_OR_RETURN(int w, ToInt(kw, "kernel width"));
      kernel = {h, w};
    }
    if (kernel.size() != 2) return Status::Unsupported("only 2-D windows are supported");
    IONN_ASSIGN_OR_RETURN(auto strides, a.Ints("strides", {1, 1}));
    IONN_ASSIGN_OR_RETURN(auto pads, a.Ints("pads", {0, 0, 0, 0}));
    IONN_ASSIGN_OR_RETURN(auto dil, a.Ints("dilations", {1, 1}));
    if (strides.size() != 2 || pads.size() != 4 || dil.size() != 2) {
      return Status::Invalid("strides, pads or dilations have the wrong length");
    }
    l->kernel_h = kernel[0], l->kernel_w = kernel[1];
    l->stride_h = strides[0], l->stride_w = strides[1];
    l->pad_top = pads[0], l->pad_left = pads[1], l->pad_bottom = pads[2], l->pad_right = pads[3];
    l->dilation_h = dil[0], l->dilation_w = dil[1];
    IONN_ASSIGN_OR_RETURN(int ceil_mode, a.Int("ceil_mode", 0));
    l->ceil_mode = ceil_mode != 0;
    return Status::Ok();
  }

  // A Constant node's value becomes an initializer named by its output.
  Status ImportConstant(const Attributes& a, const std::string& output) {
    if (output.empty()) return Status::Invalid("a Constant needs an output name");
    if (a.size() != 1) return Status::Invalid("a Constant sets exactly one value attribute");
    onnx::TensorProto t;
    IONN_ASSIGN_OR_RETURN(const onnx::AttributeProto* value, a.Find("value", onnx::AttributeProto::TENSOR));
    IONN_ASSIGN_OR_RETURN(const onnx::AttributeProto* f, a.Find("value_float", onnx::AttributeProto::FLOAT));
    IONN_ASSIGN_OR_RETURN(const onnx::AttributeProto* fs, a.Find("value_floats", onnx::AttributeProto::FLOATS));
    IONN_ASSIGN_OR_RETURN(const onnx::AttributeProto* i, a.Find("value_int", onnx::AttributeProto::INT));
    IONN_ASSIGN_OR_RETURN(const onnx::AttributeProto* is, a.Find("value_ints", onnx::AttributeProto::INTS));
    if (value) {
      t = value->t();
    } else if (f) {
      t.set_data_type(onnx::TensorProto::FLOAT);
      t.add_float_data(f->f());
    } else if (fs) {
      t.set_data_type(onnx::TensorProto::FLOAT);
      t.add_dims(fs->floats_size());
      *t.mutable_float_data() = fs->floats();
    } else if (i) {
      t.set_data_type(onnx::TensorProto::INT64);
      t.add_int64_data(i->i());
    } else if (is) {
      t.set_data_type(onnx::TensorProto::INT64);
      t.add_dims(is->ints_size());
      *t.mutable_int64_data() = is->ints();
    } else {
      return Status::Unsupported("a Constant's value must be a tensor, float(s) or int(s) (sparse and string "
                                 "values are not supported)");
    }
    t.set_name(output);
    constants.push_back(std::move(t));
    initializers[output] = &constants.back();
    return Status::Ok();
  }

  Status ImportNode(const onnx::NodeProto& node, int index) {
    if (!node.domain().empty() && node.domain() != "ai.onnx") {
      return Status::Unsupported("operator domain " + Quoted(node.domain()) + " is not supported");
    }
    IONN_RETURN_IF_ERROR(CheckArity(node, opset));
    const std::string& op = node.op_type();
    const std::string& output = node.output(0);
    if (tensor_to_ir.count(output) || initializers.count(output)) {
      return Status::Invalid("writes tensor " + Quoted(output) +
                             ", which a graph input, an initializer or an earlier node already defines");
    }
    Attributes a;
    IONN_RETURN_IF_ERROR(a.Index(node));
    if (op == "Constant") return ImportConstant(a, output);
    if (op == "Identity") {
      auto init = initializers.find(node.input(0));
      if (init != initializers.end()) {  // exporters de-duplicate equal initializers behind Identity nodes
        initializers[output] = init->second;
        return Status::Ok();
      }
      IONN_ASSIGN_OR_RETURN(std::string in, Tensor(node.input(0)));
      tensor_to_ir[output] = in;
      return Status::Ok();
    }
    Layer l;
    l.name = node.name();
    if (l.name.empty() || layer_names.count(l.name) || tensor_to_ir.count(l.name)) l.name = output;
    if (layer_names.count(l.name) || tensor_to_ir.count(l.name)) l.name += "#" + std::to_string(index);
    auto data_input = [&](int i) -> Status {
      if (node.input_size() <= i || node.input(i).empty()) return Status::Invalid("missing input " + std::to_string(i));
      IONN_ASSIGN_OR_RETURN(std::string t, Tensor(node.input(i)));
      l.inputs.push_back(std::move(t));
      return Status::Ok();
    };
    auto weight = [&](int i, const std::string& role) -> Status {
      if (node.input_size() <= i || node.input(i).empty()) return Status::Invalid("missing " + role);
      IONN_ASSIGN_OR_RETURN(Weight w, WeightOf(node.input(i), role));
      l.weights.push_back(std::move(w));
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
      IONN_ASSIGN_OR_RETURN(l.group, a.Int("group", 1));
      IONN_ASSIGN_OR_RETURN(l.out_channels, ToInt(w[0], "the number of output channels"));
    } else if (op == "Relu") {
      l.kind = LayerKind::kRelu;
      IONN_RETURN_IF_ERROR(data_input(0));
    } else if (op == "Clip") {
      l.kind = LayerKind::kClip;
      IONN_RETURN_IF_ERROR(data_input(0));
      l.clip_min = -3.4e38f, l.clip_max = 3.4e38f;
      if (opset < 11) {
        IONN_ASSIGN_OR_RETURN(l.clip_min, a.Float("min", l.clip_min));
        IONN_ASSIGN_OR_RETURN(l.clip_max, a.Float("max", l.clip_max));
      } else {
        for (int i = 1; i <= 2 && i < node.input_size(); ++i) {
          if (node.input(i).empty()) continue;
          auto it = initializers.find(node.input(i));
          if (it == initializers.end()) return Status::Unsupported("Clip bounds must be initializers");
          const Shape dims(it->second->dims().begin(), it->second->dims().end());
          if (ElementCount(dims) != 1) {
            return Status::Invalid(std::string("Clip ") + (i == 1 ? "min " : "max ") + Quoted(node.input(i)) +
                                   " has shape " + Printable(ShapeToString(dims), 200) + ", expects one value");
          }
          IONN_ASSIGN_OR_RETURN(auto v, Floats(*it->second, 1));
          (i == 1 ? l.clip_min : l.clip_max) = v[0];
        }
      }
    } else if (op == "LRN") {
      l.kind = LayerKind::kLrn;
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_ASSIGN_OR_RETURN(l.lrn_size, a.Int("size", 0));
      IONN_ASSIGN_OR_RETURN(l.lrn_alpha, a.Float("alpha", 1e-4f));
      IONN_ASSIGN_OR_RETURN(l.lrn_beta, a.Float("beta", 0.75f));
      IONN_ASSIGN_OR_RETURN(l.lrn_bias, a.Float("bias", 1.0f));
    } else if (op == "MaxPool" || op == "AveragePool") {
      l.kind = op == "MaxPool" ? LayerKind::kMaxPool : LayerKind::kAvgPool;
      if (node.output_size() > 1 && !node.output(1).empty()) return Status::Unsupported("MaxPool indices output");
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_RETURN_IF_ERROR(Window(a, &l, true, 0, 0));
      IONN_ASSIGN_OR_RETURN(int count_include_pad, a.Int("count_include_pad", 0));
      l.count_include_pad = count_include_pad != 0;
    } else if (op == "GlobalAveragePool") {
      l.kind = LayerKind::kGlobalAvgPool;
      IONN_RETURN_IF_ERROR(data_input(0));
    } else if (op == "Gemm" || op == "MatMul") {
      l.kind = LayerKind::kFc;
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_RETURN_IF_ERROR(weight(1, "weight"));
      const bool gemm = op == "Gemm";
      IONN_ASSIGN_OR_RETURN(int trans_a, gemm ? a.Int("transA", 0) : Result<int>(0));
      IONN_ASSIGN_OR_RETURN(int trans_b, gemm ? a.Int("transB", 0) : Result<int>(0));
      IONN_ASSIGN_OR_RETURN(float alpha, gemm ? a.Float("alpha", 1) : Result<float>(1.0f));
      IONN_ASSIGN_OR_RETURN(float beta, gemm ? a.Float("beta", 1) : Result<float>(1.0f));
      if (trans_a != 0) return Status::Unsupported("Gemm with transA=1");
      Weight& w = l.weights[0];
      if (w.shape.size() != 2) return Status::Invalid("weight must be 2-D, is " + ShapeToString(w.shape));
      if (trans_b == 0) {  // [in, out] -> [out, in]
        const int64_t in = w.shape[0], out = w.shape[1];
        std::vector<float> t(w.data.size());
        for (int64_t i = 0; i < in; ++i)
          for (int64_t o = 0; o < out; ++o) t[o * in + i] = w.data[i * out + o];
        w.data = std::move(t);
        w.shape = {out, in};
      }
      if (alpha != 1) for (float& v : w.data) v *= alpha;
      IONN_ASSIGN_OR_RETURN(l.out_channels, ToInt(w.shape[0], "the number of outputs"));
      if (gemm && node.input_size() > 2 && !node.input(2).empty()) {
        IONN_RETURN_IF_ERROR(weight(2, "bias"));
        Weight& b = l.weights[1];
        if (ElementCount(b.shape) != l.out_channels) return Status::Unsupported("Gemm bias must have one value per output");
        b.shape = {l.out_channels};
        if (beta != 1) for (float& v : b.data) v *= beta;
      }
    } else if (op == "Flatten") {
      l.kind = LayerKind::kFlatten;
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_ASSIGN_OR_RETURN(l.axis, a.Int("axis", 1));
    } else if (op == "Reshape") {
      l.kind = LayerKind::kReshape;
      IONN_RETURN_IF_ERROR(data_input(0));
      auto it = initializers.find(node.input(1));
      if (it == initializers.end()) return Status::Unsupported("Reshape shape must be an initializer");
      IONN_ASSIGN_OR_RETURN(l.reshape_to, Ints(*it->second));
    } else if (op == "Dropout") {
      l.kind = LayerKind::kDropout;
      if (node.output_size() > 1 && !node.output(1).empty()) return Status::Unsupported("Dropout mask output");
      IONN_RETURN_IF_ERROR(data_input(0));
    } else if (op == "Softmax") {
      l.kind = LayerKind::kSoftmax;
      IONN_RETURN_IF_ERROR(data_input(0));
      l.softmax_coerce_2d = opset < 13;
      IONN_ASSIGN_OR_RETURN(l.axis, a.Int("axis", opset < 13 ? 1 : -1));
    } else if (op == "Concat") {
      l.kind = LayerKind::kConcat;
      for (int i = 0; i < node.input_size(); ++i) IONN_RETURN_IF_ERROR(data_input(i));
      if (!a.Has("axis")) return Status::Invalid("Concat needs an axis");
      IONN_ASSIGN_OR_RETURN(l.axis, a.Int("axis", 1));
    } else if (op == "Add" || op == "Sum") {
      l.kind = LayerKind::kAdd;
      if (node.input_size() != 2) return Status::Unsupported(op + " with " + Plural(node.input_size(), "input"));
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
      IONN_ASSIGN_OR_RETURN(l.epsilon, a.Float("epsilon", 1e-5f));
      bool identity_stats = l.epsilon == 0;
      for (float v : l.weights[2].data) identity_stats = identity_stats && v == 0;
      for (float v : l.weights[3].data) identity_stats = identity_stats && v == 1;
      l.kind = identity_stats ? LayerKind::kScale : LayerKind::kBatchNorm;
    } else {
      return Status::Internal("operator " + Quoted(op) + " is in kOnnxOpArities but import has no case for it");
    }
    tensor_to_ir[output] = l.name;
    layer_names.insert(l.name);
    graph.layers.push_back(std::move(l));
    return Status::Ok();
  }

  // A Flatten (axis 1) whose only reader is a fully connected layer is that
  // layer's implicit flatten, as in Caffe's InnerProduct.
  void FoldFlattens() {
    std::unordered_map<std::string, int> reads;
    std::unordered_map<std::string, size_t> reader;  // the last layer that reads it
    for (size_t k = 0; k < graph.layers.size(); ++k) {
      for (const auto& in : graph.layers[k].inputs) ++reads[in], reader[in] = k;
    }
    std::unordered_set<std::string> outputs(graph.outputs.begin(), graph.outputs.end());
    std::vector<Layer> kept;
    for (Layer& l : graph.layers) {
      if (l.kind == LayerKind::kFlatten && l.axis == 1 && reads[l.name] == 1 && !outputs.count(l.name)) {
        Layer& fc = graph.layers[reader[l.name]];
        if (fc.kind == LayerKind::kFc) {
          for (auto& in : fc.inputs) {
            if (in == l.name) in = l.inputs[0];
          }
          continue;
        }
      }
      kept.push_back(std::move(l));
    }
    graph.layers = std::move(kept);
  }
};

Status CheckTensorType(const onnx::ValueInfoProto& v) {
  if (!v.type().has_tensor_type()) return Status::Unsupported(Quoted(v.name()) + " is not a tensor");
  if (v.type().tensor_type().elem_type() != onnx::TensorProto::FLOAT) {
    return Status::Unsupported(Quoted(v.name()) + " is not float32");
  }
  if (!v.type().tensor_type().has_shape()) return Status::Invalid(Quoted(v.name()) + " has no shape");
  return Status::Ok();
}

Result<Graph> Import(const std::string& bytes) {
  onnx::ModelProto model;
  if (bytes.empty()) return Status::Invalid("the file is empty");
  if (!model.ParseFromString(bytes)) {
    return Status::Invalid("not a valid ONNX model (protobuf parse failed: truncated or not ONNX)");
  }
  if (!model.has_graph()) return Status::Invalid("the model has no graph (truncated or not ONNX)");
  Importer im;
  int64_t opset = 0;
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  }
  if (opset < kMinOpset || opset > kMaxOpset) {
    return Status::Unsupported("opset " + std::to_string(opset) + " is not supported (supported: " +
                               std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) + ")");
  }
  im.opset = static_cast<int>(opset);
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
      const std::string& name = node.name().empty() && node.output_size() ? node.output(0) : node.name();
      return s.WithContext("node " + std::to_string(i) + " " + Quoted(name) + " (" + Printable(node.op_type()) + ")");
    }
  }
  for (const auto& out : g.output()) {
    auto it = im.tensor_to_ir.find(out.name());
    if (it == im.tensor_to_ir.end() || !im.layer_names.count(it->second)) {
      return Status::Invalid("graph output " + Quoted(out.name()) + " is not produced by any node");
    }
    im.graph.outputs.push_back(it->second);
  }
  im.FoldFlattens();
  IONN_RETURN_IF_ERROR(im.graph.Finalize());
  return std::move(im.graph);
}

}  // namespace

Result<Graph> ParseOnnx(const std::string& bytes) {
  auto graph = Import(bytes);
  if (graph.ok()) return graph;
  // Graph::Finalize quotes layer and tensor names as they are; keep the message on one line.
  return Status(graph.status().code(), Printable(graph.status().message(), std::string::npos));
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
  t->mutable_shape();  // a scalar has a shape too: no dimensions
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
  if (!out) return Status::Io("cannot write '" + path + "': " + std::strerror(errno));
  out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
  out.flush();
  if (!out) return Status::Io("cannot write '" + path + "': " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace ionn
