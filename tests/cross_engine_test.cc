// The full-model output of every zoo model against an independent engine:
// OpenCV's DNN module reading the same ONNX file.
#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <onnx/onnx_pb.h>

#include "ionn/engine.h"
#include "ionn/onnx_io.h"
#include "ionn/zoo.h"

namespace ionn {
namespace {

// max |a - b| / max |b|: relative to the tensor's scale, so that values
// near zero do not dominate.
double RelativeError(const std::vector<float>& a, const float* b, size_t n) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return diff / std::max(scale, 1e-30);
}

class CrossEngine : public ::testing::TestWithParam<std::string> {};

TEST_P(CrossEngine, OutputMatchesOpenCvDnn) {
  const std::string name = GetParam();
  auto g = BuildZooModel(name, 11);
  ASSERT_TRUE(g.ok());
  const std::string path = (std::filesystem::temp_directory_path() / ("ionn-cross-" + name + ".onnx")).string();
  ASSERT_TRUE(WriteOnnxFile(*g, path).ok());
  auto reread = ReadOnnxFile(path);
  ASSERT_TRUE(reread.ok()) << reread.status().message();
  {
    // OpenCV 4.6's importer ignores AveragePool's count_include_pad and
    // divides by the padded window only for models whose producer is
    // "pytorch"; its copy of the file says so, to get the ONNX semantics.
    std::ifstream in(path, std::ios::binary);
    onnx::ModelProto m;
    ASSERT_TRUE(m.ParseFromIstream(&in));
    m.set_producer_name("pytorch");
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    ASSERT_TRUE(m.SerializeToOstream(&out));
  }
  auto engine = Engine::Create(*reread);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  const Tensor input = SeededInput(g->inputs[0].shape, 3);

  cv::dnn::Net net = cv::dnn::readNetFromONNX(path);
  std::filesystem::remove(path);
  cv::setNumThreads(1);
  std::vector<int> dims(input.shape.begin(), input.shape.end());
  cv::Mat blob(static_cast<int>(dims.size()), dims.data(), CV_32F, const_cast<float*>(input.data.data()));
  net.setInput(blob, "data");
  // The output and the layer before the final softmax (the logits).
  const std::string output = g->outputs[0];
  const std::string logits = g->layers[g->layers.size() - 2].name;
  std::vector<cv::Mat> theirs;
  net.forward(theirs, std::vector<cv::String>{output, "onnx_node!" + logits});  // OpenCV 4.6 layer naming

  auto ours = (*engine)->Run([&] {
    std::vector<int> all(g->layers.size());
    for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
    return all;
  }(), {{"data", input}}, {output, logits});
  ASSERT_TRUE(ours.ok()) << ours.status().message();
  // The softmax turns an absolute difference d of the logits into a
  // relative one of up to e^(2d) - 1 of its outputs: with seeded weights
  // the logits reach the hundreds, where rounding alone makes d ~1e-4.
  double logit_diff = 0;
  {
    const Tensor& mine = ours->at(logits);
    ASSERT_EQ(theirs[1].total(), mine.data.size()) << logits;
    for (size_t j = 0; j < mine.data.size(); ++j) {
      logit_diff = std::max(logit_diff, std::fabs(double(mine.data[j]) - theirs[1].ptr<float>()[j]));
    }
  }
  for (int i = 0; i < 2; ++i) {
    const std::string& t = i == 0 ? output : logits;
    const Tensor& mine = ours->at(t);
    ASSERT_EQ(theirs[i].total(), mine.data.size()) << t;
    const double err = RelativeError(mine.data, theirs[i].ptr<float>(), mine.data.size());
    const double bound = i == 0 ? std::max(1e-4, 1.05 * std::expm1(2 * logit_diff)) : 1e-4;
    std::printf("%s %s: relative error %.3g (bound %.3g)\n", name.c_str(), t.c_str(), err, bound);
    EXPECT_LT(err, bound) << name << " tensor " << t;
  }
  if (::testing::Test::HasFailure()) {  // name the first layer that differs
    std::vector<std::string> names;
    std::vector<int> all;
    for (size_t k = 0; k < g->layers.size(); ++k) names.push_back(g->layers[k].name), all.push_back(int(k));
    auto every = (*engine)->Run(all, {{"data", input}}, names);
    net.enableFusion(false);  // so that every layer's own output is kept
    for (const auto& n : names) {
      cv::Mat m = net.forward("onnx_node!" + n);
      const Tensor& mine = every->at(n);
      if (m.total() != mine.data.size() || RelativeError(mine.data, m.ptr<float>(), m.total()) > 1e-5) {
        ADD_FAILURE() << "first layer that differs: " << n << " (" << m.total() << " vs " << mine.data.size()
                      << " values, relative error "
                      << (m.total() == mine.data.size() ? RelativeError(mine.data, m.ptr<float>(), m.total()) : -1.0) << ")";
        break;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Zoo, CrossEngine,
                         ::testing::Values("alexnet", "googlenet", "resnet50", "inception_bn", "mobilenet"));

}  // namespace
}  // namespace ionn
