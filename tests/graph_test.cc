#include "ionn/graph.h"

#include <gtest/gtest.h>

#include <climits>

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

// Hand-worked windows: which taps read the input somewhere, and where the
// padding moves.
TEST(ConvWindow, LeavesOutTheTapsThatReadOnlyPadding) {
  auto conv = [](int k, int stride, int pad, int dilation) {
    Layer l;
    l.kind = LayerKind::kConv, l.out_channels = 4, l.kernel_h = l.kernel_w = k;
    l.stride_h = l.stride_w = stride, l.dilation_h = l.dilation_w = dilation;
    l.pad_top = l.pad_left = l.pad_bottom = l.pad_right = pad;
    return l;
  };
  // ASPP, dilation 24 on 14x14: rows o - 24 + 24 t; only t = 1 reads [0, 14).
  ConvWindow w = ReadingConvWindow(conv(3, 1, 24, 24), {1, 8, 14, 14});
  EXPECT_TRUE(w.trimmed);
  EXPECT_EQ(w.kernel_h, 1);
  EXPECT_EQ(w.kernel_w, 1);
  EXPECT_EQ(w.first_row, 1);
  EXPECT_EQ(w.first_col, 1);
  EXPECT_EQ(w.pad_top, 0);
  EXPECT_EQ(w.pad_bottom, 0);
  EXPECT_EQ(w.dilation_h, 1);
  // Dilation 12 on 14x14: t = 0 reads rows o - 12 >= 0 for o = 12, 13: all kept.
  EXPECT_FALSE(ReadingConvWindow(conv(3, 1, 12, 12), {1, 8, 14, 14}).trimmed);
  // Stride 2 on 8 rows, pad = dilation = 12: 4 outputs (o = 0..3, (8 + 24 - 25) / 2 + 1);
  // t = 0 reads 2o - 12 < 0, t = 2 reads 2o + 12 >= 8: only t = 1 (rows 0, 2, 4, 6).
  // The padding after comes out -1, clamped to 0: (8 - 1) / 2 + 1 = 4 outputs still.
  w = ReadingConvWindow(conv(3, 2, 12, 12), {1, 8, 8, 8});
  EXPECT_TRUE(w.trimmed);
  EXPECT_EQ(w.kernel_h, 1);
  EXPECT_EQ(w.pad_top, 0);
  EXPECT_EQ(w.pad_bottom, 0);
  // 5x5 of dilation 4, pad 8 on a 6-wide map: t reads o - 8 + 4t for o in
  // [0, 6): t = 0 (rows -8..-3) never, t = 1..3 yes, t = 4 (8..13) never.
  w = ReadingConvWindow(conv(5, 1, 8, 4), {1, 2, 6, 6});
  EXPECT_TRUE(w.trimmed);
  EXPECT_EQ(w.kernel_h, 3);
  EXPECT_EQ(w.first_row, 1);
  EXPECT_EQ(w.dilation_h, 4);
  EXPECT_EQ(w.pad_top, 4);
  EXPECT_EQ(w.pad_bottom, 4);  // 6 + 8 - 9 + 1 = 6 outputs;
  // Every tap reads somewhere: the layer's own window.
  w = ReadingConvWindow(conv(3, 1, 1, 1), {1, 2, 6, 6});
  EXPECT_FALSE(w.trimmed);
  EXPECT_EQ(w.kernel_h, 3);
  EXPECT_EQ(w.pad_top, 1);
  // A huge pad and dilation: no overflow, no trim that does not fit.
  Layer huge = conv(3, 1, 0, 1 << 30);
  huge.pad_top = huge.pad_left = INT_MAX - 8;
  huge.pad_bottom = huge.pad_right = 0;
  EXPECT_NO_FATAL_FAILURE(ReadingConvWindow(huge, {1, 2, 10, 10}));
}

}  // namespace
}  // namespace ionn
