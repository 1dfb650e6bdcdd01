// Sub-layer slices: the rewritten model computes what the whole one does
// (within 1e-5, relative), its cost graph shares the layer's times out,
// and bad slicings are refused naming the layer.
#include "ionn/slices.h"

#include <gtest/gtest.h>

#include <cmath>

#include "ionn/engine.h"
#include "ionn/model_costs.h"
#include "ionn/plan.h"
#include "ionn/zoo.h"

namespace ionn {
namespace {

double MaxRelError(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, double(std::fabs(got[i] - want[i])));
    scale = std::max(scale, double(std::fabs(want[i])));
  }
  return diff / std::max(scale, 1e-30);
}

// MobileNet's largest layers are 1x1 convolutions (its classifier one
// too); AlexNet's are fc6 and fc7. Sliced in 2, 3 and 7 (uneven)
// slices, every tensor the model had is still there and equal.
TEST(Slices, TheSlicedModelComputesWhatTheWholeOneDoes) {
  for (const char* name : {"mobilenet", "alexnet"}) {
    const Graph whole = BuildZooModel(name, 2).value();
    const TensorMap input = {{whole.inputs[0].name, SeededInput(whole.inputs[0].shape, 3)}};
    std::vector<std::string> every;
    for (const Layer& l : whole.layers) every.push_back(l.name);
    std::vector<int> all(whole.layers.size());
    for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
    const TensorMap want = Engine::Create(whole).value()->Run(all, input, every).value();
    for (int n : {2, 3, 7}) {
      SCOPED_TRACE(std::string(name) + " in " + std::to_string(n));
      const std::vector<LayerSlices> cut = ChooseSlices(whole, SliceOptions{n, 0.1});
      ASSERT_FALSE(cut.empty());
      bool conv = false, fc = false;
      for (const auto& s : cut) {
        conv = conv || whole.layers[s.layer].kind == LayerKind::kConv;
        fc = fc || whole.layers[s.layer].kind == LayerKind::kFc;
        EXPECT_EQ(s.outputs.size(), static_cast<size_t>(n));
      }
      EXPECT_TRUE(std::string(name) == "mobilenet" ? conv : fc);  // MobileNet's classifier is a 1x1 convolution
      const Graph sliced = SliceGraph(whole, cut).value();
      EXPECT_EQ(sliced.layers.size(), whole.layers.size() + cut.size() * n);
      EXPECT_EQ(sliced.ParameterCount(), whole.ParameterCount());
      std::vector<int> sliced_all(sliced.layers.size());
      for (size_t k = 0; k < sliced_all.size(); ++k) sliced_all[k] = static_cast<int>(k);
      const TensorMap got = Engine::Create(sliced).value()->Run(sliced_all, input, every).value();
      for (const auto& [t, w] : want) EXPECT_LE(MaxRelError(got.at(t).data, w.data), 1e-5) << t;
    }
  }
}

TEST(Slices, CostsShareTheLayersTimesOut) {
  const std::string dir = std::string(IONN_SOURCE_DIR) + "/data/profiles/odroid-xu4_gtx1080ti/";
  const Graph whole = BuildZooModel("alexnet", 1, /*with_weights=*/false).value();
  const CostGraph costs = LoadModelCosts(whole, PaperCostSources("alexnet", dir).value(), MakeLinkSpec(80)).value();
  const std::vector<LayerSlices> cut = ChooseSlices(whole, SliceOptions{4, 0.1});
  const CostGraph sliced = SliceCosts(costs, cut).value();
  const Graph sliced_model = SliceGraph(whole, cut).value();
  ASSERT_EQ(sliced.num_layers(), static_cast<int>(sliced_model.layers.size()));
  for (int k = 0; k < sliced.num_layers(); ++k) EXPECT_EQ(sliced.layer(k).name, sliced_model.layers[k].name);
  for (const auto& s : cut) {
    const CostLayer& l = costs.layer(s.layer);
    double client = 0, server = 0, upload = 0;
    for (int i = 0; i < 4; ++i) {
      const CostLayer& p = sliced.layer(sliced.FindLayer(SliceName(s.name, i)));
      client += p.client_ms, server += p.server_ms, upload += p.upload_ms;
      EXPECT_EQ(p.inputs, l.inputs);
    }
    EXPECT_NEAR(client, l.client_ms, 1e-9);
    EXPECT_NEAR(server, l.server_ms, 1e-9);
    EXPECT_NEAR(upload, l.upload_ms, 1e-9);
    const CostLayer& join = sliced.layer(sliced.FindLayer(s.name));
    EXPECT_EQ(join.upload_ms, 0);
    EXPECT_EQ(join.down_ms, l.down_ms);
  }
  EXPECT_NEAR(AllAtOnceUploadMs(sliced), AllAtOnceUploadMs(costs), 1e-6);
  // All uploaded, the optimal latency is the same: a slice of a layer runs
  // where the layer would, in its share of the time.
  PlannerOptions o;
  EXPECT_NEAR(MakePlan(sliced, o).value().latency_optimal_ms, MakePlan(costs, o).value().latency_optimal_ms, 1e-6);
}

// The client plans with profiles of the sliced model (SliceProfile); the
// simulator with sliced costs (SliceCosts): both rules give one cost graph.
TEST(Slices, SlicedProfilesGiveTheSlicedCosts) {
  const std::string dir = std::string(IONN_SOURCE_DIR) + "/data/profiles/odroid-xu4_gtx1080ti/";
  for (const char* name : {"alexnet", "mobilenet"}) {
    SCOPED_TRACE(name);
    const Graph whole = BuildZooModel(name, 1, /*with_weights=*/false).value();
    const Profile client = ReadProfileCsv(dir + name + ".csv").value();
    Profile server = client;  // the client's times as the server's: any numbers do
    for (auto& [layer, row] : server.rows) row.server_ms = row.client_ms.value_or(0) / 7;
    const LinkSpec link = MakeLinkSpec(40, 20, /*rtt_ms=*/30);
    const CostGraph costs = BuildCostGraph(whole, client, &server, nullptr, link).value();
    const std::vector<LayerSlices> cut = ChooseSlices(whole, SliceOptions{3, 0.1});
    ASSERT_FALSE(cut.empty());
    const CostGraph want = SliceCosts(costs, cut, link.rtt_ms).value();
    const Profile sliced_server = SliceProfile(server, cut);
    const CostGraph got =
        BuildCostGraph(SliceGraph(whole, cut).value(), SliceProfile(client, cut), &sliced_server, nullptr, link)
            .value();
    ASSERT_EQ(got.num_layers(), want.num_layers());
    for (int k = 0; k < got.num_layers(); ++k) {
      const CostLayer &a = got.layer(k), &b = want.layer(k);
      EXPECT_EQ(a.name, b.name);
      EXPECT_NEAR(a.client_ms, b.client_ms, 1e-9) << a.name;
      EXPECT_NEAR(a.server_ms, b.server_ms, 1e-9) << a.name;
      EXPECT_NEAR(a.upload_ms, b.upload_ms, 1e-6) << a.name;
      EXPECT_NEAR(a.up_ms, b.up_ms, 1e-6) << a.name;
      EXPECT_NEAR(a.down_ms, b.down_ms, 1e-6) << a.name;
    }
    EXPECT_NEAR(AllAtOnceUploadMs(got), AllAtOnceUploadMs(want), 1e-6);
  }
}

// --slices auto keeps the count whose plan finishes the most queries in
// the window, and the fewer slices on a tie.
TEST(Slices, AutoKeepsTheCountThatFinishesTheMostQueries) {
  const std::string dir = std::string(IONN_SOURCE_DIR) + "/data/profiles/odroid-xu4_gtx1080ti/";
  const Graph whole = BuildZooModel("alexnet", 1, /*with_weights=*/false).value();
  const CostGraph costs = LoadModelCosts(whole, PaperCostSources("alexnet", dir).value(), MakeLinkSpec(80)).value();
  PlannerOptions o;
  o.algorithm = "recursive-efficiency";
  const auto plan_for = [&](const CostGraph& g) { return MakePlan(g, o); };
  const auto sliced = [&](int n) { return SliceCosts(costs, ChooseSlices(whole, SliceOptions{n, 0.1})); };
  const auto in_window = [&](const CostGraph& g) {
    const UploadPlan p = MakePlan(g, o).value();
    std::vector<double> latency, upload;
    for (const Partition& q : p.partitions) latency.push_back(q.latency_ms), upload.push_back(q.upload_ms);
    return ExpectedQueriesInWindow(latency, upload, AllAtOnceUploadMs(g));
  };
  const std::vector<int> counts = {1, 2, 4, 8};
  const SlicedPlan best = PlanBestSlices(sliced, plan_for, counts).value();
  double most = 0;
  for (int n : counts) most = std::max(most, in_window(sliced(n).value()));
  EXPECT_NEAR(in_window(best.costs), most, 1e-9);
  EXPECT_GT(best.slices, 1);  // AlexNet's fc6 is 62% of the upload: slicing it pays
  EXPECT_GT(most, in_window(costs) + 1);
  // The same graph for every count: the first (fewest) is kept.
  EXPECT_EQ(PlanBestSlices([&](int) { return Result<CostGraph>(costs); }, plan_for, counts).value().slices, 1);
  EXPECT_FALSE(PlanBestSlices(sliced, plan_for, {}).ok());
}

TEST(Slices, BadSlicingsAreRefusedNamingTheLayer) {
  const Graph whole = BuildZooModel("alexnet", 1, /*with_weights=*/false).value();
  const int fc6 = whole.FindLayer("fc6"), pool5 = whole.FindLayer("pool5");
  const int64_t out = whole.layers[fc6].out_channels;
  auto bad = SliceGraph(whole, {{fc6, "fc6", {out / 2, out / 2 - 1}}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("layer 'fc6'"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(SliceGraph(whole, {{fc6, "fc6", {out}}}).ok());            // one slice
  EXPECT_FALSE(SliceGraph(whole, {{fc6, "fc6", {out + 1, -1}}}).ok());    // a negative slice
  EXPECT_FALSE(SliceGraph(whole, {{pool5, "pool5", {128, 128}}}).ok());   // not sliceable
  EXPECT_FALSE(SliceGraph(whole, {{fc6, "fc7", {out / 2, out / 2}}}).ok());  // the name is not the layer's
  EXPECT_TRUE(ChooseSlices(whole, SliceOptions{1, 0.1}).empty());
}

}  // namespace
}  // namespace ionn
