// Resize and Upsample through ONNX import and export: every opset's way of
// giving scales or sizes, the attributes kept, the refusals (each one line
// naming the node), and export then import giving the same layer.
#include <gtest/gtest.h>

#include <cmath>

#include <onnx/onnx_pb.h>

#include "ionn/onnx_io.h"

namespace ionn {
namespace {

struct Input {
  std::string name;  // "" : omitted
  std::vector<float> floats;
  std::vector<int64_t> ints;
  bool is_int = false;
};

// x [1, 2, 4, 6] -> one Resize/Upsample node -> y.
onnx::ModelProto OneResize(const std::string& op, int opset, const std::vector<Input>& inputs,
                           const std::vector<std::pair<std::string, std::string>>& strings = {},
                           const std::vector<float>* scales_attr = nullptr) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(opset);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  for (int d : {1, 2, 4, 6}) in->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
  auto* n = g->add_node();
  n->set_name("up"), n->set_op_type(op);
  n->add_input("x");
  for (const Input& i : inputs) {
    n->add_input(i.name);
    if (i.name.empty()) continue;
    auto* t = g->add_initializer();
    t->set_name(i.name);
    if (i.is_int) {
      t->set_data_type(onnx::TensorProto::INT64);
      t->add_dims(static_cast<int64_t>(i.ints.size()));
      for (int64_t v : i.ints) t->add_int64_data(v);
    } else {
      t->set_data_type(onnx::TensorProto::FLOAT);
      t->add_dims(static_cast<int64_t>(i.floats.size()));
      for (float v : i.floats) t->add_float_data(v);
    }
  }
  for (const auto& [name, value] : strings) {
    auto* a = n->add_attribute();
    a->set_name(name), a->set_type(onnx::AttributeProto::STRING), a->set_s(value);
  }
  if (scales_attr) {
    auto* a = n->add_attribute();
    a->set_name("scales"), a->set_type(onnx::AttributeProto::FLOATS);
    for (float v : *scales_attr) a->add_floats(v);
  }
  n->add_output("y");
  g->add_output()->set_name("y");
  return m;
}

Input Floats(const std::string& name, std::vector<float> v) { return {name, std::move(v), {}, false}; }
Input Ints(const std::string& name, std::vector<int64_t> v) { return {name, {}, std::move(v), true}; }
const Input kOmitted{};

const Layer& OnlyLayer(const Result<Graph>& g) { return g->layers.at(0); }

TEST(ResizeImport, ReadsScalesAndSizesOfEveryOpset) {
  // opset 13, sizes (PyTorch's interpolate(size=...)): scale = out / in.
  auto g = ParseOnnx(OneResize("Resize", 13, {kOmitted, kOmitted, Ints("sizes", {1, 2, 9, 12})},
                               {{"mode", "linear"}, {"coordinate_transformation_mode", "pytorch_half_pixel"}})
                         .SerializeAsString());
  ASSERT_TRUE(g.ok()) << g.status().message();
  const Layer& l = OnlyLayer(g);
  EXPECT_EQ(l.kind, LayerKind::kResize);
  EXPECT_EQ(l.output_shape, (Shape{1, 2, 9, 12}));
  EXPECT_EQ(l.attrs.at("mode").text, "linear");
  EXPECT_EQ(l.attrs.at("coordinate_transformation_mode").text, "pytorch_half_pixel");
  EXPECT_EQ(l.attrs.at("nearest_mode").text, "round_prefer_floor");
  EXPECT_EQ(l.attrs.count("scales"), 0u);  // sizes given: the kernel maps by them
  EXPECT_EQ(l.attrs.at("sizes").ints, (std::vector<int64_t>{9, 12}));
  // opset 11, scales (roi given, empty): floor(in * scale).
  g = ParseOnnx(OneResize("Resize", 11, {Floats("roi", {}), Floats("scales", {1, 1, 1.5f, 0.5f})},
                          {{"nearest_mode", "ceil"}})
                    .SerializeAsString());
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(OnlyLayer(g).output_shape, (Shape{1, 2, 6, 3}));
  EXPECT_EQ(OnlyLayer(g).attrs.at("scales").floats, (std::vector<float>{1.5f, 0.5f}));
  EXPECT_EQ(OnlyLayer(g).attrs.at("mode").text, "nearest");
  EXPECT_EQ(OnlyLayer(g).attrs.at("coordinate_transformation_mode").text, "half_pixel");
  EXPECT_EQ(OnlyLayer(g).attrs.at("nearest_mode").text, "ceil");
  // opset 10 and Upsample: asymmetric, nearest rounding down.
  g = ParseOnnx(OneResize("Resize", 10, {Floats("scales", {1, 1, 2, 3})}).SerializeAsString());
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(OnlyLayer(g).output_shape, (Shape{1, 2, 8, 18}));
  EXPECT_EQ(OnlyLayer(g).attrs.at("coordinate_transformation_mode").text, "asymmetric");
  EXPECT_EQ(OnlyLayer(g).attrs.at("nearest_mode").text, "floor");
  g = ParseOnnx(OneResize("Upsample", 9, {Floats("scales", {1, 1, 2, 2})}, {{"mode", "linear"}}).SerializeAsString());
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(OnlyLayer(g).output_shape, (Shape{1, 2, 8, 12}));
  const std::vector<float> scales = {1, 1, 2, 1};
  g = ParseOnnx(OneResize("Upsample", 7, {}, {{"mode", "bilinear"}}, &scales).SerializeAsString());
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(OnlyLayer(g).output_shape, (Shape{1, 2, 8, 6}));
  EXPECT_EQ(OnlyLayer(g).attrs.at("mode").text, "linear");
}

void ExpectRefused(const onnx::ModelProto& m, const std::string& fragment) {
  auto g = ParseOnnx(m.SerializeAsString());
  ASSERT_FALSE(g.ok()) << "imported, expected: " << fragment;
  const std::string& msg = g.status().message();
  EXPECT_NE(msg.find("node 0 'up' (" + m.graph().node(0).op_type() + ")"), std::string::npos) << msg;
  EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(ResizeImport, RefusesWhatItCannotDoNamingTheNode) {
  auto scales = [](std::vector<float> s) { return std::vector<Input>{kOmitted, Floats("s", std::move(s))}; };
  ExpectRefused(OneResize("Resize", 13, scales({1, 1, 0, 2})), "scale");
  ExpectRefused(OneResize("Resize", 13, scales({1, 1, NAN, 2})), "scale");
  ExpectRefused(OneResize("Resize", 13, scales({1, 1, 1e9f, 2})), "scale");
  ExpectRefused(OneResize("Resize", 13, scales({1, 1, 0.1f, 2})), "(must be 1 to 2^20)");
  ExpectRefused(OneResize("Resize", 13, scales({1, 2, 2, 2})), "batch or channel");
  ExpectRefused(OneResize("Upsample", 9, {Floats("s", {1, 1.2f, 2, 2})}), "scale 1.2 of axis 1");
  ExpectRefused(OneResize("Resize", 13, scales({2, 2})), "2 values for 4 axes");
  ExpectRefused(OneResize("Resize", 10, {Floats("s", {1, 1, 2, 2})}, {{"mode", "cubic"}}), "mode 'cubic'");
  ExpectRefused(OneResize("Resize", 13, {Floats("roi", {0, 0, 0, 0, 1, 1, 1, 1}), Floats("s", {1, 1, 2, 2})},
                          {{"coordinate_transformation_mode", "tf_crop_and_resize"}}),
                "tf_crop_and_resize with scales");
  ExpectRefused(OneResize("Resize", 13, {Floats("roi", {0, 0.5f, 0, 0, 1, 1, 1, 1}), kOmitted, Ints("z", {1, 2, 3, 3})},
                          {{"coordinate_transformation_mode", "tf_crop_and_resize"}}),
                "crops the batch or channel");
  ExpectRefused(OneResize("Resize", 13, scales({1, 1, 2, 2}), {{"mode", "area"}}), "mode 'area'");
  ExpectRefused(OneResize("Resize", 13, scales({1, 1, 2, 2}), {{"coordinate_transformation_mode", "tf_crop_and_resize"}}),
                "tf_crop_and_resize");
  ExpectRefused(OneResize("Resize", 13, scales({1, 1, 2, 2}), {{"nearest_mode", "sideways"}}), "nearest_mode");
  ExpectRefused(OneResize("Resize", 13, {kOmitted, Floats("s", {1, 1, 2, 2}), Ints("z", {1, 2, 8, 8})}),
                "both scales and sizes");
  ExpectRefused(OneResize("Resize", 13, {kOmitted, kOmitted, Ints("z", {1, 2, 0, 8})}), "size");
  ExpectRefused(OneResize("Resize", 13, {kOmitted, kOmitted, Ints("z", {1, 2, 1 << 30, 8})}), "size");
  ExpectRefused(OneResize("Resize", 13, {}), "neither scales nor sizes");
  ExpectRefused(OneResize("Resize", 10, {Floats("s", {1, 1, 0.5f, 0.5f})}), "nearest downsampling");
}

TEST(ResizeImport, ExportThenImportGivesTheSameLayer) {
  for (const auto& m : {OneResize("Resize", 13, {kOmitted, Floats("s", {1, 1, 1.5f, 0.75f})}, {{"mode", "linear"}}),
                        OneResize("Resize", 13, {kOmitted, kOmitted, Ints("z", {1, 2, 7, 10})},
                                  {{"coordinate_transformation_mode", "align_corners"}, {"nearest_mode", "ceil"}}),
                        OneResize("Resize", 13, {kOmitted, Floats("s", {1, 1, 2, 2})}, {{"mode", "cubic"}}),
                        OneResize("Resize", 13,
                                  {Floats("roi", {0, 0, 0.25f, 0.5f, 1, 1, 0.75f, 1.25f}), kOmitted, Ints("z", {1, 2, 3, 5})},
                                  {{"coordinate_transformation_mode", "tf_crop_and_resize"}, {"mode", "linear"}})}) {
    auto g = ParseOnnx(m.SerializeAsString());
    ASSERT_TRUE(g.ok()) << g.status().message();
    auto bytes = SerializeOnnx(*g);
    ASSERT_TRUE(bytes.ok()) << bytes.status().message();
    auto back = ParseOnnx(*bytes);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(OnlyLayer(back).kind, LayerKind::kResize);
    EXPECT_EQ(OnlyLayer(back).output_shape, OnlyLayer(g).output_shape);
    EXPECT_EQ(OnlyLayer(back).attrs, OnlyLayer(g).attrs);
  }
}

}  // namespace
}  // namespace ionn
