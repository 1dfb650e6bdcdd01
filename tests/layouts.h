// A layer between two convolutions, run in the layouts the engine picks
// (NHWC or blocked, where the convolutions compute) and in plain NCHW: the
// same bits. For the engine tests of kinds that claim channels-last or
// layout-free kernels.
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "ionn/engine.h"
#include "random_values.h"

namespace ionn {

// x [1, ic, 9, 7] -> conv k x k (ic -> mid) -> `middle` (reads "c1") -> conv
// k x k (mid -> 4). `channels_last_kernels` >= 0: how many kernels the
// engine must run channels last.
inline void ExpectLayoutsAgreeBetweenConvolutions(Layer middle, int ic, int mid, int k, uint32_t seed,
                                                  int channels_last_kernels, const std::string& what) {
  std::mt19937 rng(seed);
  Graph g;
  const Shape x = {1, ic, 9, 7};
  g.inputs = {{"x", x}};
  auto conv = [&](const std::string& name, const std::string& in, int from, int to) {
    Layer l;
    l.kind = LayerKind::kConv, l.out_channels = to, l.kernel_h = l.kernel_w = k, l.name = name, l.inputs = {in};
    l.pad_top = l.pad_left = l.pad_bottom = l.pad_right = k / 2;
    l.weights = {{"w", {to, from, k, k}, Random(int64_t{to} * from * k * k, rng)}, {"b", {to}, Random(to, rng)}};
    g.layers.push_back(l);
  };
  conv("c1", "x", ic, mid);
  middle.name = "m", middle.inputs = {"c1"};
  g.layers.push_back(middle);
  conv("c2", "m", mid, 4);
  g.outputs = {"c2"};
  ASSERT_TRUE(g.Finalize().ok()) << what;
  auto blocked = Engine::Create(g, EngineOptions{1, true, true});
  auto plain = Engine::Create(g, EngineOptions{1, true, false});
  ASSERT_TRUE(blocked.ok() && plain.ok()) << what;
  auto run = (*blocked)->Prepare({0, 1, 2}, g.outputs);
  ASSERT_TRUE(run.ok()) << what;
  const TensorMap in = {{"x", SeededInput(x, seed)}};
  auto a = (*blocked)->Execute(**run, in);
  auto b = (*plain)->RunAll(in);
  ASSERT_TRUE(a.ok() && b.ok()) << what;
  EXPECT_EQ(a->at("c2").data, b->at("c2").data) << what;
  if (channels_last_kernels >= 0) {
    EXPECT_EQ((*run)->channels_last_kernels(), channels_last_kernels) << what;
  }
}

}  // namespace ionn
