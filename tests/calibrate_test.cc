#include "ionn/calibrate.h"

#include <gtest/gtest.h>

#include <set>

namespace ionn {
namespace {

// Times vary from run to run: the test checks what was measured and fitted,
// never how fast.
TEST(CalibrateServer, QuickRunMeasuresEveryTypeAndFitsIt) {
  CalibrationOptions o;
  o.quick = true;
  o.warmup = 0;
  o.repeats = 1;
  std::vector<CalibrationStep> steps;
  auto c = CalibrateServer(o, [&](const CalibrationStep& s) { steps.push_back(s); });
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_FALSE(steps.empty());
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i].index, static_cast<int>(i));
    EXPECT_EQ(steps[i].total, static_cast<int>(steps.size()));
    EXPECT_GT(steps[i].x, 0) << steps[i].type;
    EXPECT_GE(steps[i].median_ms, 0) << steps[i].type;
  }
  // Every layer kind's type is measured and fitted (a new kind's descriptor
  // brings its calibration layers).
  std::set<std::string> every_type;
#define IONN_KIND_TYPE(e, onnx, caffe) every_type.insert(caffe);
  IONN_LAYER_KINDS(IONN_KIND_TYPE)
#undef IONN_KIND_TYPE
  const std::vector<std::string> types(every_type.begin(), every_type.end());
  std::vector<std::string> fitted;
  size_t samples = 0;
  for (const auto& [type, stats] : c->fit.stats) {
    fitted.push_back(type);
    EXPECT_EQ(stats.samples, static_cast<int>(c->samples.at(type).size())) << type;
    EXPECT_GE(stats.r_squared, 0) << type;
    EXPECT_LE(stats.r_squared, 1 + 1e-9) << type;
    EXPECT_EQ(c->fit.regression.by_type.count(type), 1u) << type;
    samples += stats.samples;
  }
  EXPECT_EQ(fitted, types);
  EXPECT_EQ(samples, steps.size());
}

}  // namespace
}  // namespace ionn
