#include "ionn/zoo.h"

#include <gtest/gtest.h>

#include "ionn/model_costs.h"

namespace ionn {
namespace {

const std::string kProfiles = std::string(IONN_SOURCE_DIR) + "/data/profiles/odroid-xu4_gtx1080ti/";

TEST(Zoo, AlexNetHasThePublishedParameterCount) {
  auto g = BuildZooModel("alexnet", 1, /*with_weights=*/false);
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->ParameterCount(), 60965224);
  EXPECT_EQ(g->layers.back().output_shape, (Shape{1, 1000}));
  EXPECT_EQ(g->layers[g->FindLayer("pool5")].output_shape, (Shape{1, 256, 6, 6}));
}

TEST(Zoo, ParameterCountsMatchPublishedArchitectures) {
  // BVLC GoogLeNet deploy (no auxiliary heads), and MobileNet v1 1.0 224 as
  // Keras totals it: 4,231,976 trainable + 21,888 running statistics.
  EXPECT_EQ(BuildZooModel("googlenet", 1, false)->ParameterCount(), 6998552);
  EXPECT_EQ(BuildZooModel("mobilenet", 1, false)->ParameterCount(), 4253864);
  // ResNet-50: torchvision's 25,557,032 counts gamma and beta; Caffe's model
  // also stores the running mean and variance (2 x 26,560 values) and a
  // bias on conv1 (64).
  EXPECT_EQ(BuildZooModel("resnet50", 1, false)->ParameterCount(), 25557032 + 2 * 26560 + 64);
}

TEST(Zoo, EveryModelLayerJoinsItsPaperProfile) {
  for (const auto& entry : ZooModels()) {
    auto g = BuildZooModel(entry.name, 1, false);
    ASSERT_TRUE(g.ok()) << entry.name << ": " << g.status().message();
    auto profile = ReadProfileCsv(kProfiles + entry.profile_file);
    ASSERT_TRUE(profile.ok()) << profile.status().message();
    for (const auto& l : g->layers) {
      EXPECT_TRUE(profile->rows.count(l.name)) << entry.name << ": no profile row for layer " << l.name;
    }
    int inputs = 0, splits = 0;
    for (const auto& row : profile->order) {
      if (g->FindLayer(row) >= 0) continue;
      const bool split = row.size() > 6 && row.substr(row.size() - 6) == "_split";
      const bool input = row == "data" || row == "input";
      EXPECT_TRUE(split || input) << entry.name << ": profile row " << row << " joins nothing";
      inputs += input, splits += split;
    }
    EXPECT_EQ(inputs, 1) << entry.name;
    EXPECT_EQ(static_cast<size_t>(g->layers.size() + inputs + splits), profile->order.size()) << entry.name;
  }
}

TEST(Zoo, UnknownModelIsAnError) {
  auto g = BuildZooModel("vgg16");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("alexnet"), std::string::npos);
}

TEST(Zoo, WeightsAreSeededAndDeterministic) {
  auto a = BuildZooModel("mobilenet", 7), b = BuildZooModel("mobilenet", 7), c = BuildZooModel("mobilenet", 8);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->layers[0].weights[0].data, b->layers[0].weights[0].data);
  EXPECT_NE(a->layers[0].weights[0].data, c->layers[0].weights[0].data);
}

}  // namespace
}  // namespace ionn
