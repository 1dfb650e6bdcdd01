#include "ionn/onnx_io.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>

#include <onnx/onnx_pb.h>

#include "ionn/zoo.h"

namespace ionn {
namespace {

void ExpectSameGraph(const Graph& a, const Graph& b) {
  ASSERT_EQ(a.layers.size(), b.layers.size());
  EXPECT_EQ(a.outputs, b.outputs);
  for (size_t k = 0; k < a.layers.size(); ++k) {
    const Layer &x = a.layers[k], &y = b.layers[k];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.kind, y.kind) << x.name;
    EXPECT_EQ(x.inputs, y.inputs) << x.name;
    EXPECT_EQ(x.output_shape, y.output_shape) << x.name;
    ASSERT_EQ(x.weights.size(), y.weights.size()) << x.name;
    for (size_t w = 0; w < x.weights.size(); ++w) {
      EXPECT_EQ(x.weights[w].shape, y.weights[w].shape);
      EXPECT_TRUE(x.weights[w].data == y.weights[w].data) << x.name << " weight " << w;
    }
  }
}

TEST(OnnxIo, RoundTripsEveryZooModel) {
  for (const char* name : {"alexnet", "googlenet", "resnet50", "inception_bn", "mobilenet"}) {
    auto g = BuildZooModel(name, 3);
    ASSERT_TRUE(g.ok()) << g.status().message();
    auto bytes = SerializeOnnx(*g);
    ASSERT_TRUE(bytes.ok()) << bytes.status().message();
    auto back = ParseOnnx(*bytes);
    ASSERT_TRUE(back.ok()) << name << ": " << back.status().message();
    ExpectSameGraph(*g, *back);
    EXPECT_EQ(back->ParameterCount(), g->ParameterCount());
    auto again = SerializeOnnx(*back);
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(*again == *bytes) << name << ": export of the import differs";
  }
}

// A tiny hand-built ModelProto: x -> Conv(w) -> Relu -> y.
onnx::ModelProto TinyModel(int opset = 13) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(opset);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  for (int d : {1, 1, 3, 3}) in->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  for (int d : {2, 1, 1, 1}) w->add_dims(d);
  w->add_float_data(1), w->add_float_data(2);
  auto* conv = g->add_node();
  conv->set_name("conv"), conv->set_op_type("Conv");
  conv->add_input("x"), conv->add_input("w"), conv->add_output("c");
  auto* relu = g->add_node();
  relu->set_name("relu"), relu->set_op_type("Relu");
  relu->add_input("c"), relu->add_output("y");
  g->add_output()->set_name("y");
  return m;
}

std::string Bytes(const onnx::ModelProto& m) { return m.SerializeAsString(); }

void ExpectRejected(const std::string& bytes, const std::string& fragment) {
  auto g = ParseOnnx(bytes);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find(fragment), std::string::npos) << g.status().message();
}

TEST(OnnxIo, ImportsAHandBuiltModel) {
  auto g = ParseOnnx(Bytes(TinyModel()));
  ASSERT_TRUE(g.ok()) << g.status().message();
  ASSERT_EQ(g->layers.size(), 2u);
  EXPECT_EQ(g->layers[1].inputs, (std::vector<std::string>{"conv"}));  // tensors renamed to layers
  EXPECT_EQ(g->outputs, (std::vector<std::string>{"relu"}));
  EXPECT_EQ(g->layers[1].output_shape, (Shape{1, 2, 3, 3}));
}

TEST(OnnxIo, RejectsMalformedModels) {
  ExpectRejected("", "empty");
  ExpectRejected("this is not protobuf at all \xff\xff\xff", "not a valid ONNX model");
  const std::string good = Bytes(TinyModel());
  ExpectRejected(good.substr(0, good.size() / 2), "");  // truncated: any clear error
  ExpectRejected(Bytes(TinyModel(3)), "operator 'Conv' at opset 3 (supported from opset 7)");
  ExpectRejected(Bytes(TinyModel(19)), "opset 19 is not supported (supported: 1 to 18)");
  ExpectRejected(Bytes(TinyModel(19)), "opset 19");

  onnx::ModelProto m = TinyModel();
  m.mutable_graph()->mutable_node(1)->set_op_type("Gelu");
  ExpectRejected(Bytes(m), "node 1 'relu' (Gelu): operator 'Gelu' is not supported");

  m = TinyModel();
  m.mutable_graph()->mutable_node(1)->set_input(0, "missing");
  ExpectRejected(Bytes(m), "node 1 'relu' (Relu): reads tensor 'missing'");

  m = TinyModel();
  m.mutable_graph()->mutable_initializer(0)->set_dims(1, 5);  // w [2,5,1,1] against 1 input channel
  ExpectRejected(Bytes(m), "holds 2 values");

  m = TinyModel();
  m.mutable_graph()->mutable_initializer(0)->add_float_data(3);
  m.mutable_graph()->mutable_initializer(0)->add_float_data(4);
  m.mutable_graph()->mutable_initializer(0)->add_float_data(5);
  m.mutable_graph()->mutable_initializer(0)->add_float_data(6);
  m.mutable_graph()->mutable_initializer(0)->add_float_data(7);
  m.mutable_graph()->mutable_initializer(0)->add_float_data(8);
  m.mutable_graph()->mutable_initializer(0)->add_float_data(9);
  m.mutable_graph()->mutable_initializer(0)->add_float_data(10);
  m.mutable_graph()->mutable_initializer(0)->set_dims(1, 5);  // [2,5,1,1]: a shape mismatch with x's 1 channel
  ExpectRejected(Bytes(m), "node 0 'conv' (Conv): weight 'w' has shape [2,5,1,1], expected [2,1,1,1]");

  m = TinyModel();
  m.mutable_graph()->mutable_output(0)->set_name("nowhere");
  ExpectRejected(Bytes(m), "graph output 'nowhere'");
}

// x [1,4] -> Gemm (transB=0, alpha 2) -> Clip -> Dropout -> Identity -> Softmax,
// in the encoding of a given opset.
onnx::ModelProto HeadModel(int opset) {
  onnx::ModelProto m;
  m.set_ir_version(opset >= 13 ? 7 : 3);
  m.add_opset_import()->set_version(opset);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  for (int d : {1, 4}) in->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
  auto add_float = [&](const std::string& name, std::vector<int64_t> dims, std::vector<float> values) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : dims) t->add_dims(d);
    for (float v : values) t->add_float_data(v);
  };
  add_float("W", {4, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});  // [in, out]
  add_float("B", {3}, {0.5f, 0.25f, 0.125f});
  auto node = [&](const char* op, std::vector<std::string> ins, const char* out) {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(out);
    for (auto& i : ins) n->add_input(i);
    n->add_output(out);
    return n;
  };
  auto attr_f = [](onnx::NodeProto* n, const char* name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name), a->set_type(onnx::AttributeProto::FLOAT), a->set_f(v);
  };
  auto* gemm = node("Gemm", {"x", "W", "B"}, "fc");
  attr_f(gemm, "alpha", 2);
  if (opset < 11) {
    auto* clip = node("Clip", {"fc"}, "clip");
    attr_f(clip, "min", -1), attr_f(clip, "max", 5);
    auto* drop = node("Dropout", {"clip"}, "drop");
    attr_f(drop, "ratio", 0.3f);
  } else {
    add_float("lo", {}, {-1});
    add_float("hi", {}, {5});
    node("Clip", {"fc", "lo", "hi"}, "clip");
    node("Dropout", {"clip"}, "drop");
  }
  node("Identity", {"drop"}, "same");
  node("Softmax", {"same"}, "prob");
  g->add_output()->set_name("prob");
  return m;
}

TEST(OnnxIo, ImportsOpsetSpecificEncodings) {
  for (int opset : {7, 9, 11, 13, 17, 18}) {
    auto g = ParseOnnx(HeadModel(opset).SerializeAsString());
    ASSERT_TRUE(g.ok()) << "opset " << opset << ": " << g.status().message();
    ASSERT_EQ(g->layers.size(), 4u) << "Identity is an alias, not a layer";
    const Layer& fc = g->layers[0];
    EXPECT_EQ(fc.kind, LayerKind::kFc);
    EXPECT_EQ(fc.weights[0].shape, (Shape{3, 4}));  // transposed to [out, in]
    EXPECT_EQ(fc.weights[0].data, (std::vector<float>{2, 8, 14, 20, 4, 10, 16, 22, 6, 12, 18, 24}));  // x alpha
    EXPECT_EQ(g->layers[1].clip_min, -1);
    EXPECT_EQ(g->layers[1].clip_max, 5);
    EXPECT_EQ(g->layers[2].kind, LayerKind::kDropout);
    const Layer& sm = g->layers[3];
    EXPECT_EQ(sm.inputs, (std::vector<std::string>{"drop"}));
    EXPECT_EQ(sm.softmax_coerce_2d, opset < 13);
    EXPECT_EQ(sm.axis, opset < 13 ? 1 : -1);
    EXPECT_EQ(sm.output_shape, (Shape{1, 3}));
  }
}

// What exporters write for constants: Constant nodes (torch.onnx puts
// Clip's bounds, Pad's pads and Reshape's shapes there) and Identity nodes
// over an initializer (equal initializers de-duplicated). Both import as
// the initializer they stand for.
TEST(OnnxIo, ImportsConstantNodesAndIdentitiesOfInitializers) {
  const auto plain = ParseOnnx(Bytes(TinyModel()));
  ASSERT_TRUE(plain.ok()) << plain.status().message();

  onnx::ModelProto constant = TinyModel();  // w from a Constant node's tensor
  {
    auto* g = constant.mutable_graph();
    onnx::TensorProto w = g->initializer(0);
    g->clear_initializer();
    onnx::NodeProto c;
    c.set_op_type("Constant");
    c.add_output("w");
    auto* attr = c.add_attribute();
    attr->set_name("value"), attr->set_type(onnx::AttributeProto::TENSOR);
    *attr->mutable_t() = w;
    *g->mutable_node()->Add() = c;
    std::rotate(g->mutable_node()->begin(), g->mutable_node()->end() - 1, g->mutable_node()->end());  // first
  }
  auto from_constant = ParseOnnx(Bytes(constant));
  ASSERT_TRUE(from_constant.ok()) << from_constant.status().message();
  ASSERT_EQ(from_constant->layers.size(), 2u);  // the Constant is no layer
  EXPECT_EQ(from_constant->layers[0].weights[0].data, plain->layers[0].weights[0].data);
  EXPECT_EQ(from_constant->layers[0].weights[0].shape, plain->layers[0].weights[0].shape);

  onnx::ModelProto aliased = TinyModel();  // Conv reads Identity(w)
  {
    auto* g = aliased.mutable_graph();
    onnx::NodeProto id;
    id.set_op_type("Identity");
    id.add_input("w");
    id.add_output("w_copy");
    *g->mutable_node()->Add() = id;
    std::rotate(g->mutable_node()->begin(), g->mutable_node()->end() - 1, g->mutable_node()->end());
    g->mutable_node(1)->set_input(1, "w_copy");
  }
  auto from_alias = ParseOnnx(Bytes(aliased));
  ASSERT_TRUE(from_alias.ok()) << from_alias.status().message();
  EXPECT_EQ(from_alias->layers[0].weights[0].data, plain->layers[0].weights[0].data);

  // Clip's bounds as Constant nodes (value_float), opset 13.
  onnx::ModelProto head = HeadModel(13);
  {
    auto* g = head.mutable_graph();
    google::protobuf::RepeatedPtrField<onnx::TensorProto> kept;
    for (const auto& t : g->initializer()) {
      if (t.name() != "lo" && t.name() != "hi") *kept.Add() = t;
    }
    *g->mutable_initializer() = kept;
    for (auto [name, v] : {std::pair<const char*, float>{"lo", -1}, {"hi", 5}}) {
      onnx::NodeProto c;
      c.set_op_type("Constant");
      c.add_output(name);
      auto* attr = c.add_attribute();
      attr->set_name("value_float"), attr->set_type(onnx::AttributeProto::FLOAT), attr->set_f(v);
      *g->mutable_node()->Add() = c;
      std::rotate(g->mutable_node()->begin(), g->mutable_node()->end() - 1, g->mutable_node()->end());
    }
  }
  auto clip = ParseOnnx(Bytes(head));
  ASSERT_TRUE(clip.ok()) << clip.status().message();
  EXPECT_EQ(clip->layers[1].clip_min, -1);
  EXPECT_EQ(clip->layers[1].clip_max, 5);

  // Bad Constants: a one-line error naming the node.
  onnx::ModelProto two = constant;
  auto* extra = two.mutable_graph()->mutable_node(0)->add_attribute();
  extra->set_name("value_int"), extra->set_type(onnx::AttributeProto::INT), extra->set_i(3);
  ExpectRejected(Bytes(two), "exactly one value attribute");
  onnx::ModelProto sparse = constant;
  auto* attr = sparse.mutable_graph()->mutable_node(0)->mutable_attribute(0);
  attr->set_name("sparse_value"), attr->set_type(onnx::AttributeProto::SPARSE_TENSOR);
  ExpectRejected(Bytes(sparse), "sparse and string values are not supported");
  onnx::ModelProto collide = constant;
  collide.mutable_graph()->mutable_node(0)->set_output(0, "x");  // the graph input's name
  ExpectRejected(Bytes(collide), "already defines");
}

TEST(OnnxIo, FoldsFlattenIntoTheFullyConnectedLayerAfterIt) {
  auto g = BuildZooModel("alexnet", 1);
  auto bytes = SerializeOnnx(*g);
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(*bytes));
  int flattens = 0;
  for (const auto& n : m.graph().node()) flattens += n.op_type() == "Flatten";
  EXPECT_EQ(flattens, 1);  // fc6 reads pool5 [1,256,6,6]
  auto back = ParseOnnx(*bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->layers[back->FindLayer("fc6")].inputs, (std::vector<std::string>{"pool5"}));
}

// The kinds the zoo does not use: Reshape, a Flatten that stays a layer,
// Clip, average pooling without padding in the divisor, an element-wise add.
TEST(OnnxIo, RoundTripsTheOtherKinds) {
  Graph g;
  g.name = "others";
  g.inputs = {{"x", {1, 4, 6, 6}}};
  Layer clip;
  clip.name = "clip", clip.kind = LayerKind::kClip, clip.inputs = {"x"}, clip.clip_min = -0.5f, clip.clip_max = 6;
  Layer pool;
  pool.name = "pool", pool.kind = LayerKind::kAvgPool, pool.inputs = {"clip"};
  pool.kernel_h = pool.kernel_w = 3, pool.stride_h = pool.stride_w = 1;
  pool.pad_top = pool.pad_left = pool.pad_bottom = pool.pad_right = 1, pool.count_include_pad = false;
  Layer add;
  add.name = "add", add.kind = LayerKind::kAdd, add.inputs = {"pool", "clip"};
  Layer reshape;
  reshape.name = "reshape", reshape.kind = LayerKind::kReshape, reshape.inputs = {"add"}, reshape.reshape_to = {0, 16, -1};
  Layer flat;
  flat.name = "flat", flat.kind = LayerKind::kFlatten, flat.inputs = {"reshape"}, flat.axis = 1;
  Layer sm;
  sm.name = "sm", sm.kind = LayerKind::kSoftmax, sm.inputs = {"flat"}, sm.softmax_coerce_2d = true;
  g.layers = {clip, pool, add, reshape, flat, sm};
  g.outputs = {"sm"};
  ASSERT_TRUE(g.Finalize().ok());
  EXPECT_EQ(g.layers[3].output_shape, (Shape{1, 16, 9}));
  auto bytes = SerializeOnnx(g);
  ASSERT_TRUE(bytes.ok());
  auto back = ParseOnnx(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ExpectSameGraph(g, *back);
  EXPECT_EQ(back->layers[0].clip_min, -0.5f);
  EXPECT_FALSE(back->layers[1].count_include_pad);
  EXPECT_EQ(back->layers[3].reshape_to, (Shape{0, 16, -1}));
  EXPECT_EQ(back->layers[4].kind, LayerKind::kFlatten);  // not folded: no fully connected layer after it
}

// A small builder for hand-written graphs: input x, nodes added in order.
struct Builder {
  onnx::ModelProto m;
  explicit Builder(int opset, const Shape& x) {
    m.set_ir_version(8);
    m.add_opset_import()->set_version(opset);
    auto* in = m.mutable_graph()->add_input();
    in->set_name("x");
    auto* type = in->mutable_type()->mutable_tensor_type();
    type->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : x) type->mutable_shape()->add_dim()->set_dim_value(d);
  }
  onnx::NodeProto* Node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
    auto* n = m.mutable_graph()->add_node();
    n->set_name(out[0]), n->set_op_type(op);
    for (auto& i : in) n->add_input(i);
    for (auto& o : out) n->add_output(o);
    return n;
  }
  void Ints(const std::string& name, std::vector<int64_t> v) {
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name(name), t->set_data_type(onnx::TensorProto::INT64), t->add_dims(static_cast<int64_t>(v.size()));
    for (auto x : v) t->add_int64_data(x);
  }
  void Floats(const std::string& name, const Shape& dims, float value) {
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name(name), t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (int64_t i = 0; i < ElementCount(dims); ++i) t->add_float_data(value);
  }
  void Output(const std::string& name) { m.mutable_graph()->add_output()->set_name(name); }
};

void Attr(onnx::NodeProto* n, const char* name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name), a->set_type(onnx::AttributeProto::INT), a->set_i(v);
}

// PyTorch writes x.view(x.size(0), -1) and torch.chunk as shape arithmetic:
// Shape, Gather, Unsqueeze, Concat, Div. Import folds it: what is left is one
// Reshape with a static target and one Slice per part.
TEST(OnnxIo, FoldsShapeArithmeticIntoStaticLayers) {
  Builder b(13, {2, 6, 3, 4});
  b.Node("Shape", {"x"}, {"s"});
  b.Ints("zero", {0}), b.Ints("one", {1}), b.Ints("minus1", {-1}), b.Ints("two", {2});
  b.Node("Gather", {"s", "zero"}, {"n"});
  b.Node("Concat", {"n", "minus1"}, {"target"})->add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("axis"), a.set_type(onnx::AttributeProto::INT), a.set_i(0);
    return a;
  }());
  b.Node("Reshape", {"x", "target"}, {"flat"});
  b.Node("Gather", {"s", "one"}, {"c"});
  b.Node("Div", {"c", "two"}, {"half"});
  b.Node("Split", {"x", "split"}, {"lo", "hi"});
  b.Node("Concat", {"half", "half"}, {"split"});  // after its reader: out of order on purpose
  b.Output("flat");
  auto bad = ParseOnnx(b.m.SerializeAsString());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("node 6 'lo' (Split): split 'split' must be known at import"), std::string::npos)
      << bad.status().message();
  // In order, the split sizes are known.
  auto* nodes = b.m.mutable_graph()->mutable_node();
  nodes->SwapElements(6, 7);
  Attr(&(*nodes)[7], "axis", 1);
  b.Output("lo"), b.Output("hi");
  auto g = ParseOnnx(b.m.SerializeAsString());
  ASSERT_TRUE(g.ok()) << g.status().message();
  ASSERT_EQ(g->layers.size(), 3u);
  EXPECT_EQ(g->layers[0].kind, LayerKind::kReshape);
  EXPECT_EQ(g->layers[0].reshape_to, (Shape{2, -1}));
  EXPECT_EQ(g->layers[0].output_shape, (Shape{2, 72}));
  EXPECT_EQ(g->layers[1].kind, LayerKind::kSlice);
  EXPECT_EQ(g->layers[1].output_shape, (Shape{2, 3, 3, 4}));
  EXPECT_EQ(g->layers[2].slice_begin, 3);
}

// Exporters write "to the end" as INT64_MAX and "reversed" as a step of
// INT64_MIN: both clamp as the spec says, through the folding too.
TEST(OnnxIo, SliceBoundsClampAtTheInt64Extremes) {
  Builder b(13, {1, 5, 3, 3});
  b.Ints("one", {1}), b.Ints("end", {INT64_MAX}), b.Ints("start", {INT64_MAX}), b.Ints("back", {INT64_MIN});
  b.Ints("minus1", {-1});
  b.Node("Slice", {"x", "one", "end", "one"}, {"tail"});  // x[:, 1:]
  b.Node("Shape", {"x"}, {"s"});
  b.Node("Slice", {"s", "start", "back", "", "back"}, {"last"});  // s[::INT64_MIN] = [s[3]]
  b.Node("Concat", {"one", "minus1", "last", "last"}, {"target"})->add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("axis"), a.set_type(onnx::AttributeProto::INT), a.set_i(0);
    return a;
  }());
  b.Node("Reshape", {"tail", "target"}, {"y"});
  b.Output("y");
  auto g = ParseOnnx(b.m.SerializeAsString());
  ASSERT_TRUE(g.ok()) << g.status().message();
  ASSERT_EQ(g->layers.size(), 2u);
  EXPECT_EQ(g->layers[0].kind, LayerKind::kSlice);
  EXPECT_EQ(g->layers[0].slice_begin, 1);
  EXPECT_EQ(g->layers[0].slice_end, 5);
  EXPECT_EQ(g->layers[1].reshape_to, (Shape{1, -1, 3, 3}));
  EXPECT_EQ(g->layers[1].output_shape, (Shape{1, 4, 3, 3}));
}

// What import cannot run says so, naming the node.
TEST(OnnxIo, RefusesWhatItCannotRunNamingTheNode) {
  auto expect = [](Builder& b, const std::string& fragment) {
    auto g = ParseOnnx(b.m.SerializeAsString());
    ASSERT_FALSE(g.ok()) << fragment;
    EXPECT_NE(g.status().message().find(fragment), std::string::npos) << g.status().message();
  };
  Builder gather(13, {1, 4, 2, 2});
  gather.Ints("i", {1});
  gather.Node("Gather", {"x", "i"}, {"y"});
  gather.Output("y");
  expect(gather, "node 0 'y' (Gather): index 1 is out of range for axis 0 of [1,4,2,2]");
  Builder indices(13, {1, 4, 2, 2});
  indices.Ints("data", {5, 6, 7});
  indices.Node("Gather", {"data", "x"}, {"y"});
  indices.Output("y");
  expect(indices, "node 0 'y' (Gather): Gather of a tensor computed at run time");
  Builder pad(13, {1, 4, 2, 2});
  pad.Ints("p", {0, 0, 1, 1, 0, 0, 1, 1});
  auto* n = pad.Node("Pad", {"x", "p"}, {"y"});
  auto* mode = n->add_attribute();
  mode->set_name("mode"), mode->set_type(onnx::AttributeProto::STRING), mode->set_s("reflect");
  pad.Output("y");
  expect(pad, "node 0 'y' (Pad): Pad mode 'reflect' (only constant)");
  Builder slice(13, {1, 4, 6, 6});
  slice.Ints("st", {1, 3}), slice.Ints("en", {3, 3}), slice.Ints("ax", {1, 2});
  slice.Node("Slice", {"x", "st", "en", "ax"}, {"y"});
  slice.Output("y");
  expect(slice, "node 0 'y' (Slice): Slice to an empty tensor");
  Builder split(13, {1, 5, 2, 2});
  split.Ints("sizes", {2, 2});
  Attr(split.Node("Split", {"x", "sizes"}, {"a", "b"}), "axis", 1);
  split.Output("a");
  expect(split, "node 0 'a' (Split): split sizes [2,2] do not add up to 5");
  Builder mean(13, {1, 5, 2, 2});
  auto* r = mean.Node("ReduceMean", {"x"}, {"y"});
  auto* axes = r->add_attribute();
  axes->set_name("axes"), axes->set_type(onnx::AttributeProto::INTS), axes->add_ints(1), axes->add_ints(-3);
  mean.Output("y");
  expect(mean, "node 0 'y' (ReduceMean): axis -3 is listed twice");
  Builder norm(17, {1, 5, 2, 2});
  norm.Floats("s", {2}, 1);
  norm.Node("LayerNormalization", {"x", "s"}, {"y", "mean"});
  norm.Node("Relu", {"mean"}, {"z"});
  norm.Output("z");
  expect(norm, "node 1 'z' (Relu): reads tensor 'mean', output 1 of LayerNormalization 'y', which ionn does not compute");
}

// Hostile files found by review: a rank-0 transpose, a slice of a scalar,
// foldings that would allocate without bound. Each is an error or a no-op,
// never a crash or gigabytes.
TEST(OnnxIo, FoldingAndNewKindsStayBounded) {
  auto error = [](Builder& b) {
    auto g = ParseOnnx(b.m.SerializeAsString());
    return g.ok() ? std::string("imported") : g.status().message();
  };
  Builder transpose(13, {1});
  transpose.Node("Squeeze", {"x"}, {"scalar"});
  transpose.Node("Transpose", {"scalar"}, {"y"});
  transpose.Output("y");
  EXPECT_NE(error(transpose).find("node 1 'y' (Transpose): perm [] does not fit input [] (1 to 8 axes)"), std::string::npos)
      << error(transpose);

  Builder scalar(13, {1});
  scalar.Ints("none", {});
  scalar.Node("Squeeze", {"x"}, {"s"});
  scalar.Node("Slice", {"s", "none", "none"}, {"same"});
  scalar.Node("Relu", {"same"}, {"y"});
  scalar.Output("y");
  EXPECT_EQ(error(scalar), "imported");

  Builder gather(13, {1, 3, 2, 2});
  gather.Ints("wide", std::vector<int64_t>(1 << 13, 7));
  gather.Ints("shape", {1 << 12, 1 << 12});
  gather.Node("ConstantOfShape", {"shape"}, {"big"});  // 2^24 values: allowed on its own
  gather.Node("Gather", {"big", "wide"}, {"y"});       // 2^25 of them: not
  gather.Output("y");
  EXPECT_NE(error(gather).find("node 1 'y' (Gather): the value computed at import would have shape [8192,4096]"),
            std::string::npos) << error(gather);

  Builder many(13, {1, 3, 2, 2});
  many.Ints("shape", {1 << 24});
  for (int i = 0; i < 5; ++i) many.Node("ConstantOfShape", {"shape"}, {"c" + std::to_string(i)});
  many.Output("c4");
  EXPECT_NE(error(many).find("node 4 'c4' (ConstantOfShape): the values computed at import pass 2^26 elements"),
            std::string::npos) << error(many);
}

void AttrString(onnx::NodeProto* n, const char* name, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(name), a->set_type(onnx::AttributeProto::STRING), a->set_s(v);
}
void AttrInts(onnx::NodeProto* n, const char* name, std::vector<int64_t> v) {
  auto* a = n->add_attribute();
  a->set_name(name), a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

// What other exporters write: opset 18's inputs (ReduceMean axes, Split
// num_outputs, Pad axes), keras2onnx's auto_pad SAME_*, Caffe2's named
// Dropout mask, a scalar Gemm bias, a Flatten of a 3-D tensor.
TEST(OnnxIo, ImportsWhatOtherExportersWrite) {
  Builder b(18, {1, 5, 7, 6});
  b.Ints("hw", {2, 3});
  b.Node("ReduceMean", {"x", "hw"}, {"mean"});
  Attr(b.Node("Split", {"x"}, {"s0", "s1"}), "num_outputs", int64_t{2});
  Attr(b.m.mutable_graph()->mutable_node(1), "axis", int64_t{1});
  b.Ints("pads", {1, 2}), b.Ints("w_axis", {3});
  b.Node("Pad", {"x", "pads", "", "w_axis"}, {"padded"});
  b.Floats("w", {4, 5, 3, 3}, 0.1f);
  auto* upper = b.Node("Conv", {"x", "w"}, {"upper"});
  AttrString(upper, "auto_pad", "SAME_UPPER"), AttrInts(upper, "strides", {2, 2});
  auto* lower = b.Node("Conv", {"x", "w"}, {"lower"});
  AttrString(lower, "auto_pad", "SAME_LOWER"), AttrInts(lower, "strides", {2, 2});
  b.Node("Dropout", {"x"}, {"kept", "mask"});
  b.Floats("fc_w", {210, 3}, 0.5f), b.Floats("fc_b", {}, 0.25f);
  b.Ints("rows", {1, 35, 6});
  b.Node("Reshape", {"kept", "rows"}, {"r3"});
  Attr(b.Node("Flatten", {"r3"}, {"flat"}), "axis", int64_t{2});
  b.Node("Flatten", {"r3"}, {"flat1"});  // axis 1, read by a Gemm only: kept, as its input is 3-D
  b.Node("Gemm", {"flat1", "fc_w"}, {"fc"});
  b.Ints("cols", {210, 1});
  b.Node("Reshape", {"x", "cols"}, {"col"});
  b.Floats("fc2_w", {1, 4}, 0.5f);
  b.Node("Gemm", {"col", "fc2_w", "fc_b"}, {"gemm"});
  for (const char* o : {"mean", "s0", "s1", "padded", "upper", "lower", "flat", "fc", "gemm"}) b.Output(o);
  auto g = ParseOnnx(b.m.SerializeAsString());
  ASSERT_TRUE(g.ok()) << g.status().message();
  auto layer = [&](const std::string& name) -> const Layer& {
    for (const Layer& l : g->layers) {
      if (l.name == name) return l;
    }
    ADD_FAILURE() << "no layer " << name;
    return g->layers[0];
  };
  EXPECT_EQ(layer("mean").output_shape, (Shape{1, 5, 1, 1}));
  EXPECT_EQ(layer("s0").output_shape, (Shape{1, 3, 7, 6}));  // 5 in 2: 3 and the rest
  EXPECT_EQ(layer("s1").output_shape, (Shape{1, 2, 7, 6}));
  EXPECT_EQ(layer("padded").output_shape, (Shape{1, 5, 7, 9}));
  EXPECT_EQ(layer("padded").pad_left, 1);
  EXPECT_EQ(layer("padded").pad_right, 2);
  // H 7, stride 2: 4 rows out, 2 padding rows in all; W 6: 3 columns, 1.
  EXPECT_EQ(layer("upper").output_shape, (Shape{1, 4, 4, 3}));
  EXPECT_EQ(layer("upper").pad_top, 1);
  EXPECT_EQ(layer("upper").pad_bottom, 1);
  EXPECT_EQ(layer("upper").pad_left, 0);
  EXPECT_EQ(layer("upper").pad_right, 1);
  EXPECT_EQ(layer("lower").pad_left, 1);
  EXPECT_EQ(layer("lower").pad_right, 0);
  EXPECT_EQ(layer("flat").output_shape, (Shape{35, 6}));
  EXPECT_EQ(layer("flat1").kind, LayerKind::kFlatten);
  EXPECT_EQ(layer("fc").inputs, (std::vector<std::string>{"flat1"}));
  EXPECT_EQ(layer("fc").output_shape, (Shape{1, 3}));
  EXPECT_EQ(layer("gemm").output_shape, (Shape{210, 4}));
  EXPECT_EQ(layer("gemm").weights[1].data, std::vector<float>(4, 0.25f));
}

// What would be ignored or computed wrongly is refused, naming the node.
TEST(OnnxIo, RefusesAttributesOfOtherOpsetsAndWrongShapes) {
  auto error = [](Builder& b) {
    auto g = ParseOnnx(b.m.SerializeAsString());
    return g.ok() ? std::string("imported") : g.status().message();
  };
  Builder clip(11, {1, 2, 2, 2});
  auto* c = clip.Node("Clip", {"x"}, {"y"});
  auto* min = c->add_attribute();
  min->set_name("min"), min->set_type(onnx::AttributeProto::FLOAT), min->set_f(0);
  clip.Output("y");
  EXPECT_NE(error(clip).find("node 0 'y' (Clip): attribute 'min' is not part of Clip at opset 11"), std::string::npos)
      << error(clip);
  Builder split(13, {1, 4, 2, 2});
  AttrInts(split.Node("Split", {"x"}, {"a", "b"}), "split", {1, 3});
  split.Output("a");
  EXPECT_NE(error(split).find("attribute 'split' is not part of Split at opset 13"), std::string::npos) << error(split);
  Builder matmul(13, {1, 1, 1, 6});
  matmul.Floats("w", {5, 5}, 1);
  matmul.Node("MatMul", {"x", "w"}, {"y"});
  matmul.Output("y");
  EXPECT_NE(error(matmul).find("node 0 'y' (MatMul): cannot multiply [1,1,1,6] by [5,5]"), std::string::npos)
      << error(matmul);
  Builder lrn(13, {1, 4, 2, 2});
  Attr(lrn.Node("LRN", {"x"}, {"y"}), "size", int64_t{4});
  lrn.Output("y");
  EXPECT_NE(error(lrn).find("LRN of even size 4"), std::string::npos) << error(lrn);
  Builder bn(14, {1, 2, 2, 2});
  for (const char* w : {"s", "b", "m", "v"}) bn.Floats(w, {2}, 1);
  Attr(bn.Node("BatchNormalization", {"x", "s", "b", "m", "v"}, {"y"}), "training_mode", int64_t{1});
  bn.Output("y");
  EXPECT_NE(error(bn).find("BatchNormalization in training mode"), std::string::npos) << error(bn);
  Builder valid(13, {1, 1, 5, 5});
  auto* pool = valid.Node("MaxPool", {"x"}, {"y"});
  AttrInts(pool, "kernel_shape", {2, 2}), AttrString(pool, "auto_pad", "VALID"), AttrInts(pool, "pads", {1, 1, 1, 1});
  valid.Output("y");
  EXPECT_NE(error(valid).find("pads given with auto_pad VALID"), std::string::npos) << error(valid);
  Builder mask(13, {1, 2, 2, 2});
  mask.Node("Dropout", {"x"}, {"kept", "mask"});
  mask.Node("Relu", {"mask"}, {"y"});  // the mask is not computed
  mask.Output("y");
  EXPECT_NE(error(mask).find("node 1 'y' (Relu): reads tensor 'mask'"), std::string::npos) << error(mask);
  Builder column(13, {3, 3});
  column.Floats("w", {3, 3}, 1), column.Floats("c", {3, 1}, 1);
  column.Node("Gemm", {"x", "w", "c"}, {"y"});  // a per-row bias
  column.Output("y");
  EXPECT_NE(error(column).find("Gemm bias of shape [3,1]"), std::string::npos) << error(column);
  // Many readers of one large constant: bounded by the elements read.
  Builder reads(13, {1, 3, 2, 2});
  reads.Ints("shape", {1 << 24}), reads.Ints("first", {0});
  reads.Node("ConstantOfShape", {"shape"}, {"big"});
  for (int i = 0; i < 40; ++i) reads.Node("Gather", {"big", "first"}, {"g" + std::to_string(i)});
  reads.Output("g39");
  EXPECT_NE(error(reads).find("the values read by computations at import pass 2^28 elements"), std::string::npos)
      << error(reads);
}

// Layers sharing one constant export it once (the ONNX checker refuses a
// name twice); another value under a taken name gets its own name.
TEST(OnnxIo, ExportWritesEachConstantOnce) {
  Graph g;
  g.name = "shared";
  g.inputs = {{"x", {1, 2}}};
  Layer a;
  a.name = "a", a.kind = LayerKind::kMul, a.inputs = {"x"}, a.weights = {{"k", {2}, {1, 2}}};
  Layer b = a;
  b.name = "b", b.inputs = {"a"};
  Layer c = a;
  c.name = "c", c.inputs = {"b"}, c.weights = {{"k", {2}, {3, 4}}};
  g.layers = {a, b, c};
  g.outputs = {"c"};
  ASSERT_TRUE(g.Finalize().ok());
  auto bytes = SerializeOnnx(g);
  ASSERT_TRUE(bytes.ok());
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(*bytes));
  ASSERT_EQ(m.graph().initializer_size(), 2);
  EXPECT_EQ(m.graph().initializer(0).name(), "k");
  EXPECT_EQ(m.graph().initializer(1).name(), "k#1");
  auto back = ParseOnnx(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->layers[2].weights[0].data, (std::vector<float>{3, 4}));
}

TEST(OnnxIo, ImportsMatMulAsAFullyConnectedLayer) {
  onnx::ModelProto m = HeadModel(13);
  auto* gemm = m.mutable_graph()->mutable_node(0);
  gemm->set_op_type("MatMul");
  gemm->clear_attribute();
  gemm->mutable_input()->RemoveLast();  // no bias
  auto g = ParseOnnx(m.SerializeAsString());
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->layers[0].kind, LayerKind::kFc);
  ASSERT_EQ(g->layers[0].weights.size(), 1u);
  EXPECT_EQ(g->layers[0].weights[0].data, (std::vector<float>{1, 4, 7, 10, 2, 5, 8, 11, 3, 6, 9, 12}));
}

// x -> Conv(4 filters, 3x3, no padding) -> GlobalAveragePool, with x's
// dimensions as an exporter with dynamic axes writes them: a number is a
// dim_value, a name a dim_param, "" neither.
onnx::ModelProto ConvPoolModel(const std::vector<std::string>& x) {
  Builder b(13, {1, 3, 1, 1});
  auto* shape = b.m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
  shape->clear_dim();
  for (const std::string& d : x) {
    auto* dim = shape->add_dim();
    if (!d.empty() && std::isdigit(static_cast<unsigned char>(d[0]))) dim->set_dim_value(std::stoll(d));
    if (!d.empty() && !std::isdigit(static_cast<unsigned char>(d[0]))) dim->set_dim_param(d);
  }
  b.Floats("w", {4, 3, 3, 3}, 0.5f);
  b.Node("Conv", {"x", "w"}, {"conv"});
  b.Node("GlobalAveragePool", {"conv"}, {"pool"});
  b.Output("pool");
  return b.m;
}

Result<Graph> ImportWithShapes(const onnx::ModelProto& m, std::map<std::string, Shape> shapes) {
  OnnxImportOptions options;
  options.input_shapes = std::move(shapes);
  return ParseOnnx(m.SerializeAsString(), options);
}

void ExpectRefused(const Result<Graph>& g, const std::string& fragment) {
  ASSERT_FALSE(g.ok()) << fragment;
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument) << g.status().message();
  EXPECT_NE(g.status().message().find(fragment), std::string::npos) << g.status().message();
}

TEST(OnnxIo, SymbolicBatchDimensionIsOne) {
  for (const std::string batch : {"N", "batch_size", ""}) {
    auto g = ParseOnnx(Bytes(ConvPoolModel({batch, "3", "32", "32"})));
    ASSERT_TRUE(g.ok()) << "batch '" << batch << "': " << g.status().message();
    EXPECT_EQ(g->inputs[0].shape, (Shape{1, 3, 32, 32}));
    EXPECT_EQ(g->layers[0].output_shape, (Shape{1, 4, 30, 30}));
    EXPECT_EQ(g->layers[1].output_shape, (Shape{1, 4, 1, 1}));
  }
  auto two = ImportWithShapes(ConvPoolModel({"N", "3", "32", "32"}), {{"x", {2, 3, 32, 32}}});
  ASSERT_TRUE(two.ok()) << two.status().message();
  EXPECT_EQ(two->layers[1].output_shape, (Shape{2, 4, 1, 1}));
}

TEST(OnnxIo, RefusesSymbolicDimensionsWithoutAShape) {
  auto hw = ParseOnnx(Bytes(ConvPoolModel({"N", "3", "H", "W"})));
  ExpectRefused(hw,
                "input 'x' has symbolic dimensions [N,3,H,W] (H at 2, W at 3): "
                "give its shape with --input-shape x=1x3x224x224");
  EXPECT_EQ(hw.status().message().find('\n'), std::string::npos);
  ExpectRefused(
      ParseOnnx(Bytes(ConvPoolModel({"", "3", "", "32"}))),
      "input 'x' has symbolic dimensions [?,3,?,32] (? at 2): give its shape with --input-shape x=1x3x224x32");
  ExpectRefused(ParseOnnx(Bytes(ConvPoolModel({"1", "C", "32", "32"}))), "(C at 1)");
}

TEST(OnnxIo, GivenInputShapesSetTheGraphsShapes) {
  const onnx::ModelProto m = ConvPoolModel({"N", "3", "H", "W"});
  auto small = ImportWithShapes(m, {{"x", {1, 3, 32, 32}}});
  ASSERT_TRUE(small.ok()) << small.status().message();
  EXPECT_EQ(small->inputs[0].shape, (Shape{1, 3, 32, 32}));
  EXPECT_EQ(small->layers[0].output_shape, (Shape{1, 4, 30, 30}));
  EXPECT_EQ(small->layers[1].output_shape, (Shape{1, 4, 1, 1}));
  auto unnamed = ImportWithShapes(m, {{"", {1, 3, 48, 40}}});  // the model's only input
  ASSERT_TRUE(unnamed.ok()) << unnamed.status().message();
  EXPECT_EQ(unnamed->inputs[0].shape, (Shape{1, 3, 48, 40}));
  EXPECT_EQ(unnamed->layers[0].output_shape, (Shape{1, 4, 46, 38}));
  EXPECT_EQ(unnamed->layers[1].output_shape, (Shape{1, 4, 1, 1}));
  auto fixed = ImportWithShapes(ConvPoolModel({"1", "3", "8", "8"}), {{"x", {1, 3, 8, 8}}});  // agrees: accepted
  ASSERT_TRUE(fixed.ok()) << fixed.status().message();

  const std::string path = ::testing::TempDir() + "ionn_symbolic_input_test.onnx";
  {
    std::ofstream out(path, std::ios::binary);
    out << Bytes(m);
  }
  OnnxImportOptions options;
  options.input_shapes = {{"x", {1, 3, 16, 12}}};
  auto read = ReadOnnxFile(path, options);
  auto refused = ReadOnnxFile(path);
  std::remove(path.c_str());
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(read->layers[0].output_shape, (Shape{1, 4, 14, 10}));
  ExpectRefused(refused, path + ": input 'x' has symbolic dimensions");
}

TEST(OnnxIo, RejectsGivenShapesThatDoNotFit) {
  const onnx::ModelProto m = ConvPoolModel({"N", "3", "H", "W"});
  ExpectRefused(ImportWithShapes(m, {{"x", {1, 3, 32}}}),
                "input 'x' has 4 dimensions [N,3,H,W], the given shape [1,3,32] has 3");
  ExpectRefused(ImportWithShapes(m, {{"x", {1, 4, 32, 32}}}),
                "input 'x' [N,3,H,W]: dimension 1 is 3 in the file, 4 in the given shape [1,4,32,32]");
  ExpectRefused(ImportWithShapes(m, {{"y", {1, 3, 32, 32}}}),
                "a shape is given for 'y', which is not a graph input (inputs: 'x')");
  ExpectRefused(ImportWithShapes(m, {{"", {1, 3, 32, 32}}, {"x", {1, 3, 32, 32}}}),
                "a shape without an input name must be the only shape given");
  ExpectRefused(ImportWithShapes(m, {{"x", {1, 3, 0, 32}}}), "every dimension must be > 0");
  ExpectRefused(ImportWithShapes(m, {{"x", {1, 3, 100000, 100000}}}), "under 2^32 elements");

  // An initializer that old exporters also list as a graph input is not one here.
  onnx::ModelProto listed = m;
  auto* w = listed.mutable_graph()->add_input();
  w->set_name("w");
  w->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  for (int d : {4, 3, 3, 3}) w->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
  ExpectRefused(ImportWithShapes(listed, {{"w", {4, 3, 3, 3}}}),
                "a shape is given for 'w', which is not a graph input (inputs: 'x')");

  onnx::ModelProto two = m;
  auto* y = two.mutable_graph()->add_input();
  y->CopyFrom(two.graph().input(0));
  y->set_name("y");
  ExpectRefused(ImportWithShapes(two, {{"", {1, 3, 32, 32}}}),
                "a shape without an input name needs a model with one graph input; this one has 2 graph inputs "
                "('x', 'y'): give NAME=shape");
}

TEST(OnnxIo, TruncatedZooFileNamesTheProblem) {
  auto g = BuildZooModel("alexnet", 1);
  auto bytes = SerializeOnnx(*g);
  ASSERT_TRUE(bytes.ok());
  for (double frac : {0.1, 0.5, 0.999}) {
    auto back = ParseOnnx(bytes->substr(0, static_cast<size_t>(bytes->size() * frac)));
    ASSERT_FALSE(back.ok()) << frac;
    EXPECT_FALSE(back.status().message().empty());
  }
}

}  // namespace
}  // namespace ionn
