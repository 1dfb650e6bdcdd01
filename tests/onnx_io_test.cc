#include "ionn/onnx_io.h"

#include <gtest/gtest.h>

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
  ExpectRejected(Bytes(TinyModel(3)), "opset 3 is not supported");
  ExpectRejected(Bytes(TinyModel(18)), "opset 18");

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
  ExpectRejected(Bytes(m), "layer 'conv' (Conv, index 0): weight 'w' has shape [2,5,1,1], expected [2,1,1,1]");

  m = TinyModel();
  m.mutable_graph()->mutable_output(0)->set_name("nowhere");
  ExpectRejected(Bytes(m), "graph output 'nowhere'");
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
