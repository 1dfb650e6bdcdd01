#include "ionn/onnx_io.h"

#include "ionn/file.h"
#include "ionn/op.h"
#include "einsum.h"
#include "ops/onnx_node.h"
#include "shape.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <onnx/onnx_pb.h>

namespace ionn {

const std::vector<OnnxOpArity>& OnnxOpArities() {
  static const std::vector<OnnxOpArity> rows = [] {
    std::vector<OnnxOpArity> all(std::begin(kOnnxOpArities), std::end(kOnnxOpArities));
    for (const OpDescriptor* op : RegisteredOps()) all.insert(all.end(), op->onnx.begin(), op->onnx.end());
    return all;
  }();
  return rows;
}

const OnnxOpArity* FindOnnxOpArity(const std::string& op_type, int opset) {
  const OnnxOpArity* found = nullptr;
  for (const OnnxOpArity& row : OnnxOpArities()) {
    if (op_type == row.op_type && row.since_opset <= opset) found = &row;
  }
  return found;
}

namespace {

// Opsets below 7 pass only for the operators whose rows start there (their
// definition has not changed since): every other one starts at 7.
constexpr int kMinOpset = 1, kMaxOpset = 18, kExportOpset = 11;

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
  for (const OnnxOpArity& row : OnnxOpArities()) {
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
    const OnnxOpArity* later = FindOnnxOpArity(op, kMaxOpset);
    if (later) {
      int first = later->since_opset;
      for (const OnnxOpArity& other : OnnxOpArities()) {
        if (op == other.op_type) first = std::min(first, other.since_opset);
      }
      return Status::Unsupported("operator " + Quoted(op) + " at opset " + std::to_string(opset) +
                                 " (supported from opset " + std::to_string(first) + ")");
    }
    return Status::Unsupported("operator " + Quoted(op) + " is not supported (supported: " + SupportedOps() + ")");
  }
  // Where another opset allows other counts, the message says which opset it holds for.
  bool inputs_vary = false, outputs_vary = false;
  for (const OnnxOpArity& other : OnnxOpArities()) {
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

// A value known at import: a constant, an initializer or a shape. Integers
// (int64, int32, bool) and floats (float, double) are held as doubles, exact
// for every integer a shape computation meets.
struct Value {
  bool is_float = false;
  Shape dims;
  std::vector<double> v;
};

// Folded values are small (shapes, scalars, a few weights): larger ones are
// refused rather than computed at import, each and all together.
constexpr int64_t kMaxFoldElements = int64_t{1} << 24;
constexpr int64_t kMaxFoldedElements = int64_t{1} << 26;
constexpr int64_t kMaxFoldReadElements = int64_t{1} << 28;

Status CheckFoldSize(const Shape& dims) {
  const int64_t n = ElementCount(dims);
  if (n < 0 || n > kMaxFoldElements) {
    return Status::Unsupported("the value computed at import would have shape " + ShapeToString(dims) +
                               ", over 2^24 elements");
  }
  return Status::Ok();
}

Result<Value> ValueOf(const onnx::TensorProto& t) {
  Value out;
  out.dims.assign(t.dims().begin(), t.dims().end());
  const int64_t n = ElementCount(out.dims);
  // Each dimension bounded too (a 0 elsewhere would let one overflow strides), and the rank.
  bool bounded = out.dims.size() <= 8;
  for (int64_t d : out.dims) bounded = bounded && d <= kMaxFoldElements;
  if (n < 0 || n > kMaxFoldElements || !bounded) {
    return Status::Unsupported("constant " + Quoted(t.name()) + " has shape " +
                               Printable(ShapeToString(out.dims), 200) + ": negative or too large to compute with");
  }
  auto raw = [&](size_t width, auto read) -> Status {
    if (t.raw_data().size() != static_cast<size_t>(n) * width) {
      return Status::Invalid("constant " + Quoted(t.name()) + " holds " + std::to_string(t.raw_data().size()) +
                             " bytes, its shape needs " + std::to_string(n * static_cast<int64_t>(width)));
    }
    out.v.resize(n);
    for (int64_t i = 0; i < n; ++i) out.v[i] = read(t.raw_data().data() + i * width);
    return Status::Ok();
  };
  auto count = [&](int have) -> Status {
    if (have != n) {
      return Status::Invalid("constant " + Quoted(t.name()) + " holds " + std::to_string(have) +
                             " values, its shape needs " + std::to_string(n));
    }
    return Status::Ok();
  };
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      out.is_float = true;
      if (t.has_raw_data()) { IONN_RETURN_IF_ERROR(raw(4, [](const char* p) { float f; std::memcpy(&f, p, 4); return double(f); })); return out; }
      IONN_RETURN_IF_ERROR(count(t.float_data_size()));
      out.v.assign(t.float_data().begin(), t.float_data().end());
      return out;
    case onnx::TensorProto::DOUBLE:
      out.is_float = true;
      if (t.has_raw_data()) { IONN_RETURN_IF_ERROR(raw(8, [](const char* p) { double d; std::memcpy(&d, p, 8); return d; })); return out; }
      IONN_RETURN_IF_ERROR(count(t.double_data_size()));
      out.v.assign(t.double_data().begin(), t.double_data().end());
      return out;
    case onnx::TensorProto::INT64:
      if (t.has_raw_data()) { IONN_RETURN_IF_ERROR(raw(8, [](const char* p) { int64_t i; std::memcpy(&i, p, 8); return double(i); })); return out; }
      IONN_RETURN_IF_ERROR(count(t.int64_data_size()));
      out.v.assign(t.int64_data().begin(), t.int64_data().end());
      return out;
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::BOOL:
      if (t.has_raw_data() && t.data_type() == onnx::TensorProto::INT32) {
        { IONN_RETURN_IF_ERROR(raw(4, [](const char* p) { int32_t i; std::memcpy(&i, p, 4); return double(i); })); return out; }
      }
      if (t.has_raw_data()) { IONN_RETURN_IF_ERROR(raw(1, [](const char* p) { return double(*p != 0); })); return out; }
      IONN_RETURN_IF_ERROR(count(t.int32_data_size()));
      out.v.assign(t.int32_data().begin(), t.int32_data().end());
      return out;
    default:
      return Status::Unsupported("constant " + Quoted(t.name()) + " has element type " +
                                 onnx::TensorProto::DataType_Name(static_cast<onnx::TensorProto::DataType>(t.data_type())) +
                                 " (supported: float, double, int64, int32, bool)");
  }
}

// A held integer back to int64. Doubles cannot hold INT64_MAX (exporters'
// "to the end" in Slice): the conversion saturates instead of overflowing.
int64_t ToInt64(double x) {
  if (std::isnan(x)) return 0;
  if (x >= 9.2233720368547758e18) return INT64_MAX;
  if (x <= -9.2233720368547758e18) return INT64_MIN;
  return static_cast<int64_t>(x);
}

onnx::TensorProto ToProto(const Value& value, const std::string& name) {
  onnx::TensorProto t;
  t.set_name(name);
  for (int64_t d : value.dims) t.add_dims(d);
  if (value.is_float) {
    t.set_data_type(onnx::TensorProto::FLOAT);
    for (double x : value.v) t.add_float_data(static_cast<float>(x));
  } else {
    t.set_data_type(onnx::TensorProto::INT64);
    for (double x : value.v) t.add_int64_data(ToInt64(x));
  }
  return t;
}

// An axis of a rank-`rank` tensor, negative ones counted from the end.
Result<int> NormalizedAxis(int64_t axis, size_t rank, const std::string& what) {
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r) {
    return Status::Invalid(what + " " + std::to_string(axis) + " is out of range for rank " + std::to_string(r));
  }
  return static_cast<int>(axis < 0 ? axis + r : axis);
}

// Row-major strides of a shape.
std::vector<int64_t> Strides(const Shape& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

// Numpy's broadcast shape of a and b, or an error.
Result<Shape> BroadcastShape(const Shape& a, const Shape& b) {
  Shape out;
  IONN_RETURN_IF_ERROR(Broadcast(a, b, &out));
  return out;
}

Result<Value> Broadcast2(const Value& a, const Value& b, double (*op)(double, double), bool is_float);

// A known value broadcast to shape `to` (which BroadcastShape gave).
Result<Value> BroadcastTo(const Value& a, const Shape& to) {
  if (to.size() > 8) return Status::Unsupported("more than 8 dimensions");
  IONN_RETURN_IF_ERROR(CheckFoldSize(to));
  IONN_ASSIGN_OR_RETURN(Shape out, BroadcastShape(a.dims, to));
  if (out != to) return Status::Invalid("shape " + ShapeToString(a.dims) + " does not expand to " + ShapeToString(to));
  Shape from(to.size() - a.dims.size(), 1);
  from.insert(from.end(), a.dims.begin(), a.dims.end());
  const auto sa = Strides(from), so = Strides(to);
  Value r;
  r.is_float = a.is_float, r.dims = to;
  const int64_t n = ElementCount(to);
  r.v.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t at = 0, rest = i;
    for (size_t d = 0; d < to.size(); ++d) {
      at += (from[d] == 1 ? 0 : rest / so[d]) * sa[d];
      rest %= so[d];
    }
    r.v[i] = a.v[at];
  }
  return r;
}

// Numpy broadcasting of a binary operation on two known values.
Result<Value> Broadcast2(const Value& a, const Value& b, double (*op)(double, double), bool is_float) {
  const size_t rank = std::max(a.dims.size(), b.dims.size());
  Shape da(rank, 1), db(rank, 1), out(rank);
  std::copy(a.dims.begin(), a.dims.end(), da.begin() + (rank - a.dims.size()));
  std::copy(b.dims.begin(), b.dims.end(), db.begin() + (rank - b.dims.size()));
  for (size_t i = 0; i < rank; ++i) {
    if (da[i] != db[i] && da[i] != 1 && db[i] != 1) {
      return Status::Invalid("shapes " + ShapeToString(a.dims) + " and " + ShapeToString(b.dims) + " do not broadcast");
    }
    out[i] = da[i] == 1 ? db[i] : da[i];
  }
  const int64_t n = ElementCount(out);
  IONN_RETURN_IF_ERROR(CheckFoldSize(out));
  const auto sa = Strides(da), sb = Strides(db), so = Strides(out);
  Value r;
  r.is_float = is_float;
  r.dims = out;
  r.v.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t ia = 0, ib = 0, rest = i;
    for (size_t d = 0; d < rank; ++d) {
      const int64_t k = rest / so[d];
      rest %= so[d];
      ia += (da[d] == 1 ? 0 : k) * sa[d];
      ib += (db[d] == 1 ? 0 : k) * sb[d];
    }
    r.v[i] = op(a.v[ia], b.v[ib]);
  }
  return r;
}

// x with its axes in the order `perm` (a permutation of x's axes).
Value Transposed(const Value& x, const std::vector<int64_t>& perm) {
  Value r;
  r.is_float = x.is_float;
  for (int64_t p : perm) r.dims.push_back(x.dims[p]);
  const auto in_strides = Strides(x.dims), out_strides = Strides(r.dims);
  const int64_t n = ElementCount(r.dims);
  r.v.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t at = 0, rest = i;
    for (size_t d = 0; d < perm.size(); ++d) {
      at += rest / out_strides[d] * in_strides[perm[d]];
      rest %= out_strides[d];
    }
    r.v.push_back(x.v[at]);
  }
  return r;
}

// ONNX Slice on a tensor of shape `dims`: per axis, the first index taken,
// how many and the step (axes not named: all of them).
struct AxisRange {
  int64_t start = 0, count = 0, step = 1;
};
Result<std::vector<AxisRange>> SliceRanges(const Shape& dims, const std::vector<int64_t>& starts,
                                           const std::vector<int64_t>& ends, std::vector<int64_t> axes,
                                           std::vector<int64_t> steps) {
  std::vector<AxisRange> r(dims.size());
  for (size_t d = 0; d < dims.size(); ++d) r[d].count = dims[d];
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
    return Status::Invalid("starts, ends, axes and steps have different lengths");
  }
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < starts.size(); ++i) {
    IONN_ASSIGN_OR_RETURN(int axis, NormalizedAxis(axes[i], dims.size(), "Slice axis"));
    if (seen[axis]) return Status::Invalid("Slice names axis " + std::to_string(axis) + " twice");
    seen[axis] = true;
    const int64_t d = dims[axis];
    if (steps[i] == 0) return Status::Invalid("Slice step 0");
    const int64_t step = std::clamp<int64_t>(steps[i], -(d + 1), d + 1);  // a longer step takes one element
    // Bounds beyond the axis (INT64_MAX for "to the end") clamp to it.
    int64_t start = starts[i] < 0 ? std::max<int64_t>(starts[i], -d) + d : starts[i];
    int64_t end = ends[i] < 0 ? std::max<int64_t>(ends[i], -d - 1) + d : ends[i];
    if (step > 0) {
      start = std::min(start, d), end = std::min(end, d);
      r[axis] = {start, end > start ? (end - start + step - 1) / step : 0, step};
    } else {
      start = std::min(start, d - 1), end = std::min(end, d - 1);
      r[axis] = {start, start > end ? (start - end - step - 1) / -step : 0, step};
    }
  }
  return r;
}

struct Importer {
  Graph graph;
  int opset = 0;
  std::unordered_map<std::string, const onnx::TensorProto*> initializers;
  std::deque<onnx::TensorProto> constants;  // Constant nodes' values, as initializers (stable addresses)
  std::unordered_map<std::string, std::string> tensor_to_ir;  // ONNX tensor -> IR tensor
  std::unordered_map<std::string, std::string> uncomputed;    // optional outputs not computed -> what they are
  std::unordered_map<std::string, Shape> shapes;              // IR tensor -> its shape, inferred as layers come
  std::unordered_set<std::string> layer_names;

  bool Known(const std::string& onnx_name) const { return !onnx_name.empty() && initializers.count(onnx_name); }
  // Every constant folding reads is decoded anew: the elements read are
  // bounded, as those written are, so that a small file of many readers of
  // one large constant cannot keep import busy.
  int64_t read_elements = 0;
  Result<Value> KnownValue(const std::string& onnx_name) {
    auto it = initializers.find(onnx_name);
    if (it == initializers.end()) return Status::Internal("no constant " + Quoted(onnx_name));
    read_elements += ElementCount(Shape(it->second->dims().begin(), it->second->dims().end()));
    if (read_elements > kMaxFoldReadElements) {
      return Status::Unsupported("the values read by computations at import pass 2^28 elements in all");
    }
    return ValueOf(*it->second);
  }
  // Attributes an opset moved to inputs: present at or after that opset,
  // they would be ignored, so they are refused.
  static Status CheckMovedAttributes(const std::string& op, const Attributes& a, int opset) {
    static const struct {
      const char* op;
      const char* attribute;
      int input_since;
    } kMoved[] = {{"Clip", "min", 11},       {"Clip", "max", 11},      {"Split", "split", 13},
                  {"Squeeze", "axes", 13},   {"Unsqueeze", "axes", 13}, {"Slice", "starts", 10},
                  {"Slice", "ends", 10},     {"Slice", "axes", 10},     {"Pad", "pads", 11},
                  {"Pad", "value", 11},      {"Dropout", "ratio", 12}};
    for (const auto& m : kMoved) {
      if (op == m.op && opset >= m.input_since && a.Has(m.attribute)) {
        return Status::Invalid("attribute '" + std::string(m.attribute) + "' is not part of " + op + " at opset " +
                               std::to_string(opset) + " (an input since opset " + std::to_string(m.input_since) + ")");
      }
    }
    return Status::Ok();
  }
  // A value computed at import becomes a constant named `onnx_name`.
  Status Define(const std::string& onnx_name, const Value& value) {
    folded_elements += static_cast<int64_t>(value.v.size());
    if (folded_elements > kMaxFoldedElements) {
      return Status::Unsupported("the values computed at import pass 2^26 elements in all");
    }
    constants.push_back(ToProto(value, onnx_name));
    initializers[onnx_name] = &constants.back();
    return Status::Ok();
  }
  int64_t folded_elements = 0;
  // Integers from a known input (axes, starts, ...), or from an attribute
  // where the opset keeps them there.
  Result<std::vector<int64_t>> IntsOf(const onnx::NodeProto& node, int input, const Attributes& a, const char* attr,
                                      bool from_input) {
    if (!from_input) {
      IONN_ASSIGN_OR_RETURN(const onnx::AttributeProto* p, a.Find(attr, onnx::AttributeProto::INTS));
      if (!p) return std::vector<int64_t>{};
      return std::vector<int64_t>(p->ints().begin(), p->ints().end());
    }
    if (node.input_size() <= input || node.input(input).empty()) return std::vector<int64_t>{};
    if (!Known(node.input(input))) {
      return Status::Unsupported(std::string(attr) + " " + Quoted(node.input(input)) +
                                 " must be known at import (a constant, or computed from shapes)");
    }
    IONN_ASSIGN_OR_RETURN(Value v, KnownValue(node.input(input)));
    if (v.is_float) return Status::Invalid(std::string(attr) + " " + Quoted(node.input(input)) + " must be integers");
    if (v.dims.size() > 1) return Status::Invalid(std::string(attr) + " " + Quoted(node.input(input)) + " must be 1-D");
    std::vector<int64_t> ints;
    for (double x : v.v) ints.push_back(ToInt64(x));
    return ints;
  }
  // The shape of a tensor a node reads: a layer's or input's, or a constant's.
  Result<Shape> ShapeOf(const std::string& onnx_name) {
    if (Known(onnx_name)) {
      const auto* t = initializers.at(onnx_name);
      return Shape(t->dims().begin(), t->dims().end());
    }
    IONN_ASSIGN_OR_RETURN(std::string ir, Tensor(onnx_name));
    auto it = shapes.find(ir);
    if (it == shapes.end()) return Status::Internal("no shape for " + Quoted(ir));
    return it->second;
  }

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
      if (count > 0) std::memcpy(v.data(), t.raw_data().data(), count * 4);  // an empty vector's data() may be null
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
      if (count > 0) std::memcpy(v.data(), t.raw_data().data(), count * 8);
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
    if (auto extra = uncomputed.find(onnx_name); it == tensor_to_ir.end() && extra != uncomputed.end()) {
      return Status::Unsupported("reads tensor " + Quoted(onnx_name) + ", " + extra->second + ", which ionn does not compute");
    }
    if (it == tensor_to_ir.end()) {
      return Status::Invalid("reads tensor " + Quoted(onnx_name) +
                             ", which no earlier node produces and is not a graph input "
                             "(dangling tensor, or nodes out of topological order)");
    }
    return it->second;
  }

  // `x`: the input's shape (NCHW), for auto_pad SAME_UPPER and SAME_LOWER.
  static Status Window(const Attributes& a, Layer* l, bool needs_kernel, int64_t kh, int64_t kw, const Shape& x) {
    IONN_ASSIGN_OR_RETURN(std::string auto_pad, a.String("auto_pad", "NOTSET"));
    if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER") {
      return Status::Invalid("auto_pad " + Quoted(auto_pad) + " is not NOTSET, VALID, SAME_UPPER or SAME_LOWER");
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
    if (auto_pad != "NOTSET" && std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p != 0; })) {
      return Status::Invalid("pads given with auto_pad " + auto_pad);
    }
    IONN_ASSIGN_OR_RETURN(auto dil, a.Ints("dilations", {1, 1}));
    if (strides.size() != 2 || pads.size() != 4 || dil.size() != 2) {
      return Status::Invalid("strides, pads or dilations have the wrong length");
    }
    l->kernel_h = kernel[0], l->kernel_w = kernel[1];
    l->stride_h = strides[0], l->stride_w = strides[1];
    l->pad_top = pads[0], l->pad_left = pads[1], l->pad_bottom = pads[2], l->pad_right = pads[3];
    l->dilation_h = dil[0], l->dilation_w = dil[1];
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {  // output = ceil(input / stride)
      if (x.size() != 4) return Status::Unsupported("auto_pad " + auto_pad + " of a " + ShapeToString(x) + " input");
      const int64_t in[2] = {x[2], x[3]}, k[2] = {l->kernel_h, l->kernel_w}, s[2] = {l->stride_h, l->stride_w},
                    d[2] = {l->dilation_h, l->dilation_w};
      int64_t total[2];
      for (int i = 0; i < 2; ++i) {
        if (s[i] < 1 || s[i] > (1 << 20) || d[i] < 1 || d[i] > (1 << 20) || k[i] < 1 || k[i] > (1 << 20)) {
          return Status::Invalid("kernel, strides or dilations out of range");
        }
        total[i] = std::max<int64_t>(0, ((in[i] + s[i] - 1) / s[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in[i]);
        if (total[i] > INT_MAX) return Status::Invalid("auto_pad " + auto_pad + " needs more padding than fits");
      }
      const bool upper = auto_pad == "SAME_UPPER";  // the odd pixel at the end
      l->pad_top = upper ? total[0] / 2 : total[0] - total[0] / 2, l->pad_bottom = total[0] - l->pad_top;
      l->pad_left = upper ? total[1] / 2 : total[1] - total[1] / 2, l->pad_right = total[1] - l->pad_left;
    }
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

  // Folds a node whose inputs are all known at import (shape arithmetic,
  // constants) into a constant; false when it is a layer of the model.
  Result<bool> Fold(const onnx::NodeProto& node, const Attributes& a) {
    const std::string& op = node.op_type();
    static const std::unordered_set<std::string> kFoldable = {
        "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast",    "Slice", "Add",   "Sub",  "Mul", "Sum", "Max", "Min", "Mean",
        "Div",   "Reshape", "ConstantOfShape", "Equal", "Less", "Greater", "And", "Or", "Not", "Mod",
        "Where", "Expand", "Range", "ScatterND", "Transpose", "Pow", "Neg", "Abs", "Sqrt", "Exp", "Log", "Floor",
        "Ceil"};
    if (!kFoldable.count(op)) return false;
    const std::string& output = node.output(0);
    if (op == "Shape") {  // every shape is static at import
      IONN_ASSIGN_OR_RETURN(Shape dims, ShapeOf(node.input(0)));
      const int64_t rank = static_cast<int64_t>(dims.size());
      IONN_ASSIGN_OR_RETURN(int start, a.Int("start", 0));
      IONN_ASSIGN_OR_RETURN(int end, a.Int("end", static_cast<int>(rank)));
      const int64_t lo = std::clamp<int64_t>(start < 0 ? start + rank : start, 0, rank);
      const int64_t hi = std::clamp<int64_t>(end < 0 ? end + rank : end, 0, rank);
      Value v;
      for (int64_t d = lo; d < hi; ++d) v.v.push_back(static_cast<double>(dims[d]));
      v.dims = {static_cast<int64_t>(v.v.size())};
      IONN_RETURN_IF_ERROR(Define(output, v));
      return true;
    }
    for (int i = 0; i < node.input_size(); ++i) {
      if (!node.input(i).empty() && !Known(node.input(i))) return false;
    }
    if (op == "ConstantOfShape") {
      IONN_ASSIGN_OR_RETURN(std::vector<int64_t> dims, IntsOf(node, 0, a, "shape", true));
      if (dims.size() > 8) return Status::Unsupported("ConstantOfShape of more than 8 dimensions");
      Value v;
      v.is_float = true;
      double fill = 0;
      IONN_ASSIGN_OR_RETURN(const onnx::AttributeProto* value, a.Find("value", onnx::AttributeProto::TENSOR));
      if (value) {
        IONN_ASSIGN_OR_RETURN(Value one, ValueOf(value->t()));
        if (one.v.size() != 1) return Status::Invalid("value must hold one element");
        v.is_float = one.is_float, fill = one.v[0];
      }
      v.dims.assign(dims.begin(), dims.end());
      const int64_t n = ElementCount(v.dims);
      if (n < 0 || n > kMaxFoldElements) return Status::Unsupported("shape " + ShapeToString(v.dims) + " is too large");
      v.v.assign(n, fill);
      IONN_RETURN_IF_ERROR(Define(output, v));
      return true;
    }
    if (op == "Range") {  // start, limit, delta: scalars
      Value v[3];
      for (int i = 0; i < 3; ++i) {
        IONN_ASSIGN_OR_RETURN(v[i], KnownValue(node.input(i)));
        if (v[i].v.size() != 1) return Status::Invalid("Range's inputs must be scalars");
      }
      const double start = v[0].v[0], limit = v[1].v[0], delta = v[2].v[0];
      if (delta == 0 || !std::isfinite(start) || !std::isfinite(limit) || !std::isfinite(delta)) {
        return Status::Invalid("Range needs finite start and limit and a delta other than 0");
      }
      const double count = std::max(std::ceil((limit - start) / delta), 0.0);
      if (count > static_cast<double>(kMaxFoldElements)) return Status::Unsupported("Range of more than 2^24 values");
      Value r;
      r.is_float = v[0].is_float || v[1].is_float || v[2].is_float;
      r.dims = {static_cast<int64_t>(count)};
      for (int64_t i = 0; i < r.dims[0]; ++i) r.v.push_back(start + static_cast<double>(i) * delta);
      IONN_RETURN_IF_ERROR(Define(output, r));
      return true;
    }
    IONN_ASSIGN_OR_RETURN(Value x, KnownValue(node.input(0)));
    Value r;
    r.is_float = x.is_float;
    if (op == "Equal" || op == "Less" || op == "Greater" || op == "And" || op == "Or") {
      IONN_ASSIGN_OR_RETURN(Value y, KnownValue(node.input(1)));
      double (*fn)(double, double) = op == "Equal"  ? [](double p, double q) { return double(p == q); }
                                     : op == "Less" ? [](double p, double q) { return double(p < q); }
                                     : op == "Greater" ? [](double p, double q) { return double(p > q); }
                                     : op == "And"     ? [](double p, double q) { return double(p != 0 && q != 0); }
                                                       : [](double p, double q) { return double(p != 0 || q != 0); };
      IONN_ASSIGN_OR_RETURN(r, Broadcast2(x, y, fn, false));
    } else if (op == "Mod") {
      IONN_ASSIGN_OR_RETURN(Value y, KnownValue(node.input(1)));
      IONN_ASSIGN_OR_RETURN(int fmod, a.Int("fmod", 0));
      const bool is_float = x.is_float || y.is_float;
      if (is_float && fmod != 1) return Status::Invalid("Mod of floats needs fmod=1");
      for (double q : y.v) {
        if (q == 0 && !is_float) return Status::Invalid("integer Mod by zero");
      }
      // fmod=1: the sign of the dividend (C's fmod); 0: of the divisor (Python's %).
      IONN_ASSIGN_OR_RETURN(r, Broadcast2(x, y,
                                          fmod ? [](double p, double q) { return std::fmod(p, q); }
                                               : [](double p, double q) {
                                                   const double m = std::fmod(p, q);
                                                   return m != 0 && ((m < 0) != (q < 0)) ? m + q : m;
                                                 },
                                          is_float));
    } else if (op == "Pow") {
      IONN_ASSIGN_OR_RETURN(Value y, KnownValue(node.input(1)));
      IONN_ASSIGN_OR_RETURN(r, Broadcast2(x, y, [](double p, double q) { return std::pow(p, q); }, x.is_float));
      if (!x.is_float) {
        for (double& v : r.v) v = std::trunc(v);
      }
    } else if (op == "Neg" || op == "Abs" || op == "Sqrt" || op == "Exp" || op == "Log" || op == "Floor" ||
               op == "Ceil") {
      double (*fn)(double) = op == "Neg"    ? [](double p) { return -p; }
                             : op == "Abs"  ? [](double p) { return std::fabs(p); }
                             : op == "Sqrt" ? [](double p) { return std::sqrt(p); }
                             : op == "Exp"  ? [](double p) { return std::exp(p); }
                             : op == "Log"  ? [](double p) { return std::log(p); }
                             : op == "Floor" ? [](double p) { return std::floor(p); }
                                             : [](double p) { return std::ceil(p); };
      r.dims = x.dims;
      for (double v : x.v) r.v.push_back(fn(v));
    } else if (op == "Not") {
      r.is_float = false, r.dims = x.dims;
      for (double v : x.v) r.v.push_back(v == 0);
    } else if (op == "Where") {  // condition, X, Y
      IONN_ASSIGN_OR_RETURN(Value p, KnownValue(node.input(1)));
      IONN_ASSIGN_OR_RETURN(Value q, KnownValue(node.input(2)));
      IONN_ASSIGN_OR_RETURN(Shape pq, BroadcastShape(p.dims, q.dims));
      IONN_ASSIGN_OR_RETURN(Shape out, BroadcastShape(x.dims, pq));
      IONN_ASSIGN_OR_RETURN(Value c, BroadcastTo(x, out));
      IONN_ASSIGN_OR_RETURN(p, BroadcastTo(p, out));
      IONN_ASSIGN_OR_RETURN(q, BroadcastTo(q, out));
      r.is_float = p.is_float || q.is_float, r.dims = out;
      for (size_t i = 0; i < c.v.size(); ++i) r.v.push_back(c.v[i] != 0 ? p.v[i] : q.v[i]);
    } else if (op == "Expand") {  // numpy broadcasting of x and the given shape
      IONN_ASSIGN_OR_RETURN(std::vector<int64_t> shape, IntsOf(node, 1, a, "shape", true));
      for (int64_t d : shape) {
        if (d < 0) return Status::Invalid("Expand to a negative dimension " + std::to_string(d));
      }
      IONN_ASSIGN_OR_RETURN(Shape out, BroadcastShape(x.dims, Shape(shape.begin(), shape.end())));
      IONN_ASSIGN_OR_RETURN(r, BroadcastTo(x, out));
    } else if (op == "ScatterND") {  // data, indices [..., k], updates
      IONN_ASSIGN_OR_RETURN(std::string reduction, a.String("reduction", "none"));
      if (reduction != "none") return Status::Unsupported("ScatterND reduction " + Quoted(reduction));
      IONN_ASSIGN_OR_RETURN(Value idx, KnownValue(node.input(1)));
      IONN_ASSIGN_OR_RETURN(Value upd, KnownValue(node.input(2)));
      if (idx.is_float || idx.dims.empty()) return Status::Invalid("indices must be integers of 1 or more axes");
      const int64_t k = idx.dims.back();
      if (k < 1 || k > static_cast<int64_t>(x.dims.size())) return Status::Invalid("indices' last axis must be 1 to the data's rank");
      Shape want(idx.dims.begin(), idx.dims.end() - 1);
      want.insert(want.end(), x.dims.begin() + k, x.dims.end());
      if (upd.dims != want) {
        return Status::Invalid("updates have shape " + ShapeToString(upd.dims) + ", expected " + ShapeToString(want));
      }
      r = x;
      r.is_float = x.is_float || upd.is_float;
      const auto strides = Strides(x.dims);
      const int64_t block = ElementCount(Shape(x.dims.begin() + k, x.dims.end()));
      const int64_t tuples = ElementCount(Shape(idx.dims.begin(), idx.dims.end() - 1));
      for (int64_t t = 0; t < tuples; ++t) {
        int64_t at = 0;
        for (int64_t d = 0; d < k; ++d) {
          int64_t i = ToInt64(idx.v[t * k + d]);
          if (i < 0) i += x.dims[d];
          if (i < 0 || i >= x.dims[d]) return Status::Invalid("index " + std::to_string(i) + " is out of range");
          at += i * strides[d];
        }
        std::copy(upd.v.begin() + t * block, upd.v.begin() + (t + 1) * block, r.v.begin() + at);
      }
    } else if (op == "Transpose") {
      IONN_ASSIGN_OR_RETURN(std::vector<int64_t> perm, IntsOf(node, 1, a, "perm", false));
      const size_t rank = x.dims.size();
      if (perm.empty()) {
        for (size_t d = rank; d-- > 0;) perm.push_back(static_cast<int64_t>(d));
      }
      std::vector<bool> seen(rank, false);
      bool ok = perm.size() == rank;
      for (int64_t p : perm) {
        ok = ok && p >= 0 && p < static_cast<int64_t>(rank) && !seen[p];
        if (ok) seen[p] = true;
      }
      if (!ok) return Status::Invalid("perm " + ShapeToString(Shape(perm.begin(), perm.end())) + " is not a permutation of " + ShapeToString(x.dims));
      r = Transposed(x, perm);
    } else if (op == "Gather") {
      IONN_ASSIGN_OR_RETURN(Value idx, KnownValue(node.input(1)));
      if (idx.is_float) return Status::Invalid("indices must be integers");
      IONN_ASSIGN_OR_RETURN(int axis_attr, a.Int("axis", 0));
      IONN_ASSIGN_OR_RETURN(int axis, NormalizedAxis(axis_attr, x.dims.size(), "axis"));
      const int64_t outer = ElementCount(Shape(x.dims.begin(), x.dims.begin() + axis));
      const int64_t inner = ElementCount(Shape(x.dims.begin() + axis + 1, x.dims.end()));
      const int64_t d = x.dims[axis];
      r.dims.assign(x.dims.begin(), x.dims.begin() + axis);
      r.dims.insert(r.dims.end(), idx.dims.begin(), idx.dims.end());
      r.dims.insert(r.dims.end(), x.dims.begin() + axis + 1, x.dims.end());
      IONN_RETURN_IF_ERROR(CheckFoldSize(r.dims));
      for (int64_t o = 0; o < outer; ++o) {
        for (double fi : idx.v) {
          const int64_t i = ToInt64(fi) < 0 ? ToInt64(fi) + d : ToInt64(fi);
          if (i < 0 || i >= d) {
            return Status::Invalid("index " + std::to_string(ToInt64(fi)) + " is out of range for axis " +
                                   std::to_string(axis) + " of " + ShapeToString(x.dims));
          }
          for (int64_t k = 0; k < inner; ++k) r.v.push_back(x.v[(o * d + i) * inner + k]);
        }
      }
    } else if (op == "Unsqueeze" || op == "Squeeze") {
      IONN_ASSIGN_OR_RETURN(Shape dims, SqueezedShape(node, a, x.dims));
      r.dims = dims, r.v = x.v;
    } else if (op == "Reshape") {
      IONN_ASSIGN_OR_RETURN(std::vector<int64_t> to, IntsOf(node, 1, a, "shape", true));
      Layer probe;
      probe.kind = LayerKind::kReshape;
      probe.reshape_to = Shape(to.begin(), to.end());
      std::vector<const Shape*> in = {&x.dims};
      IONN_RETURN_IF_ERROR(InferLayerShape(probe, in, &r.dims));
      r.v = x.v;
    } else if (op == "Concat") {
      IONN_ASSIGN_OR_RETURN(int axis_attr, a.Int("axis", 0));
      IONN_ASSIGN_OR_RETURN(int axis, NormalizedAxis(axis_attr, x.dims.size(), "axis"));
      r.dims = x.dims;
      r.dims[axis] = 0;
      for (int i = 0; i < node.input_size(); ++i) {  // shapes first: the size is checked before any copy
        if (node.input(i).empty()) continue;
        IONN_ASSIGN_OR_RETURN(Shape dims, ShapeOf(node.input(i)));
        bool fits = dims.size() == x.dims.size();
        for (size_t d = 0; fits && d < x.dims.size(); ++d) fits = static_cast<int>(d) == axis || dims[d] == x.dims[d];
        if (!fits) {
          return Status::Invalid("input " + std::to_string(i) + " has shape " + ShapeToString(dims) +
                                 ", which does not join " + ShapeToString(x.dims) + " along axis " + std::to_string(axis));
        }
        if (dims[axis] < 0 || dims[axis] > kMaxFoldElements) return Status::Invalid("input " + std::to_string(i) + " is too large");
        r.dims[axis] += dims[axis];
        IONN_RETURN_IF_ERROR(CheckFoldSize(r.dims));
      }
      std::vector<Value> parts;
      for (int i = 0; i < node.input_size(); ++i) {
        if (node.input(i).empty()) continue;
        IONN_ASSIGN_OR_RETURN(Value part, KnownValue(node.input(i)));
        r.is_float = r.is_float || part.is_float;
        parts.push_back(std::move(part));
      }
      const int64_t outer = ElementCount(Shape(x.dims.begin(), x.dims.begin() + axis));
      for (int64_t o = 0; o < outer; ++o) {
        for (const Value& p : parts) {
          const int64_t block = ElementCount(Shape(p.dims.begin() + axis, p.dims.end()));
          r.v.insert(r.v.end(), p.v.begin() + o * block, p.v.begin() + (o + 1) * block);
        }
      }
    } else if (op == "Cast") {
      IONN_ASSIGN_OR_RETURN(int to, a.Int("to", 0));
      using T = onnx::TensorProto;
      r.dims = x.dims, r.v = x.v;
      if (to == T::FLOAT || to == T::DOUBLE || to == T::FLOAT16) {
        r.is_float = true;
      } else if (to == T::INT64 || to == T::INT32 || to == T::INT16 || to == T::INT8 || to == T::UINT8) {
        r.is_float = false;
        for (double& v : r.v) {  // truncated, then wrapped to the type's width
          const int64_t i = ToInt64(std::trunc(v));
          v = to == T::INT32 ? double(static_cast<int32_t>(i))
            : to == T::INT16 ? double(static_cast<int16_t>(i))
            : to == T::INT8  ? double(static_cast<int8_t>(i))
            : to == T::UINT8 ? double(static_cast<uint8_t>(i))
                             : double(i);
        }
      } else if (to == T::BOOL) {
        r.is_float = false;
        for (double& v : r.v) v = v != 0;
      } else {
        return Status::Unsupported("Cast to type " + std::to_string(to));
      }
    } else if (op == "Slice") {
      IONN_ASSIGN_OR_RETURN(std::vector<AxisRange> ranges, SliceRangesOf(node, a, x.dims));
      for (const auto& range : ranges) r.dims.push_back(range.count);
      const int64_t n = ElementCount(r.dims);
      const auto in_strides = Strides(x.dims), out_strides = Strides(r.dims);
      for (int64_t i = 0; i < n; ++i) {
        int64_t at = 0, rest = i;
        for (size_t d = 0; d < r.dims.size(); ++d) {
          const int64_t k = rest / out_strides[d];
          rest %= out_strides[d];
          at += (ranges[d].start + k * ranges[d].step) * in_strides[d];
        }
        r.v.push_back(x.v[at]);
      }
    } else if (op == "Sum" || op == "Max" || op == "Min" || op == "Mean") {  // of any count (shapes' Max too)
      double (*fn)(double, double) = op == "Max"   ? [](double p, double q) { return p > q || p != p ? p : q; }
                                     : op == "Min" ? [](double p, double q) { return p < q || p != p ? p : q; }
                                                   : [](double p, double q) { return p + q; };
      r = x;
      for (int i = 1; i < node.input_size(); ++i) {
        IONN_ASSIGN_OR_RETURN(Value y, KnownValue(node.input(i)));
        IONN_ASSIGN_OR_RETURN(r, Broadcast2(r, y, fn, r.is_float || y.is_float));
      }
      if (op == "Mean") {
        for (double& v : r.v) v /= node.input_size();
      }
    } else {  // Add, Sub, Mul, Div
      IONN_ASSIGN_OR_RETURN(Value y, KnownValue(node.input(1)));
      const bool is_float = x.is_float || y.is_float;
      double (*fn)(double, double) = op == "Add"   ? [](double p, double q) { return p + q; }
                                     : op == "Sub" ? [](double p, double q) { return p - q; }
                                     : op == "Mul" ? [](double p, double q) { return p * q; }
                                     : is_float    ? [](double p, double q) { return p / q; }
                                                   : [](double p, double q) { return q == 0 ? 0.0 : std::trunc(p / q); };
      if (!is_float && op == "Div") {
        for (double q : y.v) {
          if (q == 0) return Status::Invalid("integer division by zero");
        }
      }
      IONN_ASSIGN_OR_RETURN(r, Broadcast2(x, y, fn, is_float));
    }
    if (ElementCount(r.dims) != static_cast<int64_t>(r.v.size())) return Status::Internal("folded value has the wrong size");
    IONN_RETURN_IF_ERROR(Define(output, r));
    return true;
  }

  // Unsqueeze's or Squeeze's output shape.
  Result<Shape> SqueezedShape(const onnx::NodeProto& node, const Attributes& a, const Shape& dims) {
    IONN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, IntsOf(node, 1, a, "axes", opset >= 13));
    if (node.op_type() == "Unsqueeze") {
      const size_t rank = dims.size() + axes.size();
      if (rank > 8) return Status::Unsupported("more than 8 dimensions");
      std::vector<bool> one(rank, false);
      for (int64_t axis : axes) {
        IONN_ASSIGN_OR_RETURN(int n, NormalizedAxis(axis, rank, "axis"));
        if (one[n]) return Status::Invalid("axis " + std::to_string(axis) + " is listed twice");
        one[n] = true;
      }
      Shape out;
      size_t next = 0;
      for (size_t d = 0; d < rank; ++d) out.push_back(one[d] ? 1 : dims[next++]);
      return out;
    }
    std::vector<bool> drop(dims.size(), axes.empty());
    if (axes.empty()) {
      for (size_t d = 0; d < dims.size(); ++d) drop[d] = dims[d] == 1;
    }
    for (int64_t axis : axes) {
      IONN_ASSIGN_OR_RETURN(int n, NormalizedAxis(axis, dims.size(), "axis"));
      if (dims[n] != 1) return Status::Invalid("cannot squeeze axis " + std::to_string(axis) + " of size " + std::to_string(dims[n]));
      drop[n] = true;
    }
    Shape out;
    for (size_t d = 0; d < dims.size(); ++d) {
      if (!drop[d]) out.push_back(dims[d]);
    }
    return out;
  }

  Result<std::vector<AxisRange>> SliceRangesOf(const onnx::NodeProto& node, const Attributes& a, const Shape& dims) {
    const bool inputs = opset >= 10;
    IONN_ASSIGN_OR_RETURN(std::vector<int64_t> starts, IntsOf(node, 1, a, "starts", inputs));
    IONN_ASSIGN_OR_RETURN(std::vector<int64_t> ends, IntsOf(node, 2, a, "ends", inputs));
    IONN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, IntsOf(node, 3, a, "axes", inputs));
    std::vector<int64_t> steps;
    if (inputs) {
      IONN_ASSIGN_OR_RETURN(steps, IntsOf(node, 4, a, "steps", true));
    }
    return SliceRanges(dims, starts, ends, axes, steps);
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
    IONN_RETURN_IF_ERROR(CheckMovedAttributes(op, a, opset));
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
    IONN_ASSIGN_OR_RETURN(bool folded, Fold(node, a));
    if (folded) return Status::Ok();
    if (op == "Split") return ImportSplit(node, a, index);
    if (op == "Einsum") return ImportEinsum(node, a, index);
    if ((op == "Conv" || op == "ConvTranspose") && !node.input(0).empty()) {
      IONN_ASSIGN_OR_RETURN(Shape x, ShapeOf(node.input(0)));
      if (x.size() == 3) return ImportAs2d(node, index, x);
    }
    if (op == "Sum" || op == "Max" || op == "Min" || op == "Mean") return ImportVariadic(node, index);
    if (op == "Cast") {  // of the model's float tensors: only to float
      IONN_ASSIGN_OR_RETURN(int to, a.Int("to", 0));
      if (to != onnx::TensorProto::FLOAT) return Status::Unsupported("Cast of a float tensor to another type");
      IONN_ASSIGN_OR_RETURN(std::string in, Tensor(node.input(0)));
      tensor_to_ir[output] = in;
      return Status::Ok();
    }
    static const std::unordered_set<std::string> kFoldedOnly = {
        "Shape", "ConstantOfShape", "Equal", "Less", "Greater", "And", "Or", "Not", "Mod", "Where", "Expand", "Range",
        "ScatterND"};
    if (kFoldedOnly.count(op) || (op == "Gather" && !Known(node.input(1)))) {
      return Status::Unsupported(op + " of a tensor computed at run time (only of shapes and constants)");
    }
    Layer l;
    l.name = LayerName(node.name(), output, index);
    const OpDescriptor* registered = FindOnnxOp(op);
    if (registered && op == "MatMul" && node.input_size() == 2 && Known(node.input(1))) {
      // [batch, features] times a constant matrix: a fully connected layer, as Gemm's.
      IONN_ASSIGN_OR_RETURN(Shape x, ShapeOf(node.input(0)));
      IONN_ASSIGN_OR_RETURN(Shape w, ShapeOf(node.input(1)));
      if (x.size() == 2 && w.size() == 2 && !Known(node.input(0))) registered = nullptr;
    }
    if (registered && op == "Concat") {  // of computed tensors only: Concat's own kind
      bool constant = false;
      for (int i = 0; i < node.input_size(); ++i) constant = constant || (!node.input(i).empty() && Known(node.input(i)));
      if (!constant) registered = nullptr;
    }
    if (registered) return ImportRegistered(*registered, node, a, std::move(l));
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
      if (w.size() != 4) return Status::Unsupported("only 1-D and 2-D convolutions are supported, weight is " + ShapeToString(w));
      IONN_ASSIGN_OR_RETURN(Shape x, ShapeOf(node.input(0)));
      IONN_RETURN_IF_ERROR(Window(a, &l, false, w[2], w[3], x));
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
      if (l.lrn_size < 1) return Status::Invalid("LRN needs a size of at least 1");
      if (l.lrn_size % 2 == 0) {  // ONNX's window of an even size is off centre; oneDNN's is centred
        return Status::Unsupported("LRN of even size " + std::to_string(l.lrn_size));
      }
      IONN_ASSIGN_OR_RETURN(l.lrn_alpha, a.Float("alpha", 1e-4f));
      IONN_ASSIGN_OR_RETURN(l.lrn_beta, a.Float("beta", 0.75f));
      IONN_ASSIGN_OR_RETURN(l.lrn_bias, a.Float("bias", 1.0f));
    } else if (op == "MaxPool" || op == "AveragePool") {
      l.kind = op == "MaxPool" ? LayerKind::kMaxPool : LayerKind::kAvgPool;
      if (node.output_size() > 1 && !node.output(1).empty()) return Status::Unsupported("MaxPool indices output");
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_ASSIGN_OR_RETURN(Shape x, ShapeOf(node.input(0)));
      IONN_RETURN_IF_ERROR(Window(a, &l, true, 0, 0, x));
      IONN_ASSIGN_OR_RETURN(int count_include_pad, a.Int("count_include_pad", 0));
      l.count_include_pad = count_include_pad != 0;
    } else if (op == "GlobalAveragePool") {
      l.kind = LayerKind::kGlobalAvgPool;
      IONN_RETURN_IF_ERROR(data_input(0));
    } else if (op == "Gemm" || op == "MatMul") {
      l.kind = LayerKind::kFc;
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_ASSIGN_OR_RETURN(Shape x, ShapeOf(node.input(0)));
      if (x.size() != 2) {
        return Status::Unsupported(op + " of a " + ShapeToString(x) + " input (only 2-D [batch, features])");
      }
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
        // Broadcast as numpy does: [], [1], [N], [1,1] or [1,N]; a column
        // ([N,1]) would vary along the batch.
        const bool row =
            b.shape.empty() || std::all_of(b.shape.begin(), b.shape.end() - 1, [](int64_t d) { return d == 1; });
        if (row && ElementCount(b.shape) == 1) b.data.assign(l.out_channels, b.data[0]);
        if (!row || (ElementCount(b.shape) != 1 && ElementCount(b.shape) != l.out_channels)) {
          return Status::Unsupported("Gemm bias of shape " + ShapeToString(b.shape) +
                                     " (only one value, or one per output in the last axis)");
        }
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
      // Its mask output (old exporters name it) is left undefined: a node
      // that reads it is refused as reading an unknown tensor.
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_ASSIGN_OR_RETURN(int is_test, a.Int("is_test", 1));  // opsets before 7 only; refused if set otherwise
      if (is_test == 0) return Status::Unsupported("Dropout with is_test=0 (training: random)");
      if (node.input_size() > 2 && !node.input(2).empty()) {  // opset 12: training_mode, an input
        if (!Known(node.input(2))) return Status::Unsupported("Dropout's training_mode must be known at import");
        IONN_ASSIGN_OR_RETURN(Value training, KnownValue(node.input(2)));
        double ratio = 0.5;
        if (node.input_size() > 1 && !node.input(1).empty()) {
          if (!Known(node.input(1))) return Status::Unsupported("Dropout's ratio must be known at import");
          IONN_ASSIGN_OR_RETURN(Value r, KnownValue(node.input(1)));
          if (r.v.size() != 1) return Status::Invalid("ratio must be one value");
          ratio = r.v[0];
        }
        if (training.v.size() != 1) return Status::Invalid("training_mode must be one value");
        if (training.v[0] != 0 && ratio != 0) {  // random: not a function of the input
          return Status::Unsupported("Dropout in training mode (training_mode true, ratio " + std::to_string(ratio) + ")");
        }
      }
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
    } else if (op == "Add" || op == "Mul" || op == "Sub" || op == "Div") {
      l.kind = op == "Mul" ? LayerKind::kMul : op == "Sub" ? LayerKind::kSub : op == "Div" ? LayerKind::kDiv : LayerKind::kAdd;
      for (int i = 0; i < 2; ++i) {
        if (!Known(node.input(i))) {
          IONN_RETURN_IF_ERROR(data_input(i));
          continue;
        }
        IONN_RETURN_IF_ERROR(weight(i, "operand"));  // the other one is computed: Fold took two known ones
        l.weight_first = i == 0;
      }
    } else if (op == "Sigmoid" || op == "HardSwish") {
      l.kind = op == "Sigmoid" ? LayerKind::kSigmoid : LayerKind::kHardSwish;
      IONN_RETURN_IF_ERROR(data_input(0));
    } else if (op == "HardSigmoid") {
      l.kind = LayerKind::kHardSigmoid;
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_ASSIGN_OR_RETURN(l.alpha, a.Float("alpha", 0.2f));
      IONN_ASSIGN_OR_RETURN(l.beta, a.Float("beta", 0.5f));
      if (!std::isfinite(l.alpha) || !std::isfinite(l.beta)) return Status::Invalid("alpha and beta must be finite");
    } else if (op == "Transpose") {
      l.kind = LayerKind::kTranspose;
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_ASSIGN_OR_RETURN(Shape x, ShapeOf(node.input(0)));
      IONN_ASSIGN_OR_RETURN(std::vector<int64_t> perm, IntsOf(node, 1, a, "perm", false));
      if (perm.empty()) {  // default: the axes reversed
        for (size_t d = x.size(); d-- > 0;) perm.push_back(static_cast<int64_t>(d));
      }
      l.perm = Shape(perm.begin(), perm.end());
    } else if (op == "Pad") {
      l.kind = LayerKind::kPad;
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_ASSIGN_OR_RETURN(std::string mode, a.String("mode", "constant"));
      if (mode != "constant") return Status::Unsupported("Pad mode " + Quoted(mode) + " (only constant)");
      IONN_ASSIGN_OR_RETURN(Shape x, ShapeOf(node.input(0)));
      IONN_ASSIGN_OR_RETURN(std::vector<int64_t> pads, IntsOf(node, 1, a, "pads", opset >= 11));
      if (opset < 11) {
        IONN_ASSIGN_OR_RETURN(l.pad_value, a.Float("value", 0.0f));
      } else if (node.input_size() > 2 && !node.input(2).empty()) {
        if (!Known(node.input(2))) return Status::Unsupported("constant_value must be known at import");
        IONN_ASSIGN_OR_RETURN(Value v, KnownValue(node.input(2)));
        if (v.v.size() != 1) return Status::Invalid("constant_value must be one value");
        l.pad_value = static_cast<float>(v.v[0]);
      }
      if (node.input_size() > 3 && !node.input(3).empty()) {  // opset 18: pads for these axes only
        IONN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, IntsOf(node, 3, a, "axes", true));
        if (pads.size() != 2 * axes.size()) {
          return Status::Invalid("pads has " + std::to_string(pads.size()) + " values for " +
                                 Plural(static_cast<int64_t>(axes.size()), "axis") + ", expects " +
                                 std::to_string(2 * axes.size()));
        }
        std::vector<int64_t> all(2 * x.size(), 0);
        std::set<int> seen;
        for (size_t i = 0; i < axes.size(); ++i) {
          IONN_ASSIGN_OR_RETURN(int d, NormalizedAxis(axes[i], x.size(), "axis"));
          if (!seen.insert(d).second) return Status::Invalid("axes lists axis " + std::to_string(d) + " twice");
          all[d] = pads[i], all[d + x.size()] = pads[i + axes.size()];
        }
        pads = std::move(all);
      }
      if (pads.size() != 2 * x.size()) {
        return Status::Invalid("pads has " + std::to_string(pads.size()) + " values for a " + std::to_string(x.size()) +
                               "-D input, expects " + std::to_string(2 * x.size()));
      }
      if (std::all_of(pads.begin(), pads.end(), [](int64_t p) { return p == 0; })) {  // a no-op, as exporters write
        IONN_ASSIGN_OR_RETURN(std::string in, Tensor(node.input(0)));
        tensor_to_ir[output] = in;
        return Status::Ok();
      }
      if (x.size() != 4 || pads[0] || pads[1] || pads[4] || pads[5]) {
        return Status::Unsupported("Pad of other than the H and W axes of a 4-D NCHW tensor");
      }
      for (int64_t p : pads) {
        if (p < 0) return Status::Unsupported("negative pads (cropping)");
        if (p > 1 << 16) return Status::Invalid("pad " + std::to_string(p) + " is too large");
      }
      l.pad_top = static_cast<int>(pads[2]), l.pad_left = static_cast<int>(pads[3]);
      l.pad_bottom = static_cast<int>(pads[6]), l.pad_right = static_cast<int>(pads[7]);
    } else if (op == "Unsqueeze" || op == "Squeeze") {  // of a computed tensor: a reshape
      l.kind = LayerKind::kReshape;
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_ASSIGN_OR_RETURN(Shape x, ShapeOf(node.input(0)));
      IONN_ASSIGN_OR_RETURN(l.reshape_to, SqueezedShape(node, a, x));
    } else if (op == "Slice") {
      l.kind = LayerKind::kSlice;
      IONN_RETURN_IF_ERROR(data_input(0));
      IONN_ASSIGN_OR_RETURN(Shape x, ShapeOf(node.input(0)));
      IONN_ASSIGN_OR_RETURN(std::vector<AxisRange> ranges, SliceRangesOf(node, a, x));
      int sliced = -1;
      bool strided = false;  // several axes, or a step: StridedSlice's kind
      for (size_t d = 0; d < ranges.size(); ++d) {
        if (ranges[d].count == 0) return Status::Unsupported("Slice to an empty tensor");
        if (ranges[d].start == 0 && ranges[d].count == x[d] && ranges[d].step == 1) continue;
        strided = strided || sliced >= 0 || ranges[d].step != 1;
        sliced = static_cast<int>(d);
      }
      if (strided) {
        l.kind = LayerKind::kStridedSlice;
        for (const AxisRange& range : ranges) {
          l.attrs["starts"].ints.push_back(range.start);
          l.attrs["steps"].ints.push_back(range.count == 1 ? 1 : range.step);  // one index: any step
          l.attrs["counts"].ints.push_back(range.count);
        }
        return AddLayer(std::move(l), output);
      }
      if (sliced < 0) {  // takes everything: no layer
        IONN_ASSIGN_OR_RETURN(std::string in, Tensor(node.input(0)));
        tensor_to_ir[output] = in;
        return Status::Ok();
      }
      l.axis = sliced;
      l.slice_begin = ranges[l.axis].start;
      l.slice_end = ranges[l.axis].start + ranges[l.axis].count;
    } else if (op == "BatchNormalization") {
      IONN_RETURN_IF_ERROR(data_input(0));
      for (int i = 1; i <= 4; ++i) IONN_RETURN_IF_ERROR(weight(i, i == 1 ? "scale" : i == 2 ? "bias" : i == 3 ? "mean" : "var"));
      for (int i = 1; i < node.output_size(); ++i) {
        if (!node.output(i).empty()) return Status::Unsupported("BatchNormalization in training mode");
      }
      IONN_ASSIGN_OR_RETURN(int training_mode, a.Int("training_mode", 0));
      if (training_mode != 0) return Status::Unsupported("BatchNormalization in training mode");
      IONN_ASSIGN_OR_RETURN(l.epsilon, a.Float("epsilon", 1e-5f));
      bool identity_stats = l.epsilon == 0;
      for (float v : l.weights[2].data) identity_stats = identity_stats && v == 0;
      for (float v : l.weights[3].data) identity_stats = identity_stats && v == 1;
      l.kind = identity_stats ? LayerKind::kScale : LayerKind::kBatchNorm;
    } else {
      return Status::Internal("operator " + Quoted(op) + " is in kOnnxOpArities but import has no case for it");
    }
    return AddLayer(std::move(l), output);
  }

  // A node of a kind in IONN_OP_KINDS, read by its descriptor (below).
  Status ImportRegistered(const OpDescriptor& op, const onnx::NodeProto& node, const Attributes& a, Layer l);

  // Appends a layer that writes ONNX tensor `output` ("": a step inside a
  // node, no tensor of the file), and infers its shape (later nodes may ask
  // for it).
  Status AddLayer(Layer l, const std::string& output) {
    std::vector<const Shape*> in;
    for (const auto& name : l.inputs) in.push_back(&shapes.at(name));
    IONN_RETURN_IF_ERROR(InferLayerShape(l, in, &l.output_shape));
    if (ElementCount(l.output_shape) <= 0) {
      return Status::Invalid("output shape " + ShapeToString(l.output_shape) + " is empty or too large");
    }
    shapes[l.name] = l.output_shape;
    if (!output.empty()) tensor_to_ir[output] = l.name;
    layer_names.insert(l.name);
    graph.layers.push_back(std::move(l));
    return Status::Ok();
  }

  // A layer name for a node's output: the node's name, else the output's,
  // made unique.
  std::string LayerName(const std::string& preferred, const std::string& output, int index) {
    std::string name = preferred;
    if (name.empty() || layer_names.count(name) || tensor_to_ir.count(name)) name = output;
    if (layer_names.count(name) || tensor_to_ir.count(name)) name += "#" + std::to_string(index);
    return name;
  }

  // Einsum: the layers of its plan (einsum.h), in a chain per operand,
  // the last named as the node; a constant operand becomes MatMul's weight,
  // transposed and reshaped here.
  Status ImportEinsum(const onnx::NodeProto& node, const Attributes& a, int index) {
    IONN_ASSIGN_OR_RETURN(std::string equation, a.String("equation", ""));
    std::vector<Shape> shapes;
    std::vector<bool> constant;
    std::vector<Value> values(node.input_size());  // of the constant operands: read (and bounded) before planning
    for (int i = 0; i < node.input_size(); ++i) {
      if (node.input(i).empty()) return Status::Invalid("input " + std::to_string(i) + " is empty");
      constant.push_back(Known(node.input(i)));
      if (constant.back()) {
        IONN_ASSIGN_OR_RETURN(values[i], KnownValue(node.input(i)));
        if (!values[i].is_float) return Status::Unsupported("input " + std::to_string(i) + " is not a float tensor");
        shapes.push_back(values[i].dims);
        continue;
      }
      IONN_ASSIGN_OR_RETURN(Shape s, ShapeOf(node.input(i)));
      shapes.push_back(std::move(s));
    }
    IONN_ASSIGN_OR_RETURN(EinsumPlan plan, PlanEinsum(equation, shapes, constant));
    const std::string name = LayerName(node.name(), node.output(0), index);
    std::vector<Layer> steps;  // in order; each reads the one before it on its operand's chain
    auto add = [&](LayerKind kind, std::vector<std::string> inputs, const char* what) -> Layer& {
      return AddStep(&steps, kind, std::move(inputs), name + "/" + what, index);
    };
    // Each operand's chain; a constant one folded into `weight`.
    std::string operand[2];
    Weight weight;
    bool has_weight = false;
    for (size_t i = 0; i < shapes.size(); ++i) {
      const EinsumOperandSteps& s = plan.operand[i];
      const char* tag = i == 0 ? "a" : "b";
      if (constant[i]) {
        Value& v = values[i];
        if (!s.perm.empty()) v = Transposed(v, std::vector<int64_t>(s.perm.begin(), s.perm.end()));
        weight.name = name + "/" + tag;
        weight.shape = s.reshape.empty() ? v.dims : s.reshape;
        weight.data.assign(v.v.begin(), v.v.end());
        has_weight = true;
        continue;
      }
      IONN_ASSIGN_OR_RETURN(operand[i], Tensor(node.input(i)));
      if (!s.reduce_axes.empty()) {
        Layer& l = add(LayerKind::kReduceSum, {operand[i]}, i == 0 ? "sum_a" : "sum_b");
        l.attrs["axes"].ints = s.reduce_axes;
        l.attrs["keepdims"].ints = {0};
        operand[i] = l.name;
      }
      if (!s.perm.empty()) {
        Layer& l = add(LayerKind::kTranspose, {operand[i]}, i == 0 ? "transpose_a" : "transpose_b");
        l.perm = s.perm;
        operand[i] = l.name;
      }
      if (!s.reshape.empty()) {
        Layer& l = add(LayerKind::kReshape, {operand[i]}, i == 0 ? "reshape_a" : "reshape_b");
        l.reshape_to = s.reshape;
        operand[i] = l.name;
      }
    }
    std::string result = operand[0];
    if (shapes.size() == 2) {
      std::vector<std::string> in = {operand[plan.left]};
      if (!has_weight) in.push_back(operand[1 - plan.left]);
      Layer& l = add(LayerKind::kMatMul, std::move(in), "matmul");
      if (has_weight) l.weights.push_back(std::move(weight));
      result = l.name;
    }
    if (plan.product_reshape) {
      Layer& l = add(LayerKind::kReshape, {result}, "reshape");
      l.reshape_to = *plan.product_reshape;
      result = l.name;
    }
    if (!plan.output_perm.empty()) {
      Layer& l = add(LayerKind::kTranspose, {result}, "transpose");
      l.perm = plan.output_perm;
    }
    return AddChain(std::move(steps), name, node.output(0), operand[0]);
  }

  // A 1-D Conv or ConvTranspose (x [N, C, L]) as the 2-D one over
  // [N, C, 1, L]: a Reshape before, the node with its weight [.., .., k]
  // as [.., .., 1, k] and every per-axis attribute given the height axis
  // first (kernel 1, stride 1, no padding), a Reshape after.
  Status ImportAs2d(const onnx::NodeProto& node, int index, const Shape& x) {
    const std::string name = LayerName(node.name(), node.output(0), index);
    IONN_ASSIGN_OR_RETURN(std::string input, Tensor(node.input(0)));
    std::vector<Layer> before;
    Layer& lift = AddStep(&before, LayerKind::kReshape, {std::move(input)}, name + "/as_2d", index);
    lift.reshape_to = {x[0], x[1], 1, x[2]};
    const std::string lifted = lift.name;
    IONN_RETURN_IF_ERROR(AddLayer(std::move(before.back()), ""));
    onnx::NodeProto two = node;
    // The node's input, output and weight under names no tensor of the file has.
    auto unused = [&](std::string n) {
      if (tensor_to_ir.count(n) || initializers.count(n) || layer_names.count(n)) n += "#" + std::to_string(index);
      return n;
    };
    const std::string in_name = unused(lifted), out_name = unused(name + "/2d"), w_name = unused(name + "/weight_2d");
    if (tensor_to_ir.count(in_name) || tensor_to_ir.count(out_name) || initializers.count(in_name) ||
        initializers.count(out_name) || initializers.count(w_name)) {
      return Status::Invalid("tensor names " + Quoted(in_name) + ", " + Quoted(out_name) + " or " + Quoted(w_name) +
                             " are taken");
    }
    tensor_to_ir[in_name] = lifted;
    two.set_input(0, in_name);
    two.set_output(0, out_name);
    two.set_name(name + "/2d");
    if (node.input_size() < 2 || !initializers.count(node.input(1))) {
      return Status::Unsupported("weight " + Quoted(node.input_size() > 1 ? node.input(1) : "") +
                                 " must be an initializer (constant weights)");
    }
    onnx::TensorProto w = *initializers.at(node.input(1));
    if (w.dims_size() != 3) return Status::Invalid("a 1-D weight has 3 axes, this one " + std::to_string(w.dims_size()));
    w.set_name(w_name);
    w.mutable_dims()->Add(1);  // [a, b, k] -> [a, b, 1, k]
    w.set_dims(3, w.dims(2));
    w.set_dims(2, 1);
    constants.push_back(w);
    initializers[w.name()] = &constants.back();
    two.set_input(1, w.name());
    for (onnx::AttributeProto& attr : *two.mutable_attribute()) {
      const std::string& key = attr.name();
      auto& ints = *attr.mutable_ints();
      if (attr.type() != onnx::AttributeProto::INTS) continue;
      if (key == "output_shape" && ints.size() == 3) {  // given with N and C
        const int64_t length = ints[2];
        ints[2] = 1;
        ints.Add(length);
      } else if (key == "kernel_shape" || key == "strides" || key == "dilations" || key == "output_padding" ||
                 key == "output_shape") {
        if (ints.size() != 1) return Status::Invalid("attribute " + Quoted(key) + " must have 1 value for a 1-D input");
        ints.Add(ints[0]);
        ints[0] = key == "output_padding" ? 0 : 1;
      } else if (key == "pads") {
        if (ints.size() != 2) return Status::Invalid("attribute 'pads' must have 2 values for a 1-D input");
        const int64_t begin = ints[0], end = ints[1];
        ints.Clear();
        for (int64_t v : {int64_t{0}, begin, int64_t{0}, end}) ints.Add(v);
      }
    }
    IONN_RETURN_IF_ERROR(ImportNode(two, index));
    tensor_to_ir.erase(in_name);
    const std::string made = tensor_to_ir.at(out_name);
    tensor_to_ir.erase(out_name);
    const Shape& y = shapes.at(made);
    std::vector<Layer> after;
    Layer& lower = AddStep(&after, LayerKind::kReshape, {made}, name, index);
    lower.reshape_to = {y[0], y[1], y[3]};
    return AddChain(std::move(after), name, node.output(0), made);
  }

  // Sum, Max, Min and Mean of any number of operands: a chain of
  // two-operand layers (Add, Max, Min), the computed operands first (these
  // operators commute), a constant one a layer's weight; Mean's sum then
  // divided by the count.
  Status ImportVariadic(const onnx::NodeProto& node, int index) {
    const std::string& op = node.op_type();
    const LayerKind kind = op == "Max" ? LayerKind::kMax : op == "Min" ? LayerKind::kMin : LayerKind::kAdd;
    std::vector<std::string> computed, constant;
    for (int i = 0; i < node.input_size(); ++i) {
      if (node.input(i).empty()) return Status::Invalid("input " + std::to_string(i) + " is empty");
      (Known(node.input(i)) ? constant : computed).push_back(node.input(i));
    }
    if (computed.empty()) return Status::Internal(op + " of constants only reached import (Fold takes it)");
    const std::string name = LayerName(node.name(), node.output(0), index);
    IONN_ASSIGN_OR_RETURN(const std::string first, Tensor(computed[0]));
    std::vector<Layer> steps;
    auto add = [&](LayerKind k, std::string in) -> Layer& {
      return AddStep(&steps, k, {std::move(in)}, name + "/" + std::to_string(steps.size()), index);
    };
    for (size_t i = 1; i < computed.size(); ++i) {
      IONN_ASSIGN_OR_RETURN(std::string t, Tensor(computed[i]));
      add(kind, steps.empty() ? first : steps.back().name).inputs.push_back(std::move(t));
    }
    for (const std::string& c : constant) {
      IONN_ASSIGN_OR_RETURN(Weight w, WeightOf(c, "operand"));
      add(kind, steps.empty() ? first : steps.back().name).weights.push_back(std::move(w));
    }
    if (op == "Mean" && node.input_size() > 1) {
      Layer& l = add(LayerKind::kDiv, steps.back().name);
      l.weights.push_back({name + "/count", {1}, {static_cast<float>(node.input_size())}});
    }
    return AddChain(std::move(steps), name, node.output(0), first);
  }

  // A step of a node that import makes as several layers: named `name`
  // (made unique), reading `inputs`, appended to `steps`.
  Layer& AddStep(std::vector<Layer>* steps, LayerKind kind, std::vector<std::string> inputs, std::string name,
                 int index) {
    Layer l;
    l.kind = kind;
    l.name = std::move(name);
    if (layer_names.count(l.name) || tensor_to_ir.count(l.name)) l.name += "#" + std::to_string(index);
    l.inputs = std::move(inputs);
    steps->push_back(std::move(l));
    return steps->back();
  }

  // Appends `steps` (each may read those before it), the last one named
  // `name` and written to ONNX tensor `output`, the others no tensor of
  // the file; no steps: `output` is `alias`.
  Status AddChain(std::vector<Layer> steps, const std::string& name, const std::string& output,
                  const std::string& alias) {
    if (steps.empty()) {
      tensor_to_ir[output] = alias;
      return Status::Ok();
    }
    steps.back().name = name;  // nothing reads the last step yet
    for (size_t i = 0; i + 1 < steps.size(); ++i) IONN_RETURN_IF_ERROR(AddLayer(std::move(steps[i]), ""));
    return AddLayer(std::move(steps.back()), output);
  }

  // Split: one Slice layer per output, along the node's axis.
  Status ImportSplit(const onnx::NodeProto& node, const Attributes& a, int index) {
    IONN_ASSIGN_OR_RETURN(std::string in, Tensor(node.input(0)));
    IONN_ASSIGN_OR_RETURN(Shape x, ShapeOf(node.input(0)));
    IONN_ASSIGN_OR_RETURN(int axis_attr, a.Int("axis", 0));
    IONN_ASSIGN_OR_RETURN(int axis, NormalizedAxis(axis_attr, x.size(), "axis"));
    IONN_ASSIGN_OR_RETURN(std::vector<int64_t> split, IntsOf(node, 1, a, "split", opset >= 13));
    const int64_t parts = node.output_size();
    IONN_ASSIGN_OR_RETURN(int num_outputs, a.Int("num_outputs", 0));
    if (a.Has("num_outputs") && (opset < 18 || !split.empty() || num_outputs != parts)) {
      return Status::Invalid("num_outputs (opset 18 on, without split) must equal the number of outputs");
    }
    if (a.Has("num_outputs")) {  // opset 18: equal parts, the last one smaller if need be
      const int64_t part = (x[axis] + parts - 1) / parts;
      if (part * (parts - 1) >= x[axis]) {
        return Status::Invalid("axis " + std::to_string(axis) + " of " + ShapeToString(x) + " does not split into " +
                               std::to_string(parts) + " parts");
      }
      split.assign(parts, part);
      split.back() = x[axis] - part * (parts - 1);
    }
    if (split.empty()) {
      if (x[axis] % parts != 0) {
        return Status::Invalid("axis " + std::to_string(axis) + " of " + ShapeToString(x) + " does not split into " +
                               std::to_string(parts) + " equal parts");
      }
      split.assign(parts, x[axis] / parts);
    }
    if (static_cast<int64_t>(split.size()) != parts) {
      return Status::Invalid("split lists " + std::to_string(split.size()) + " sizes for " + Plural(parts, "output"));
    }
    int64_t begin = 0;
    for (int64_t i = 0; i < parts; ++i) {
      if (split[i] <= 0 || split[i] > x[axis] - begin) {
        return Status::Invalid("split sizes " + ShapeToString(Shape(split.begin(), split.end())) + " do not fit axis " +
                               std::to_string(axis) + " of " + ShapeToString(x));
      }
      const std::string& output = node.output(static_cast<int>(i));
      if (output.empty()) return Status::Invalid("output " + std::to_string(i) + " has no name");
      if (tensor_to_ir.count(output) || initializers.count(output)) {
        return Status::Invalid("writes tensor " + Quoted(output) + ", which is already defined");
      }
      Layer l;
      l.kind = LayerKind::kSlice;
      l.name = LayerName(parts == 1 ? node.name() : "", output, index);
      l.inputs = {in};
      l.axis = axis;
      l.slice_begin = begin;
      l.slice_end = begin + split[i];
      begin += split[i];
      IONN_RETURN_IF_ERROR(AddLayer(std::move(l), output));
    }
    if (begin != x[axis]) {
      return Status::Invalid("split sizes " + ShapeToString(Shape(split.begin(), split.end())) + " do not add up to " +
                             std::to_string(x[axis]));
    }
    return Status::Ok();
  }

  // The fully connected kernel flattens 4-D and 2-D inputs itself.
  bool FoldableRank(const std::string& tensor) const {
    auto it = shapes.find(tensor);
    return it != shapes.end() && (it->second.size() == 4 || it->second.size() == 2);
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
      if (l.kind == LayerKind::kFlatten && l.axis == 1 && FoldableRank(l.inputs[0]) && reads[l.name] == 1 &&
          !outputs.count(l.name)) {
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

// One node as a descriptor's import reads it (ops/onnx_node.h).
class NodeReader : public OnnxNodeReader {
 public:
  NodeReader(Importer& im, const onnx::NodeProto& node, const Attributes& a, Layer* layer)
      : im_(im), node_(node), a_(a), layer_(layer) {}
  const std::string& op_type() const override { return node_.op_type(); }
  int opset() const override { return im_.opset; }
  bool HasInput(int i) const override { return i >= 0 && i < node_.input_size() && !node_.input(i).empty(); }
  int InputCount() const override { return node_.input_size(); }
  Status AddInput(int i) override {
    if (!HasInput(i)) return Status::Invalid("missing input " + std::to_string(i));
    IONN_ASSIGN_OR_RETURN(std::string t, im_.Tensor(node_.input(i)));
    layer_->inputs.push_back(std::move(t));
    return Status::Ok();
  }
  Result<Shape> InputShape(int i) override {
    if (!HasInput(i)) return Status::Invalid("missing input " + std::to_string(i));
    return im_.ShapeOf(node_.input(i));
  }
  bool Known(int i) const override { return HasInput(i) && im_.Known(node_.input(i)); }
  Result<std::vector<double>> KnownValues(int i, Shape* dims) override {
    if (!Known(i)) return Status::Unsupported("input " + std::to_string(i) + " must be known at import");
    IONN_ASSIGN_OR_RETURN(Value v, im_.KnownValue(node_.input(i)));
    *dims = v.dims;
    return std::move(v.v);
  }
  Status AddWeight(int i, const std::string& role) override {
    if (!HasInput(i)) return Status::Invalid("missing " + role);
    IONN_ASSIGN_OR_RETURN(Weight w, im_.WeightOf(node_.input(i), role));
    layer_->weights.push_back(std::move(w));
    return Status::Ok();
  }
  bool HasAttr(const char* name) const override { return a_.Has(name); }
  Result<int64_t> Int(const char* name, int64_t fallback) const override {
    IONN_ASSIGN_OR_RETURN(const onnx::AttributeProto* p, a_.Find(name, onnx::AttributeProto::INT));
    return p ? p->i() : fallback;
  }
  Result<float> Float(const char* name, float fallback) const override { return a_.Float(name, fallback); }
  Result<std::string> String(const char* name, std::string fallback) const override {
    return a_.String(name, std::move(fallback));
  }
  Result<std::vector<int64_t>> Ints(const char* name, std::vector<int64_t> fallback) const override {
    IONN_ASSIGN_OR_RETURN(const onnx::AttributeProto* p, a_.Find(name, onnx::AttributeProto::INTS));
    if (!p) return fallback;
    return std::vector<int64_t>(p->ints().begin(), p->ints().end());
  }
  Result<std::vector<float>> Floats(const char* name, std::vector<float> fallback) const override {
    IONN_ASSIGN_OR_RETURN(const onnx::AttributeProto* p, a_.Find(name, onnx::AttributeProto::FLOATS));
    if (!p) return fallback;
    return std::vector<float>(p->floats().begin(), p->floats().end());
  }

 private:
  Importer& im_;
  const onnx::NodeProto& node_;
  const Attributes& a_;
  Layer* layer_;
};

Status Importer::ImportRegistered(const OpDescriptor& op, const onnx::NodeProto& node, const Attributes& a, Layer l) {
  l.kind = op.kind;
  // Optional outputs after the first (LayerNormalization's Mean, ...) are
  // left undefined: a node that reads one is refused, saying so.
  for (int i = 1; i < node.output_size(); ++i) {
    if (!node.output(i).empty()) {
      uncomputed[node.output(i)] = "output " + std::to_string(i) + " of " + node.op_type() + " " + Quoted(l.name);
    }
  }
  NodeReader reader(*this, node, a, &l);
  IONN_RETURN_IF_ERROR(op.import(reader, &l));
  return AddLayer(std::move(l), node.output(0));
}

Status CheckTensorType(const onnx::ValueInfoProto& v) {
  if (!v.type().has_tensor_type()) return Status::Unsupported(Quoted(v.name()) + " is not a tensor");
  if (v.type().tensor_type().elem_type() != onnx::TensorProto::FLOAT) {
    return Status::Unsupported(Quoted(v.name()) + " is not float32");
  }
  if (!v.type().tensor_type().has_shape()) return Status::Invalid(Quoted(v.name()) + " has no shape");
  return Status::Ok();
}

// A dimension as the file declares it: "3", "N", or "?" (neither value nor name).
std::string DeclaredDim(const onnx::TensorShapeProto::Dimension& d) {
  if (d.has_dim_value()) return std::to_string(d.dim_value());
  return d.has_dim_param() && !d.dim_param().empty() ? Printable(d.dim_param(), 16) : "?";
}

// The shape of graph input `in`: `given` where there is one (of the file's
// rank, equal to its fixed dimensions), else the file's with a symbolic
// batch dimension as 1.
Result<Shape> GraphInputShape(const onnx::ValueInfoProto& in, const Shape* given) {
  const auto& dims = in.type().tensor_type().shape().dim();
  std::string declared = "[";
  for (int i = 0; i < dims.size(); ++i) declared += (i ? "," : "") + DeclaredDim(dims[i]);
  declared += "]";
  const std::string input = "input " + Quoted(in.name());
  if (given) {
    if (static_cast<int>(given->size()) != dims.size()) {
      return Status::Invalid(input + " has " + Plural(dims.size(), "dimension") + " " + declared +
                             ", the given shape " + ShapeToString(*given) + " has " + std::to_string(given->size()));
    }
    for (int i = 0; i < dims.size(); ++i) {
      if (dims[i].has_dim_value() && dims[i].dim_value() != (*given)[i]) {
        return Status::Invalid(input + " " + declared + ": dimension " + std::to_string(i) + " is " +
                               std::to_string(dims[i].dim_value()) + " in the file, " + std::to_string((*given)[i]) +
                               " in the given shape " + ShapeToString(*given));
      }
    }
    return *given;
  }
  Shape shape;
  std::string open, example;
  for (int i = 0; i < dims.size(); ++i) {
    const bool batch = i == 0 && dims.size() >= 2;
    if (!dims[i].has_dim_value() && !batch) {
      open += (open.empty() ? "" : ", ") + DeclaredDim(dims[i]) + " at " + std::to_string(i);
    }
    shape.push_back(dims[i].has_dim_value() ? dims[i].dim_value() : batch ? 1 : 224);
    example += (i ? "x" : "") + std::to_string(shape.back());
  }
  if (!open.empty()) {
    return Status::Invalid(input + " has symbolic dimensions " + declared + " (" + open +
                           "): give its shape with --input-shape " + Printable(in.name()) + "=" + example);
  }
  return shape;
}

// options.input_shapes by graph input name ("" resolved), every name a graph input.
Result<std::map<std::string, Shape>> GivenInputShapes(const std::vector<const onnx::ValueInfoProto*>& inputs,
                                                      const OnnxImportOptions& options) {
  std::string names;
  for (size_t i = 0; i < inputs.size() && i < 8; ++i) names += (i ? ", " : "") + Quoted(inputs[i]->name());
  if (inputs.size() > 8) names += ", ...";
  std::map<std::string, Shape> given = options.input_shapes;
  auto unnamed = given.find("");
  if (unnamed != given.end()) {
    if (given.size() > 1) return Status::Invalid("a shape without an input name must be the only shape given");
    if (inputs.size() != 1) {
      return Status::Invalid("a shape without an input name needs a model with one graph input; this one has " +
                             Plural(static_cast<int64_t>(inputs.size()), "graph input") +
                             (names.empty() ? "" : " (" + names + ")") + ": give NAME=shape");
    }
    return std::map<std::string, Shape>{{inputs[0]->name(), unnamed->second}};
  }
  for (const auto& entry : given) {
    const bool known = std::any_of(inputs.begin(), inputs.end(), [&](auto* in) { return in->name() == entry.first; });
    if (!known) {
      return Status::Invalid("a shape is given for " + Quoted(entry.first) +
                             ", which is not a graph input (inputs: " + names + ")");
    }
  }
  return given;
}

Result<Graph> Import(const std::string& bytes, const OnnxImportOptions& options) {
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
  std::vector<const onnx::ValueInfoProto*> inputs;
  for (const auto& in : g.input()) {
    if (!im.initializers.count(in.name())) inputs.push_back(&in);
  }
  IONN_ASSIGN_OR_RETURN(const auto given, GivenInputShapes(inputs, options));
  for (const onnx::ValueInfoProto* input : inputs) {
    const onnx::ValueInfoProto& in = *input;
    IONN_RETURN_IF_ERROR(CheckTensorType(in).WithContext("graph input"));
    auto it = given.find(in.name());
    IONN_ASSIGN_OR_RETURN(Shape shape, GraphInputShape(in, it == given.end() ? nullptr : &it->second));
    GraphInput gi{in.name(), std::move(shape)};
    if (gi.shape.size() > 8 || ElementCount(gi.shape) <= 0 ||
        std::any_of(gi.shape.begin(), gi.shape.end(), [](int64_t d) { return d <= 0; })) {
      return Status::Invalid("graph input " + Quoted(in.name()) + " has shape " +
                             Printable(ShapeToString(gi.shape), 200) +
                             "; every dimension must be > 0, at most 8 of them, under 2^32 elements in all");
    }
    im.tensor_to_ir[in.name()] = in.name();
    im.shapes[in.name()] = gi.shape;
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
    if (it != im.tensor_to_ir.end() && !im.layer_names.count(it->second) && im.shapes.count(it->second)) {
      // A graph input as it is (Identity, a Sum of one): a copy, so that
      // every output is a layer's.
      Layer copy;
      copy.kind = LayerKind::kReshape;
      copy.name = out.name();  // a graph input's or a layer's name otherwise: made unique
      if (im.layer_names.count(copy.name) || im.shapes.count(copy.name)) copy.name += "#" + std::to_string(g.node_size());
      copy.inputs = {it->second};
      copy.reshape_to = im.shapes.at(it->second);
      IONN_RETURN_IF_ERROR(im.AddLayer(std::move(copy), out.name()).WithContext("graph output " + Quoted(out.name())));
      it = im.tensor_to_ir.find(out.name());
    }
    if (it == im.tensor_to_ir.end() || !im.layer_names.count(it->second)) {
      if (auto extra = im.uncomputed.find(out.name()); extra != im.uncomputed.end()) {
        return Status::Unsupported("graph output " + Quoted(out.name()) + " is " + extra->second +
                                   ", which ionn does not compute");
      }
      return Status::Invalid("graph output " + Quoted(out.name()) + " is not produced by any node");
    }
    im.graph.outputs.push_back(it->second);
  }
  im.FoldFlattens();
  IONN_RETURN_IF_ERROR(im.graph.Finalize());
  if (FuseLayerNorm(&im.graph) > 0) IONN_RETURN_IF_ERROR(im.graph.Finalize());
  return std::move(im.graph);
}

}  // namespace

Result<Graph> ParseOnnx(const std::string& bytes, const OnnxImportOptions& options) {
  auto graph = Import(bytes, options);
  if (graph.ok()) return graph;
  // Graph::Finalize quotes layer and tensor names as they are; keep the message on one line.
  return Status(graph.status().code(), Printable(graph.status().message(), std::string::npos));
}

Result<Graph> ReadOnnxFile(const std::string& path, const OnnxImportOptions& options) {
  return ParseFile(path, [&options](const std::string& bytes) { return ParseOnnx(bytes, options); });
}

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

// The node of a kind in IONN_OP_KINDS, as its descriptor writes it
// (ops/onnx_node.h); constants go through the exporter's own writers.
class NodeWriter : public OnnxNodeWriter {
 public:
  using AddConstant = std::function<std::string(const std::string& name, const Weight* floats,
                                                const std::vector<int64_t>* ints, const Shape* dims)>;
  NodeWriter(const Graph& graph, const Layer& l, onnx::NodeProto* n, AddConstant add)
      : graph_(graph), l_(l), n_(n), add_(std::move(add)) {}
  const Shape& InputShape(int i) const override { return *graph_.TensorShape(l_.inputs.at(i)); }
  void AddIntsInput(const std::vector<int64_t>& values) override {
    n_->add_input(add_(NextName(), nullptr, &values, nullptr));
  }
  void AddIntsInput(const std::vector<int64_t>& values, const Shape& dims) override {
    n_->add_input(add_(NextName(), nullptr, &values, &dims));
  }
  void AddFloatsInput(const std::vector<float>& values) override {
    const Weight w{NextName(), {static_cast<int64_t>(values.size())}, values};
    n_->add_input(add_(w.name, &w, nullptr, nullptr));
  }
  void SetOpType(const char* op_type) override { n_->set_op_type(op_type); }
  void OrderInputs(const std::vector<int>& order) override {
    std::vector<std::string> was(n_->input().begin(), n_->input().end());
    n_->clear_input();
    for (int k : order) n_->add_input(was.at(k));
  }
  void SetInt(const char* name, int64_t value) override { AddInt(n_, name, value); }
  void SetInts(const char* name, const std::vector<int64_t>& values) override { AddInts(n_, name, values); }
  void SetFloat(const char* name, float value) override { AddFloat(n_, name, value); }
  void SetString(const char* name, const std::string& value) override {
    auto* a = n_->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(value);
  }

 private:
  std::string NextName() const { return l_.name + "/input" + std::to_string(n_->input_size()); }
  const Graph& graph_;
  const Layer& l_;
  onnx::NodeProto* n_;
  AddConstant add_;
};

}  // namespace

Result<std::string> SerializeOnnx(const Graph& graph) {
  onnx::ModelProto model;
  model.set_ir_version(6);
  model.set_producer_name("ionn");
  // Opset 11, or the first opset of a kind's operator where that is later
  // (Celu: 12; every operator written is the same at 11 and 12).
  int export_opset = kExportOpset;
  for (const Layer& l : graph.layers) {
    if (const OpDescriptor* op = FindOp(l.kind); op && l.kind != LayerKind::kLayerNorm) {  // written as its parts
      int first = op->onnx.empty() ? kExportOpset : kMaxOpset;  // none: made by import, written as another operator
      for (const OnnxOpArity& row : op->onnx) first = std::min(first, row.since_opset);
      export_opset = std::max(export_opset, first);
    }
  }
  if (export_opset > 12) return Status::Unsupported("a layer's operator needs opset " + std::to_string(export_opset));
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(export_opset);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name(graph.name);
  for (const auto& in : graph.inputs) SetShape(g->add_input(), in.name, in.shape);
  // Layers may share a constant (exporters de-duplicate them): each name is
  // written once; another value under a taken name gets a name of its own.
  std::unordered_map<std::string, const Weight*> written;
  std::deque<Weight> made;  // constants export makes (Clip bounds, pad values): they outlive `written`
  auto add_weight = [&](const Weight& w, std::string* name) -> Status {
    if (static_cast<int64_t>(w.data.size()) != ElementCount(w.shape)) {
      return Status::Invalid("weight '" + w.name + "' holds no data (a shapes-only graph cannot be exported)");
    }
    *name = w.name;
    for (int k = 1;; ++k) {
      auto it = written.find(*name);
      if (it == written.end()) break;
      if (it->second->shape == w.shape && it->second->data == w.data) return Status::Ok();
      *name = w.name + "#" + std::to_string(k);
    }
    written[*name] = &w;
    auto* t = g->add_initializer();
    t->set_name(*name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : w.shape) t->add_dims(d);
    t->set_raw_data(w.data.data(), w.data.size() * 4);
    return Status::Ok();
  };
  auto add_ints = [&](const std::string& name, const std::vector<int64_t>& v, const Shape* dims = nullptr) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    if (dims) {
      for (int64_t d : *dims) t->add_dims(d);
    } else {
      t->add_dims(static_cast<int64_t>(v.size()));
    }
    for (auto d : v) t->add_int64_data(d);
    return name;
  };
  for (const auto& l : graph.layers) {
    std::vector<std::string> inputs = l.inputs;
    if (l.kind == LayerKind::kHardSwish) {  // an opset 14 operator: HardSigmoid and Mul at opset 11
      auto* h = g->add_node();
      h->set_name(l.name + "/hardsigmoid");
      h->set_op_type("HardSigmoid");
      h->add_input(l.inputs[0]);
      h->add_output(l.name + "/hardsigmoid");
      AddFloat(h, "alpha", 1.0f / 6);
      AddFloat(h, "beta", 0.5f);
      auto* m = g->add_node();
      m->set_name(l.name);
      m->set_op_type("Mul");
      m->add_input(l.inputs[0]);
      m->add_input(l.name + "/hardsigmoid");
      m->add_output(l.name);
      continue;
    }
    if (l.kind == LayerKind::kLayerNorm) {  // an opset 17 operator: its parts at opset 11 (FuseLayerNorm reads them back)
      const Shape& x = *graph.TensorShape(l.inputs[0]);
      std::vector<int64_t> axes;
      for (int64_t d = l.attrs.at("axis").ints[0]; d < static_cast<int64_t>(x.size()); ++d) axes.push_back(d);
      auto node = [&](const std::string& name, const char* op, std::vector<std::string> in) {
        auto* n = g->add_node();
        n->set_name(name);
        n->set_op_type(op);
        for (const auto& i : in) n->add_input(i);
        n->add_output(name);
        return n;
      };
      const std::string p = l.name + "/";
      AddInts(node(p + "mean", "ReduceMean", {l.inputs[0]}), "axes", axes);
      node(p + "centered", "Sub", {l.inputs[0], p + "mean"});
      node(p + "square", "Mul", {p + "centered", p + "centered"});
      AddInts(node(p + "var", "ReduceMean", {p + "square"}), "axes", axes);
      made.push_back({p + "epsilon", {}, {l.attrs.at("epsilon").floats[0]}});
      std::string eps, scale, bias;
      IONN_RETURN_IF_ERROR(add_weight(made.back(), &eps));
      node(p + "var_eps", "Add", {p + "var", eps});
      node(p + "std", "Sqrt", {p + "var_eps"});
      const bool has_bias = l.weights.size() > 1;
      node(p + "normalized", "Div", {p + "centered", p + "std"});
      IONN_RETURN_IF_ERROR(add_weight(l.weights[0], &scale));
      node(has_bias ? p + "scaled" : l.name, "Mul", {p + "normalized", scale});
      if (has_bias) {
        IONN_RETURN_IF_ERROR(add_weight(l.weights[1], &bias));
        node(l.name, "Add", {p + "scaled", bias});
      }
      continue;
    }
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
      std::string name;
      IONN_RETURN_IF_ERROR(add_weight(w, &name));
      n->add_input(name);
    }
    if (l.weight_first && l.weights.size() == 1 && n->input_size() == 2) {  // the constant is the left operand
      std::swap(*n->mutable_input(0), *n->mutable_input(1));
    }
    n->add_output(l.name);
    if (const OpDescriptor* op = FindOp(l.kind)) {
      Status constant_status;
      NodeWriter writer(graph, l, n, [&](const std::string& name, const Weight* floats, const std::vector<int64_t>* ints,
                                         const Shape* dims) {
        if (ints) return add_ints(name, *ints, dims);
        made.push_back(*floats);
        std::string written;
        Status s = add_weight(made.back(), &written);
        if (!s.ok() && constant_status.ok()) constant_status = s;
        return written;
      });
      IONN_RETURN_IF_ERROR(op->export_onnx(l, writer));
      IONN_RETURN_IF_ERROR(constant_status);
      continue;
    }
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
          made.push_back({l.name + (bound == l.clip_min ? "/min" : "/max"), {}, {bound}});
          std::string name;
          IONN_RETURN_IF_ERROR(add_weight(made.back(), &name));
          n->add_input(name);
        }
        break;
      case LayerKind::kReshape:
        n->add_input(add_ints(l.name + "/shape", l.reshape_to));
        break;
      case LayerKind::kHardSigmoid:
        AddFloat(n, "alpha", l.alpha);
        AddFloat(n, "beta", l.beta);
        break;
      case LayerKind::kTranspose:
        AddInts(n, "perm", l.perm);
        break;
      case LayerKind::kPad: {
        n->add_input(add_ints(l.name + "/pads", {0, 0, l.pad_top, l.pad_left, 0, 0, l.pad_bottom, l.pad_right}));
        made.push_back({l.name + "/value", {}, {l.pad_value}});
        std::string name;
        IONN_RETURN_IF_ERROR(add_weight(made.back(), &name));
        n->add_input(name);
        break;
      }
      case LayerKind::kSlice:
        n->add_input(add_ints(l.name + "/starts", {l.slice_begin}));
        n->add_input(add_ints(l.name + "/ends", {l.slice_end}));
        n->add_input(add_ints(l.name + "/axes", {l.axis}));
        break;
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
