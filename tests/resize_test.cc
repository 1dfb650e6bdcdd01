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
#include "layouts.h"
#include "random_values.h"

namespace ionn {
namespace {

// sh, sw 0: sizes given (no scales).
Layer ResizeLayer(const std::string& mode, const std::string& coordinates, const std::string& nearest, float sh,
                  float sw, int64_t oh, int64_t ow) {
  Layer l;
  l.kind = LayerKind::kResize;
  l.attrs["mode"].text = mode;
  l.attrs["coordinate_transformation_mode"].text = coordinates;
  l.attrs["nearest_mode"].text = nearest;
  if (sh > 0) l.attrs["scales"].floats = {sh, sw};
  l.attrs["sizes"].ints = {oh, ow};
  if (mode == "cubic") l.attrs["cubic_coeff_a"].floats = {-0.75f};
  return l;
}

// As ONNX's reference: with sizes, scale = out / in (double) and the
// resized length out; with scales, the resized length in * scale.
// pytorch_half_pixel at a resized length of 1 maps to 0, as the spec (the
// numpy reference's -0.5 picks the same pixel for nearest and linear).
double ReferenceCoordinate(const Layer& l, int axis, int64_t o, int64_t in, int64_t out) {
  const std::string& mode = l.attrs.at("coordinate_transformation_mode").text;
  const bool scaled = l.attrs.count("scales") != 0;
  const double scale = scaled ? l.attrs.at("scales").floats[axis] : static_cast<double>(out) / in;
  const double resized = scaled ? in * scale : out;
  if (mode == "align_corners") return resized == 1 ? 0.0 : o * static_cast<double>(in - 1) / (resized - 1);
  if (mode == "asymmetric") return o / scale;
  if (mode == "pytorch_half_pixel") return resized == 1 ? 0 : (o + 0.5) / scale - 0.5;
  if (mode == "tf_half_pixel_for_nn") return (o + 0.5) / scale;
  if (mode == "tf_crop_and_resize") {
    const double start = l.attrs.at("roi").floats[axis], end = l.attrs.at("roi").floats[2 + axis];
    return resized > 1 ? start * (in - 1) + o * (end - start) * (in - 1) / (resized - 1) : 0.5 * (start + end) * (in - 1);
  }
  return (o + 0.5) / scale - 0.5;  // half_pixel
}

// The neighbours of `x` (ratio = x - left in (0, 1]: left and left + 1,
// cubic left - 1 ... left + 2) and their coefficients, as the reference.
std::vector<std::pair<int64_t, double>> Neighbours(const Layer& l, double x, int64_t in) {
  const std::string& mode = l.attrs.at("mode").text;
  const std::string& nearest = l.attrs.at("nearest_mode").text;
  const int64_t left = static_cast<int64_t>(std::ceil(x)) - 1;
  const double r = x - left;
  std::vector<std::pair<int64_t, double>> n;
  if (mode == "cubic") {
    const double a = l.attrs.at("cubic_coeff_a").floats[0];
    auto w = [a](double d) {  // the cubic convolution kernel of distance d
      d = std::fabs(d);
      return d <= 1 ? ((a + 2) * d - (a + 3)) * d * d + 1 : ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
    };
    for (int64_t i = left - 1; i <= left + 2; ++i) n.push_back({i, w(x - i)});
  } else if (mode == "linear") {
    n = {{left, 1 - r}, {left + 1, r}};
  } else {
    bool up = r == 1;
    if (!up && nearest == "round_prefer_floor") up = r > 0.5;
    if (!up && nearest == "round_prefer_ceil") up = r >= 0.5;
    if (!up && nearest == "ceil") up = true;
    n = {{left, up ? 0.0 : 1.0}, {left + 1, up ? 1.0 : 0.0}};
  }
  if (l.attrs.count("exclude_outside")) {
    double sum = 0;
    for (auto& [i, c] : n) sum += (c = i < 0 || i >= in ? 0 : c);
    for (auto& [i, c] : n) c /= sum;
  }
  for (auto& [i, c] : n) i = std::min(std::max<int64_t>(i, 0), in - 1);  // the edge repeated
  return n;
}

std::vector<float> ReferenceResize(const Layer& l, const Shape& x, const std::vector<float>& data) {
  const int64_t oh = l.attrs.at("sizes").ints[0], ow = l.attrs.at("sizes").ints[1];
  const int64_t h = x[2], w = x[3];
  const bool crop = l.attrs.count("roi") != 0;
  std::vector<float> out;
  for (int64_t p = 0; p < x[0] * x[1]; ++p) {
    for (int64_t oy = 0; oy < oh; ++oy) {
      const double y = ReferenceCoordinate(l, 0, oy, h, oh);
      for (int64_t ox = 0; ox < ow; ++ox) {
        const double xx = ReferenceCoordinate(l, 1, ox, w, ow);
        if (crop && (y < 0 || y > h - 1 || xx < 0 || xx > w - 1)) {
          out.push_back(l.attrs.at("extrapolation_value").floats[0]);
          continue;
        }
        double v = 0;
        for (const auto& [i, ci] : Neighbours(l, y, h)) {
          for (const auto& [j, cj] : Neighbours(l, xx, w)) v += ci * cj * data[(p * h + i) * w + j];
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

void ExpectMatchesReference(const Layer& l, const Shape& x, std::mt19937& rng, const std::string& what) {
  const Tensor in{x, Random(ElementCount(x), rng)};
  auto got = RunResize(l, x, in);
  ASSERT_TRUE(got.ok()) << what << ": " << got.status().message();
  const int64_t oh = l.attrs.at("sizes").ints[0], ow = l.attrs.at("sizes").ints[1];
  EXPECT_EQ(got->shape, (Shape{x[0], x[1], oh, ow})) << what;
  const std::vector<float> want = ReferenceResize(l, x, in.data);
  ASSERT_EQ(got->data.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got->data[i], want[i], 1e-5) << what << " at " << i;
}

TEST(ResizeKernel, MatchesTheOnnxReferenceInEveryMode) {
  std::mt19937 rng(77);
  const std::vector<std::string> coordinate_modes = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                                     "tf_half_pixel_for_nn"};
  const std::vector<std::string> nearest_modes = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  // A scale, or 0 and a size (sizes given: ratios such as 10 -> 4, 6 -> 5, 7 -> 10).
  const std::vector<std::pair<float, int64_t>> axes = {{2, 0},  {1.5f, 0}, {0.5f, 0}, {0.6f, 0}, {3, 0},
                                                       {0, 1},  {0, 9},    {0, 4},    {0, 5},    {0, 10}};
  int cases = 0;
  for (const auto& coordinates : coordinate_modes) {
    for (const std::string mode : {"linear", "nearest", "cubic"}) {
      for (const auto& nearest : mode == "nearest" ? nearest_modes : std::vector<std::string>{"round_prefer_floor"}) {
        for (size_t a = 0; a < axes.size(); ++a) {
          for (bool exclude_outside : {false, true}) {
            if (exclude_outside && mode == "nearest") continue;
            const Shape x = {1 + int64_t(rng() % 2), 1 + int64_t(rng() % 3), 2 + int64_t(rng() % 9),
                             2 + int64_t(rng() % 9)};
            auto [hs, hsize] = axes[a];
            auto [ws, wsize] = axes[(a + 3) % axes.size()];
            if (hs > 0 && ws == 0) ws = 1.25f;                        // scales for both axes,
            if (hs == 0 && ws > 0) ws = 0, wsize = 1 + x[3] / 2;      // or sizes
            const int64_t oh = hs > 0 ? static_cast<int64_t>(std::floor(x[2] * double(hs))) : hsize;
            const int64_t ow = ws > 0 ? static_cast<int64_t>(std::floor(x[3] * double(ws))) : wsize;
            if (oh < 1 || ow < 1) continue;
            Layer l = ResizeLayer(mode, coordinates, nearest, hs, ws, oh, ow);
            if (exclude_outside) l.attrs["exclude_outside"].ints = {1};
            ExpectMatchesReference(l, x, rng,
                                   mode + " " + coordinates + " " + nearest + (exclude_outside ? " exclude" : "") +
                                       " " + ShapeToString(x) + " -> " + std::to_string(oh) + "x" + std::to_string(ow));
            ++cases;
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 300);
}

TEST(ResizeKernel, CropsAndExtrapolatesAsTheReference) {
  std::mt19937 rng(79);
  for (const std::string mode : {"linear", "nearest", "cubic"}) {
    for (const std::vector<float>& roi : {std::vector<float>{0, 0, 1, 1}, {0.4f, 0.6f, 0.6f, 0.8f},
                                          {-0.2f, 0.3f, 1.2f, 1.7f}, {0.5f, 0.5f, 0.5f, 0.5f}}) {
      for (const Shape& out : {Shape{3, 3}, Shape{1, 5}, Shape{7, 2}}) {
        Layer l = ResizeLayer(mode, "tf_crop_and_resize", "round_prefer_ceil", 0, 0, out[0], out[1]);
        l.attrs["roi"].floats = roi;
        l.attrs["extrapolation_value"].floats = {10};
        ExpectMatchesReference(l, {1, 2, 5, 4}, rng, mode + " roi " + std::to_string(roi[0]) + " -> " + ShapeToString(out));
      }
    }
  }
}

TEST(ResizeKernel, RunsChannelsLastBetweenConvolutionsWithThePlainBits) {
  for (const std::string mode : {"linear", "nearest"}) {
    ExpectLayoutsAgreeBetweenConvolutions(ResizeLayer(mode, "half_pixel", "round_prefer_floor", 2, 1.5f, 18, 10), 5, 8,
                                          1, 78, 1, mode);
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
  refused(l, "extrapolation_value is missing");
  l.attrs["extrapolation_value"].floats = {0};
  refused(l, "roi goes with tf_crop_and_resize");
  l.attrs["roi"].floats = {0, 0, 1, 1};
  refused(l, "goes with sizes, not scales");
  l.attrs.erase("scales");
  Shape crop_out;
  EXPECT_TRUE(FindOp(LayerKind::kResize)->infer_shape(l, {&x}, &crop_out).ok());
  l.attrs["roi"].floats = {0, 0, 1};
  refused(l, "4 values");
  l.attrs["roi"].floats = {0, 0, 1, INFINITY};
  refused(l, "not within 1e6");
  l = good, l.attrs["mode"].text = "cubic", l.attrs["cubic_coeff_a"].floats = {NAN};
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
  refused(l, "size 0");
  l = good, l.attrs["scales"].floats = {2, 1.5f};
  refused(l, "not size 8");  // scales that do not give the sizes
  l = good, l.attrs["scales"].floats = {1e-30f, 2};
  refused(l, "scale");
  l = good, l.attrs.erase("scales"), l.attrs["sizes"].ints = {1 << 20, 1 << 20};
  refused(l, "too large");
  l = good, l.attrs["mode"].text = "cubic";
  refused(l, "cubic_coeff_a is missing");
  l = good, l.attrs["extrapolation_value"].floats = {1};
  refused(l, "extrapolation_value is given where it has no meaning");
  l = good, l.attrs["colour"].text = "red";
  refused(l, "unknown attribute 'colour'");
  l = good, l.attrs.erase("nearest_mode");
  refused(l, "missing attribute 'nearest_mode'");
  l = good, l.weights = {{"w", {1}, {1}}};
  refused(l, "weights");
}

}  // namespace
}  // namespace ionn
