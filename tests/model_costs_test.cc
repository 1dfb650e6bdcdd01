// Loading a model's costs from profile files (the paper rule included),
// and fitting the per-type server prediction functions.
#include "ionn/model_costs.h"

#include <gtest/gtest.h>

#include "ionn/csv.h"
#include "ionn/zoo.h"

namespace ionn {
namespace {

const std::string kPaperDir = std::string(IONN_SOURCE_DIR) + "/data/profiles/odroid-xu4_gtx1080ti/";

Graph Zoo(const std::string& name) { return BuildZooModel(name, 1, /*with_weights=*/false).value(); }

CostSources Paper() {
  CostSources s;
  s.paper_profiles = true;
  s.paper_profile_dir = kPaperDir;
  return s;
}

TEST(PaperCostSources, PublishedProfileExceptMobileNetsServer) {
  auto alexnet = PaperCostSources("alexnet", kPaperDir);
  ASSERT_TRUE(alexnet.ok()) << alexnet.status().message();
  EXPECT_EQ(alexnet->client_profile, kPaperDir + "alexnet.csv");
  EXPECT_EQ(alexnet->server_profile, kPaperDir + "alexnet.csv");
  EXPECT_EQ(alexnet->server_regression, "");
  auto mobilenet = PaperCostSources("mobilenet", "profiles");  // a folder without the trailing slash
  ASSERT_TRUE(mobilenet.ok()) << mobilenet.status().message();
  EXPECT_EQ(mobilenet->client_profile, "profiles/mobilenet.csv");
  EXPECT_EQ(mobilenet->server_profile, "");
  EXPECT_EQ(mobilenet->server_regression, "profiles/server_regression.csv");
  auto vgg = PaperCostSources("vgg16", kPaperDir);
  ASSERT_FALSE(vgg.ok());
  EXPECT_EQ(vgg.status().code(), StatusCode::kNotFound);
}

TEST(LoadModelCosts, PaperAlexNetTakesBothColumnsOfItsProfile) {
  const Graph g = Zoo("alexnet");
  auto costs = LoadModelCosts(g, Paper(), MakeLinkSpec(80));
  ASSERT_TRUE(costs.ok()) << costs.status().message();
  const Profile profile = ReadProfileCsv(kPaperDir + "alexnet.csv").value();
  ASSERT_EQ(costs->num_layers(), static_cast<int>(g.layers.size()));
  for (const CostLayer& l : costs->layers()) {
    EXPECT_DOUBLE_EQ(l.client_ms, *profile.rows.at(l.name).client_ms) << l.name;
    EXPECT_DOUBLE_EQ(l.server_ms, *profile.rows.at(l.name).server_ms) << l.name;
  }
  auto direct = BuildCostGraph(g, profile, &profile, nullptr, MakeLinkSpec(80));
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(CostGraphToJson(*costs), CostGraphToJson(*direct));
}

TEST(LoadModelCosts, PaperMobileNetPredictsServerTimes) {
  const Graph g = Zoo("mobilenet");
  auto costs = LoadModelCosts(g, Paper(), MakeLinkSpec(80));
  ASSERT_TRUE(costs.ok()) << costs.status().message();
  const ServerRegression reg = ReadRegressionCsv(kPaperDir + "server_regression.csv").value();
  const Profile profile = ReadProfileCsv(kPaperDir + "mobilenet.csv").value();
  for (size_t k = 0; k < g.layers.size(); ++k) {
    const CostLayer& l = costs->layer(static_cast<int>(k));
    EXPECT_DOUBLE_EQ(l.client_ms, *profile.rows.at(l.name).client_ms) << l.name;
    EXPECT_DOUBLE_EQ(l.server_ms, PredictServerMs(g, g.layers[k], reg).value()) << l.name;
  }
}

// A negative intercept predicts 0 ms or less for small layers: floored at
// 0, and named, per type, with the first such layer.
TEST(NonPositivePredictions, NamesTheLayersAFitFloorsAtZero) {
  const Graph g = Zoo("alexnet");
  ServerRegression reg = ReadRegressionCsv(kPaperDir + "server_regression.csv").value();
  EXPECT_TRUE(NonPositivePredictions(g, reg).empty());  // the paper's functions: positive for AlexNet
  // InnerProduct X is in*out: fc6 37.7M, fc7 16.8M, fc8 4.1M. At b = -0.1,
  // a = 1e-8: fc6 0.277, fc7 0.068, fc8 -0.059 ms.
  reg.by_type["InnerProduct"] = {1e-8, -0.1};
  const auto found = NonPositivePredictions(g, reg);
  ASSERT_EQ(found.size(), 1u);
  const NonPositivePrediction& p = found.at("InnerProduct");
  EXPECT_EQ(p.layers, 1);
  EXPECT_EQ(p.first, "fc8");
  EXPECT_NEAR(p.first_ms, 1e-8 * 4096 * 1000 - 0.1, 1e-12);
  EXPECT_EQ(PredictServerMs(g, g.layers[g.FindLayer("fc8")], reg).value(), 0.0);
  reg.by_type["InnerProduct"] = {1e-8, -1};
  EXPECT_EQ(NonPositivePredictions(g, reg).at("InnerProduct").layers, 3);
}

TEST(LoadModelCosts, GivenFilesWinOverThePaperOnes) {
  CostSources s = Paper();
  s.server_regression = kPaperDir + "server_regression.csv";  // AlexNet's server times predicted instead
  const Graph g = Zoo("alexnet");
  auto costs = LoadModelCosts(g, s, MakeLinkSpec(80));
  ASSERT_TRUE(costs.ok()) << costs.status().message();
  const ServerRegression reg = ReadRegressionCsv(s.server_regression).value();
  EXPECT_DOUBLE_EQ(costs->layer(0).server_ms, PredictServerMs(g, g.layers[0], reg).value());
}

TEST(LoadModelCosts, RejectsMissingOrConflictingSources) {
  const Graph g = Zoo("alexnet");
  auto expect = [&](const CostSources& s, const std::string& fragment) {
    auto costs = LoadModelCosts(g, s, MakeLinkSpec(80));
    ASSERT_FALSE(costs.ok()) << fragment;
    EXPECT_NE(costs.status().message().find(fragment), std::string::npos) << costs.status().message();
  };
  expect(CostSources{}, "--client-profile");
  CostSources both;
  both.client_profile = both.server_profile = both.server_regression = kPaperDir + "alexnet.csv";
  expect(both, "exactly one of --server-profile");
  CostSources missing;
  missing.client_profile = missing.server_profile = kPaperDir + "nothing.csv";
  expect(missing, "nothing.csv");
  Graph renamed = g;
  renamed.name = "my-net";
  auto costs = LoadModelCosts(renamed, Paper(), MakeLinkSpec(80));
  ASSERT_FALSE(costs.ok());
  EXPECT_NE(costs.status().message().find("--paper-profiles needs a zoo model"), std::string::npos);
}

TEST(MakeLinkSpec, DownlinkDefaultsToTheUplink) {
  const LinkSpec same = MakeLinkSpec(40);
  EXPECT_DOUBLE_EQ(same.uplink_mbps, 40);
  EXPECT_DOUBLE_EQ(same.downlink_mbps, 40);
  const LinkSpec own = MakeLinkSpec(40, 100, 2, 3);
  EXPECT_DOUBLE_EQ(own.downlink_mbps, 100);
  EXPECT_DOUBLE_EQ(own.rtt_ms, 2);
  EXPECT_DOUBLE_EQ(own.partition_overhead_ms, 3);
  EXPECT_DOUBLE_EQ(MakeLinkSpec(40, -1).downlink_mbps, 40);
}

TEST(FitServerRegression, RecoversExactLines) {
  std::map<std::string, std::vector<RegressionSample>> samples;
  for (double x : {1.0, 2.0, 5.0, 1000.0, 123456.0}) {
    samples["Convolution"].push_back({x, 2e-6 * x + 0.25});
    samples["ReLU"].push_back({x, -0.5 * x + 7});
  }
  const ServerRegressionFit fit = FitServerRegression(samples);
  ASSERT_EQ(fit.regression.by_type.size(), 2u);
  EXPECT_NEAR(fit.regression.by_type.at("Convolution").first, 2e-6, 1e-15);
  EXPECT_NEAR(fit.regression.by_type.at("Convolution").second, 0.25, 1e-9);
  EXPECT_NEAR(fit.regression.by_type.at("ReLU").first, -0.5, 1e-12);
  EXPECT_NEAR(fit.regression.by_type.at("ReLU").second, 7, 1e-6);
  for (const char* type : {"Convolution", "ReLU"}) {
    EXPECT_EQ(fit.stats.at(type).samples, 5);
    EXPECT_NEAR(fit.stats.at(type).r_squared, 1.0, 1e-12) << type;
  }
}

TEST(FitServerRegression, ConstantXGivesTheMeanAndEmptyTypesAreLeftOut) {
  std::map<std::string, std::vector<RegressionSample>> samples;
  samples["Pooling"] = {{10, 1}, {10, 3}};
  samples["LRN"] = {};
  const ServerRegressionFit fit = FitServerRegression(samples);
  EXPECT_EQ(fit.regression.by_type.count("LRN"), 0u);
  EXPECT_EQ(fit.stats.count("LRN"), 0u);
  EXPECT_DOUBLE_EQ(fit.regression.by_type.at("Pooling").first, 0);
  EXPECT_DOUBLE_EQ(fit.regression.by_type.at("Pooling").second, 2);
  EXPECT_DOUBLE_EQ(fit.stats.at("Pooling").r_squared, 0);
}

TEST(RegressionCsv, WritesWhatItReads) {
  ServerRegression r;
  r.by_type["Convolution"] = {1.5e-9, 0.0123};
  r.by_type["InnerProduct"] = {2e-7, -0.001};
  const std::string csv = RegressionToCsv(r);
  EXPECT_EQ(csv, "layer_type,a_ms_per_unit,b_ms\nConvolution,1.5e-09,0.0123\nInnerProduct,2e-07,-0.001\n");
  auto back = ParseRegressionCsv(csv);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->by_type, r.by_type);
}

TEST(Csv, ReadsRfc4180) {
  auto rows = ParseCsv("a, b ,c\r\n\n\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"\nlast,,\n  \n");
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].cells, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ((*rows)[1].line, 3);
  EXPECT_EQ((*rows)[1].cells, (std::vector<std::string>{"x,y", "say \"hi\"", "two\nlines"}));
  EXPECT_EQ((*rows)[2].line, 5);
  EXPECT_EQ((*rows)[2].cells, (std::vector<std::string>{"last", "", ""}));
  auto open = ParseCsv("a,b\n\"never closed,c\n");
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.status().message().find("line 2: a quoted field is not closed"), std::string::npos);
  auto after = ParseCsv("\"a\"b,c\n");
  ASSERT_FALSE(after.ok());
  EXPECT_NE(after.status().message().find("text after a closing quote"), std::string::npos);
  for (const std::string f : {"plain", "a,b", "q\"uote", " pad", "line\nbreak", ""}) {
    auto back = ParseCsv(CsvLine({f, "x"}));
    ASSERT_TRUE(back.ok()) << f;
    EXPECT_EQ(back->at(0).cells, (std::vector<std::string>{f, "x"})) << f;
  }
}

// One policy for profiles and regressions: known columns only, no row
// longer than the header, no key twice; names with commas round-trip.
TEST(Csv, ProfilesAndRegressionsShareOnePolicy) {
  auto bad = [](const Result<Profile>& p, const std::string& fragment) {
    ASSERT_FALSE(p.ok()) << fragment;
    EXPECT_NE(p.status().message().find(fragment), std::string::npos) << p.status().message();
  };
  bad(ParseProfileCsv("layer,client_ms,extra\nconv,1,2\n"), "unknown column 'extra'");
  bad(ParseProfileCsv("layer,client_ms\nconv,1,2\n"), "more cells than the header");
  bad(ParseProfileCsv("layer,client_ms\nconv,1\nconv,2\n"), "duplicate layer");
  bad(ParseProfileCsv("layer,client_ms,client_ms\n"), "column 'client_ms' twice");
  auto bad_r = [](const Result<ServerRegression>& r, const std::string& fragment) {
    ASSERT_FALSE(r.ok()) << fragment;
    EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
  };
  bad_r(ParseRegressionCsv("layer_type,a_ms_per_unit,b_ms\nConvolution,1,2\nConvolution,3,4\n"), "duplicate layer type");
  bad_r(ParseRegressionCsv("layer_type,a_ms_per_unit,b_ms,note\n"), "unknown column 'note'");
  bad_r(ParseRegressionCsv("layer_type,a_ms_per_unit,b_ms\nConvolution,1,2,3\n"), "expected 3 cells");

  Graph g;
  g.name = "commas";
  g.inputs = {{"in", {1, 2, 4, 4}}};
  Layer relu;
  relu.name = "block1,relu \"a\"";
  relu.kind = LayerKind::kRelu;
  relu.inputs = {"in"};
  g.layers = {relu};
  g.outputs = {relu.name};
  ASSERT_TRUE(g.Finalize().ok());
  auto back = ParseProfileCsv(ProfileToCsv(g, {1.5}, {0.25}));
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->order, (std::vector<std::string>{relu.name}));
  EXPECT_DOUBLE_EQ(*back->rows.at(relu.name).client_ms, 1.5);
  EXPECT_DOUBLE_EQ(*back->rows.at(relu.name).server_ms, 0.25);
  ServerRegression r;
  r.by_type["odd,type"] = {1, 2};
  EXPECT_EQ(ParseRegressionCsv(RegressionToCsv(r)).value().by_type, r.by_type);
}

}  // namespace
}  // namespace ionn
