// Resize's kernel against a reference written from ONNX's own numpy
// reference (onnx/backend/test/case/node/resize.py: the two neighbours of a
// coordinate with the ratio in (0, 1], the input edge-padded, coefficients
// per mode), on seeded shapes, every coordinate and nearest mode, up and
// down; and in NHWC between convolutions, bit for bit the plain result.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ionn/engine.h"
#include "ionn/op.h"
#include "random_values.h"

namespace ionn {
namespace {

Layer ResizeLayer(const std::string& mode, const std::string& coordinates, const std::string& nearest, float sh,
                  float sw, int64_t oh, int64_t ow) {
  Layer l;
  l.kind = LayerKind::kResize;
  l.attrs["mode"].text = mode;
  l.attrs["coordinate_transformation_mode"].text = coordinates;
  l.attrs["nearest_mode"].text = nearest;
  l.attrs["scales"].floats = {sh, sw};
  l.attrs["sizes"].ints = {oh, ow};
  return l;
}

// As ONNX's reference, the resized length is in * scale (not rounded).
double ReferenceCoordinate(const std::string& mode, int64_t o, int64_t in, double scale) {
  const double out = in * scale;
  if (mode == "align_corners") return out == 1 ? 0.0 : o * static_cast<double>(in - 1) / (out - 1);
  if (mode == "asymmetric") return o / scale;
  if (mode == "pytorch_half_pixel") return out == 1 ? -0.5 : (o + 0.5) / scale - 0.5;
  if (mode == "tf_half_pixel_for_nn") return (o + 0.5) / scale;
  return (o + 0.5) / scale - 0.5;  // half_pixel
}

// The neighbours left and left + 1 of `x` (ratio = x - left in (0, 1]) and
// their coefficients, as the ONNX reference.
void Coefficients(const std::string& mode, const std::string& nearest, double x, int64_t* left, double c[2]) {
  *left = static_cast<int64_t>(std::ceil(x)) - 1;
  const double ratio = x - *left;
  if (mode == "linear") {
    c[0] = 1 - ratio, c[1] = ratio;
  } else if (ratio == 1) {
    c[0] = 0, c[1] = 1;
  } else if (nearest == "round_prefer_floor") {
    c[0] = ratio <= 0.5, c[1] = ratio > 0.5;
  } else if (nearest == "round_prefer_ceil") {
    c[0] = ratio < 0.5, c[1] = ratio >= 0.5;
  } else if (nearest == "floor") {
    c[0] = 1, c[1] = 0;
  } else {
    c[0] = 0, c[1] = 1;
  }
}

std::vector<float> ReferenceResize(const Layer& l, const Shape& x, const std::vector<float>& data) {
  const std::string& mode = l.attrs.at("mode").text;
  const std::string& coordinates = l.attrs.at("coordinate_transformation_mode").text;
  const std::string& nearest = l.attrs.at("nearest_mode").text;
  const int64_t oh = l.attrs.at("sizes").ints[0], ow = l.attrs.at("sizes").ints[1];
  const int64_t h = x[2], w = x[3];
  auto clamp = [](int64_t i, int64_t n) { return std::min(std::max<int64_t>(i, 0), n - 1); };
  std::vector<float> out;
  for (int64_t p = 0; p < x[0] * x[1]; ++p) {
    for (int64_t oy = 0; oy < oh; ++oy) {
      int64_t top;
      double cy[2];
      Coefficients(mode, nearest, ReferenceCoordinate(coordinates, oy, h, l.attrs.at("scales").floats[0]), &top, cy);
      for (int64_t ox = 0; ox < ow; ++ox) {
        int64_t left;
        double cx[2];
        Coefficients(mode, nearest, ReferenceCoordinate(coordinates, ox, w, l.attrs.at("scales").floats[1]), &left,
                     cx);
        double v = 0;
        for (int i = 0; i < 2; ++i) {
          for (int j = 0; j < 2; ++j) {
            v += cy[i] * cx[j] * data[(p * h + clamp(top + i, h)) * w + clamp(left + j, w)];
          }
        }
        out.push_back(static_cast<float>(v));
      }
    }
  }
  return out;
}

Result<Tensor> RunResize(const Layer& resize, const Shape& x, const Tensor& input) {
  Graph g;
  g.inputs = {{"x", x}};
  Layer l = resize;
  l.name = "y", l.inputs = {"x"};
  g.layers = {l};
  g.outputs = {"y"};
  IONN_RETURN_IF_ERROR(g.Finalize());
  IONN_ASSIGN_OR_RETURN(auto engine, Engine::Create(g));
  IONN_ASSIGN_OR_RETURN(TensorMap out, engine->RunAll({{"x", input}}));
  return out.at("y");
}

TEST(ResizeKernel, MatchesTheOnnxReferenceInEveryMode) {
  std::mt19937 rng(77);
  const std::vector<std::string> coordinate_modes = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                                     "tf_half_pixel_for_nn"};
  const std::vector<std::string> nearest_modes = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  // scale, or 0: sizes given (scale = out / in as float32)
  const std::vector<std::pair<float, int64_t>> axes = {{2, 0}, {1.5f, 0}, {0.5f, 0}, {0.6f, 0}, {3, 0}, {0, 1}, {0, 9}};
  int cases = 0;
  for (const auto& coordinates : coordinate_modes) {
    for (const std::string mode : {"linear", "nearest"}) {
      for (const auto& nearest : mode == "linear" ? std::vector<std::string>{"round_prefer_floor"} : nearest_modes) {
        for (size_t a = 0; a < axes.size(); ++a) {
          const Shape x = {1 + int64_t(rng() % 2), 1 + int64_t(rng() % 3), 2 + int64_t(rng() % 7), 2 + int64_t(rng() % 7)};
          const auto& [hs, hsize] = axes[a];
          const auto& [ws, wsize] = axes[(a + 3) % axes.size()];
          const int64_t oh = hs > 0 ? static_cast<int64_t>(std::floor(x[2] * double(hs))) : hsize;
          const int64_t ow = ws > 0 ? static_cast<int64_t>(std::floor(x[3] * double(ws))) : wsize;
          if (oh < 1 || ow < 1) continue;
          const float sh = hs > 0 ? hs : float(oh) / float(x[2]), sw = ws > 0 ? ws : float(ow) / float(x[3]);
          const Layer l = ResizeLayer(mode, coordinates, nearest, sh, sw, oh, ow);
          const Tensor in{x, Random(ElementCount(x), rng)};
          auto got = RunResize(l, x, in);
          const std::string what = mode + " " + coordinates + " " + nearest + " " + ShapeToString(x) + " -> " +
                                   std::to_string(oh) + "x" + std::to_string(ow);
          ASSERT_TRUE(got.ok()) << what << ": " << got.status().message();
          EXPECT_EQ(got->shape, (Shape{x[0], x[1], oh, ow})) << what;
          const std::vector<float> want = ReferenceResize(l, x, in.data);
          ASSERT_EQ(got->data.size(), want.size()) << what;
          for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got->data[i], want[i], 1e-5) << what << " at " << i;
          ++cases;
        }
      }
    }
  }
  EXPECT_GT(cases, 150);
}

TEST(ResizeKernel, RunsChannelsLastBetweenConvolutionsWithThePlainBits) {
  std::mt19937 rng(78);
  for (const std::string mode : {"linear", "nearest"}) {
    Graph g;
    const Shape x = {1, 5, 9, 7};
    g.inputs = {{"x", x}};
    auto conv = [&](const std::string& name, const std::string& in, int ic, int oc) {
      Layer l;
      l.kind = LayerKind::kConv, l.out_channels = oc, l.kernel_h = l.kernel_w = 1, l.name = name, l.inputs = {in};
      l.weights = {{"w", {oc, ic, 1, 1}, Random(int64_t(oc) * ic, rng)}, {"b", {oc}, Random(oc, rng)}};
      g.layers.push_back(l);
    };
    conv("c1", "x", 5, 8);
    Layer up = ResizeLayer(mode, "half_pixel", "round_prefer_floor", 2, 1.5f, 18, 10);
    up.name = "up", up.inputs = {"c1"};
    g.layers.push_back(up);
    conv("c2", "up", 8, 3);
    g.outputs = {"c2"};
    ASSERT_TRUE(g.Finalize().ok());
    auto blocked = Engine::Create(g, EngineOptions{1, true, true});
    auto plain = Engine::Create(g, EngineOptions{1, true, false});
    ASSERT_TRUE(blocked.ok() && plain.ok());
    auto run = (*blocked)->Prepare({0, 1, 2}, g.outputs);
    ASSERT_TRUE(run.ok());
    const TensorMap in = {{"x", SeededInput(x, 9)}};
    auto a = (*blocked)->Execute(**run, in);
    auto b = (*plain)->RunAll(in);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->at("c2").data, b->at("c2").data) << mode;
    EXPECT_EQ((*run)->channels_last_kernels(), 1) << mode;
  }
}

TEST(ResizeShape, RefusesBadAttributes) {
  const Shape x = {1, 2, 4, 4};
  auto refused = [&](Layer l, const std::string& fragment) {
    Shape out;
    const OpDescriptor* op = FindOp(LayerKind::kResize);
    ASSERT_NE(op, nullptr);
    Status s = op->infer_shape(l, {&x}, &out);
    ASSERT_FALSE(s.ok()) << fragment;
    EXPECT_NE(s.message().find(fragment), std::string::npos) << s.message();
  };
  const Layer good = ResizeLayer("linear", "half_pixel", "floor", 2, 2, 8, 8);
  Shape out;
  ASSERT_TRUE(FindOp(LayerKind::kResize)->infer_shape(good, {&x}, &out).ok());
  EXPECT_EQ(out, (Shape{1, 2, 8, 8}));
  Layer l = good;
  l.attrs["mode"].text = "area";
  refused(l, "mode");
  l = good, l.attrs["coordinate_transformation_mode"].text = "tf_crop_and_resize";
  refused(l, "roi goes with tf_crop_and_resize");
  l.attrs["roi"].floats = {0, 0, 1};
  refused(l, "4 values");
  l.attrs["roi"].floats = {0, 0, 1, INFINITY};
  refused(l, "finite");
  l = good, l.attrs["cubic_coeff_a"].floats = {NAN};
  refused(l, "cubic_coeff_a");
  l = good, l.attrs["exclude_outside"].ints = {2};
  refused(l, "exclude_outside");
  l = good, l.attrs["scales"].floats = {0, 2};
  refused(l, "scale");
  l = good, l.attrs["scales"].floats = {NAN, 2};
  refused(l, "scale");
  l = good, l.attrs["scales"].floats = {1e9f, 2};
  refused(l, "scale");
  l = good, l.attrs["sizes"].ints = {8};
  refused(l, "2 values");
  l = good, l.attrs["sizes"].ints = {0, 8};
  refused(l, "sizes");
  l = good, l.attrs["sizes"].ints = {1 << 20, 1 << 20};
  refused(l, "too large");
  l = good, l.attrs["colour"].text = "red";
  refused(l, "unknown attribute 'colour'");
  l = good, l.attrs.erase("nearest_mode");
  refused(l, "missing attribute 'nearest_mode'");
  l = good, l.weights = {{"w", {1}, {1}}};
  refused(l, "weights");
}

}  // namespace
}  // namespace ionn
