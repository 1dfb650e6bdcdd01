#include "ionn/graph.h"

#include <gtest/gtest.h>

namespace ionn {
namespace {

Graph Small() {
  Graph g;
  g.name = "small";
  g.inputs = {{"x", {1, 2, 4, 4}}};
  Layer conv;
  conv.name = "conv";
  conv.kind = LayerKind::kConv;
  conv.inputs = {"x"};
  conv.out_channels = 3, conv.kernel_h = conv.kernel_w = 3, conv.pad_top = conv.pad_left = conv.pad_bottom = conv.pad_right = 1;
  conv.weights = {{"w", {3, 2, 3, 3}, std::vector<float>(54, 0.1f)}, {"b", {3}, {0, 0, 0}}};
  Layer relu;
  relu.name = "relu";
  relu.kind = LayerKind::kRelu;
  relu.inputs = {"conv"};
  g.layers = {conv, relu};
  g.outputs = {"relu"};
  return g;
}

void ExpectInvalid(Graph g, const std::string& fragment) {
  Status s = g.Finalize();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(fragment), std::string::npos) << s.message();
}

TEST(Graph, FinalizeInfersShapes) {
  Graph g = Small();
  ASSERT_TRUE(g.Finalize().ok());
  EXPECT_EQ(g.layers[1].output_shape, (Shape{1, 3, 4, 4}));
  EXPECT_EQ(g.ParameterCount(), 57);
}

TEST(Graph, RejectsWithLayerNames) {
  Graph g = Small();
  g.layers[1].inputs = {"nope"};
  ExpectInvalid(g, "layer 'relu' (Relu, index 1) reads tensor 'nope'");
  g = Small();
  std::swap(g.layers[0], g.layers[1]);
  ExpectInvalid(g, "topological order");
  g = Small();
  g.layers[0].weights[0].shape = {3, 1, 3, 3};
  g.layers[0].weights[0].data.resize(27);
  ExpectInvalid(g, "layer 'conv' (Conv, index 0): weight 'w' has shape [3,1,3,3], expected [3,2,3,3]");
  g = Small();
  g.layers[0].weights[1].data.resize(2);
  ExpectInvalid(g, "weight 'b' has 2 values for shape [3]");
  g = Small();
  g.layers[0].kernel_h = 9;
  ExpectInvalid(g, "kernel larger");
  g = Small();
  g.outputs = {"ghost"};
  ExpectInvalid(g, "ghost");
  g = Small();
  g.layers[1].name = "conv";
  g.layers[1].inputs = {"x"};
  ExpectInvalid(g, "duplicate");
}

TEST(Graph, CeilModePoolingMatchesCaffe) {
  Graph g;
  g.inputs = {{"x", {1, 1, 112, 112}}};
  Layer p;
  p.name = "pool";
  p.kind = LayerKind::kMaxPool;
  p.inputs = {"x"};
  p.kernel_h = p.kernel_w = 3, p.stride_h = p.stride_w = 2;
  p.ceil_mode = true;
  g.layers = {p};
  g.outputs = {"pool"};
  ASSERT_TRUE(g.Finalize().ok());
  EXPECT_EQ(g.layers[0].output_shape, (Shape{1, 1, 56, 56}));  // floor would give 55
}

}  // namespace
}  // namespace ionn
