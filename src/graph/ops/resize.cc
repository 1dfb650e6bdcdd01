// Resize (opset 10 on) and Upsample (opsets 7 to 9) of the H and W axes of a
// 4-D NCHW tensor: nearest, linear or cubic, each coordinate_transformation_mode
// and nearest_mode of opsets 11 to 18 (tf_crop_and_resize with sizes, not
// scales), exclude_outside; antialiasing and aspect-ratio policies are
// refused. Attributes:
//   mode: "nearest", "linear" or "cubic"
//   coordinate_transformation_mode: "half_pixel", "pytorch_half_pixel",
//     "align_corners", "asymmetric", "tf_half_pixel_for_nn" or
//     "tf_crop_and_resize"
//   nearest_mode: "round_prefer_floor", "round_prefer_ceil", "floor", "ceil"
//   sizes: [out_h, out_w]
//   scales: [scale_h, scale_w], only where the file gave scales: then
//     out = floor(in * scale), and coordinates map with the scale and a
//     resized length of in * scale, unrounded (ONNX's reference; the
//     maintainers' intent in onnx/onnx#2462). Without them the scale is
//     out / in and the resized length out.
//   cubic_coeff_a: [a] (cubic only, always written)
//   exclude_outside: [1] (absent: 0)
//   roi: [h_start, w_start, h_end, w_end] and extrapolation_value: [v]
//     (tf_crop_and_resize only, both written)
// Output [N, C, out_h, out_w]. Output pixel o reads input coordinate x(o)
// (per mode, e.g. half_pixel: (o + 0.5) / scale - 0.5; pytorch_half_pixel
// with a resized length of 1: 0, as the spec and ONNX Runtime, where ONNX's
// numpy reference writes -0.5: nearest and linear agree, cubic differs),
// from the two (four, cubic) pixels around it with the edge repeated,
// weighted as ONNX's reference.
#include <cmath>
#include <set>

#include "ionn/op.h"
#include "onnx_node.h"

namespace ionn {
namespace {

constexpr int64_t kMaxSide = int64_t{1} << 20;
const std::set<std::string> kModes = {"nearest", "linear", "cubic"};
const std::set<std::string> kCoordinateModes = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                                "tf_half_pixel_for_nn", "tf_crop_and_resize"};
const std::set<std::string> kNearestModes = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};

std::string Listed(const std::set<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::string Number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

Status CheckScale(double s, const char* axis) {
  if (!std::isfinite(s) || s <= 0 || s > 1e4) {
    return Status::Invalid(std::string("scale ") + Number(s) + " of axis " + axis + " is not in (0, 10000]");
  }
  return Status::Ok();
}

// The per-axis scales and sizes of axes N, C, H, W from the node's scales
// or sizes (with opset 18's axes, also the order of roi's values), and
// whether they came from sizes.
Status ReadScalesOrSizes(OnnxNodeReader& node, const Shape& x, bool upsample, std::vector<double>* scales,
                         std::vector<int64_t>* sizes, std::vector<int64_t>* axes_out, bool* from_sizes_out) {
  const int rank = static_cast<int>(x.size());
  const int opset = node.opset();
  std::vector<int64_t> axes;
  for (int d = 0; d < rank; ++d) axes.push_back(d);
  if (!upsample && opset >= 18 && node.HasAttr("axes")) {
    IONN_ASSIGN_OR_RETURN(std::vector<int64_t> given, node.Ints("axes", {}));
    std::set<int64_t> seen;
    axes.clear();
    for (int64_t a : given) {
      if (a < -rank || a >= rank) return Status::Invalid("axis " + std::to_string(a) + " is out of range");
      if (a < 0) a += rank;
      if (!seen.insert(a).second) return Status::Invalid("axes lists axis " + std::to_string(a) + " twice");
      axes.push_back(a);
    }
  }
  scales->assign(rank, 1.0);
  sizes->assign(x.begin(), x.end());
  std::vector<double> values;
  bool from_sizes = false;
  if (upsample && opset < 9) {
    if (!node.HasAttr("scales")) return Status::Invalid("Upsample needs the attribute 'scales'");
    IONN_ASSIGN_OR_RETURN(std::vector<float> f, node.Floats("scales", {}));
    values.assign(f.begin(), f.end());
  } else {
    const int scales_input = opset >= 11 && !upsample ? 2 : 1;
    const int sizes_input = 3;
    const bool has_sizes = !upsample && opset >= 11 && node.HasInput(sizes_input);
    Shape dims;
    if (node.HasInput(scales_input)) {
      if (!node.Known(scales_input)) return Status::Unsupported("scales must be known at import");
      IONN_ASSIGN_OR_RETURN(values, node.KnownValues(scales_input, &dims));
    }
    if (has_sizes) {
      if (!values.empty()) return Status::Invalid("both scales and sizes are given (one of them must be empty)");
      if (!node.Known(sizes_input)) return Status::Unsupported("sizes must be known at import");
      IONN_ASSIGN_OR_RETURN(values, node.KnownValues(sizes_input, &dims));
      from_sizes = true;
    }
    if (values.empty()) return Status::Invalid("neither scales nor sizes is given");
    if (dims.size() > 1) return Status::Invalid(std::string(from_sizes ? "sizes" : "scales") + " must be 1-D");
  }
  if (values.size() != axes.size()) {
    return Status::Invalid(std::string(from_sizes ? "sizes" : "scales") + " has " + std::to_string(values.size()) +
                           " values for " + std::to_string(axes.size()) + " axes");
  }
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t d = axes[i];
    const double v = values[i];
    if (from_sizes) {
      if (!(v >= 1 && v <= kMaxSide) || v != std::floor(v)) {
        return Status::Invalid("size " + std::to_string(v) + " of axis " + std::to_string(d) + " is not in [1, 2^20]");
      }
      (*sizes)[d] = static_cast<int64_t>(v);
      (*scales)[d] = v / static_cast<double>(x[d]);
    } else {
      IONN_RETURN_IF_ERROR(CheckScale(v, std::to_string(d).c_str()));
      const double scale = static_cast<float>(v);  // the file's float32
      if ((d == 0 || d == 1) && scale != 1) {
        return Status::Unsupported("Resize of the batch or channel axis (scale " + Number(v) + " of axis " +
                                   std::to_string(d) + ")");
      }
      (*scales)[d] = scale;
      const double out = std::floor(static_cast<double>(x[d]) * scale);
      if (out < 1 || out > kMaxSide) {
        return Status::Invalid("scale " + std::to_string(v) + " makes axis " + std::to_string(d) + " of size " +
                               std::to_string(x[d]) + " " + std::to_string(static_cast<int64_t>(out)) +
                               " long (must be 1 to 2^20)");
      }
      (*sizes)[d] = static_cast<int64_t>(out);
    }
  }
  *axes_out = axes;
  *from_sizes_out = from_sizes;
  return Status::Ok();
}

Status Import(OnnxNodeReader& node, Layer* l) {
  const bool upsample = node.op_type() == "Upsample";
  const int opset = node.opset();
  IONN_RETURN_IF_ERROR(node.AddInput(0));
  IONN_ASSIGN_OR_RETURN(Shape x, node.InputShape(0));
  if (x.size() != 4) return Status::Unsupported("Resize of a " + ShapeToString(x) + " input (only 4-D NCHW)");
  IONN_ASSIGN_OR_RETURN(std::string mode, node.String("mode", "nearest"));
  if (mode == "bilinear" && upsample) mode = "linear";  // Upsample-7's name for it
  if (!kModes.count(mode) || (mode == "cubic" && (upsample || opset < 11))) {
    return Status::Invalid("mode '" + mode.substr(0, 32) + "' is not nearest or linear" +
                           (upsample || opset < 11 ? "" : " or cubic"));
  }
  std::string coordinates = "asymmetric", nearest = "floor";  // Upsample and Resize-10
  if (!upsample && opset >= 11) {
    IONN_ASSIGN_OR_RETURN(coordinates, node.String("coordinate_transformation_mode", "half_pixel"));
    IONN_ASSIGN_OR_RETURN(nearest, node.String("nearest_mode", "round_prefer_floor"));
    if (!kCoordinateModes.count(coordinates)) {
      return Status::Invalid("coordinate_transformation_mode '" + coordinates.substr(0, 32) + "' is not one of " +
                             Listed(kCoordinateModes));
    }
    if (!kNearestModes.count(nearest)) {
      return Status::Invalid("nearest_mode '" + nearest.substr(0, 32) + "' is not one of " + Listed(kNearestModes));
    }
    IONN_ASSIGN_OR_RETURN(int64_t exclude_outside, node.Int("exclude_outside", 0));
    if (exclude_outside != 0 && exclude_outside != 1) return Status::Invalid("exclude_outside must be 0 or 1");
    if (exclude_outside) l->attrs["exclude_outside"].ints = {1};
    if (mode == "cubic") {
      IONN_ASSIGN_OR_RETURN(float a, node.Float("cubic_coeff_a", -0.75f));
      l->attrs["cubic_coeff_a"].floats = {a};
    }
    if (coordinates == "tf_crop_and_resize") {
      IONN_ASSIGN_OR_RETURN(float extrapolation, node.Float("extrapolation_value", 0.0f));
      l->attrs["extrapolation_value"].floats = {extrapolation};
    }
    IONN_ASSIGN_OR_RETURN(int64_t antialias, node.Int("antialias", 0));
    if (antialias != 0) return Status::Unsupported("antialias=" + std::to_string(antialias));
    IONN_ASSIGN_OR_RETURN(std::string policy, node.String("keep_aspect_ratio_policy", "stretch"));
    if (policy != "stretch") return Status::Unsupported("keep_aspect_ratio_policy '" + policy.substr(0, 32) + "'");
  }
  std::vector<double> scales;
  std::vector<int64_t> sizes, axes;
  bool from_sizes = false;
  IONN_RETURN_IF_ERROR(ReadScalesOrSizes(node, x, upsample, &scales, &sizes, &axes, &from_sizes));
  if (sizes[0] != x[0] || sizes[1] != x[1]) {
    return Status::Unsupported("Resize of the batch or channel axis (output " + ShapeToString(sizes) + " of input " +
                               ShapeToString(x) + ")");
  }
  if (mode == "nearest" && coordinates == "asymmetric" && nearest == "floor" && (upsample || opset < 11) &&
      (scales[2] < 1 || scales[3] < 1)) {  // runtimes disagree on the rounding of these
    return Status::Unsupported("nearest downsampling (a scale below 1) at opset " + std::to_string(opset));
  }
  if (coordinates == "tf_crop_and_resize") {
    if (!from_sizes) return Status::Unsupported("tf_crop_and_resize with scales (give sizes)");
    if (!node.Known(1)) return Status::Invalid("tf_crop_and_resize needs roi, known at import");
    Shape dims;
    IONN_ASSIGN_OR_RETURN(std::vector<double> roi, node.KnownValues(1, &dims));
    if (roi.size() != 2 * axes.size()) {
      return Status::Invalid("roi has " + std::to_string(roi.size()) + " values, expects " +
                             std::to_string(2 * axes.size()));
    }
    std::vector<double> start(x.size(), 0), end(x.size(), 1);  // axes not listed: the whole axis
    for (size_t i = 0; i < axes.size(); ++i) start[axes[i]] = roi[i], end[axes[i]] = roi[axes.size() + i];
    if (start[0] != 0 || start[1] != 0 || end[0] != 1 || end[1] != 1) {
      return Status::Unsupported("a roi that crops the batch or channel axis");
    }
    l->attrs["roi"].floats = {static_cast<float>(start[2]), static_cast<float>(start[3]), static_cast<float>(end[2]),
                              static_cast<float>(end[3])};
  }
  l->attrs["mode"].text = mode;
  l->attrs["coordinate_transformation_mode"].text = coordinates;
  l->attrs["nearest_mode"].text = nearest;
  if (!from_sizes) l->attrs["scales"].floats = {static_cast<float>(scales[2]), static_cast<float>(scales[3])};
  l->attrs["sizes"].ints = {sizes[2], sizes[3]};
  return Status::Ok();
}

Status InferShape(const Layer& l, const std::vector<const Shape*>& in, Shape* out) {
  IONN_RETURN_IF_ERROR(CheckAttrNames(l, {"mode", "coordinate_transformation_mode", "nearest_mode", "scales", "sizes",
                                          "cubic_coeff_a", "exclude_outside", "roi", "extrapolation_value"}));
  if (in.size() != 1) return Status::Invalid("expects 1 input, got " + std::to_string(in.size()));
  if (!l.weights.empty()) return Status::Invalid("takes no weights");
  const Shape& x = *in[0];
  if (x.size() != 4) return Status::Invalid("input must be 4-D NCHW, got " + ShapeToString(x));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* mode, RequiredAttr(l, "mode"));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* coordinates, RequiredAttr(l, "coordinate_transformation_mode"));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* nearest, RequiredAttr(l, "nearest_mode"));
  IONN_ASSIGN_OR_RETURN(const LayerAttr* sizes, RequiredAttr(l, "sizes"));
  if (!kModes.count(mode->text)) {
    return Status::Invalid("mode '" + mode->text.substr(0, 32) + "' is not one of " + Listed(kModes));
  }
  if (!kCoordinateModes.count(coordinates->text)) {
    return Status::Invalid("coordinate_transformation_mode '" + coordinates->text.substr(0, 32) + "' is not one of " +
                           Listed(kCoordinateModes));
  }
  if (!kNearestModes.count(nearest->text)) {
    return Status::Invalid("nearest_mode '" + nearest->text.substr(0, 32) + "' is not one of " + Listed(kNearestModes));
  }
  const bool cubic = mode->text == "cubic", crop = coordinates->text == "tf_crop_and_resize";
  auto one_finite = [&](const char* name, bool wanted) -> Status {
    auto it = l.attrs.find(name);
    if ((it != l.attrs.end()) != wanted) {
      return Status::Invalid(std::string(name) + (wanted ? " is missing" : " is given where it has no meaning"));
    }
    if (wanted && (it->second.floats.size() != 1 || !std::isfinite(it->second.floats[0]))) {
      return Status::Invalid(std::string(name) + " must be one finite value");
    }
    return Status::Ok();
  };
  IONN_RETURN_IF_ERROR(one_finite("cubic_coeff_a", cubic));
  IONN_RETURN_IF_ERROR(one_finite("extrapolation_value", crop));
  if (l.attrs.count("exclude_outside") && l.attrs.at("exclude_outside").ints != std::vector<int64_t>{1}) {
    return Status::Invalid("exclude_outside must be [1] when given");
  }
  if (crop != (l.attrs.count("roi") != 0)) return Status::Invalid("roi goes with tf_crop_and_resize, and only with it");
  if (crop) {
    const std::vector<float>& roi = l.attrs.at("roi").floats;
    if (roi.size() != 4) return Status::Invalid("roi must hold 4 values (H and W starts and ends)");
    for (float v : roi) {
      if (!std::isfinite(v) || std::fabs(v) > 1e6f) return Status::Invalid("roi value " + Number(v) + " is not within 1e6");
    }
    if (l.attrs.count("scales")) return Status::Invalid("tf_crop_and_resize goes with sizes, not scales");
  }
  if (sizes->ints.size() != 2) return Status::Invalid("sizes must hold 2 values (H and W)");
  for (int i = 0; i < 2; ++i) {
    if (sizes->ints[i] < 1 || sizes->ints[i] > kMaxSide) {
      return Status::Invalid("size " + std::to_string(sizes->ints[i]) + " of axis " + std::to_string(2 + i) +
                             " is not in [1, 2^20]");
    }
  }
  if (auto it = l.attrs.find("scales"); it != l.attrs.end()) {  // they must give the sizes
    if (it->second.floats.size() != 2) return Status::Invalid("scales must hold 2 values (H and W)");
    for (int i = 0; i < 2; ++i) {
      const double scale = it->second.floats[i];
      IONN_RETURN_IF_ERROR(CheckScale(scale, i == 0 ? "2" : "3"));
      if (std::floor(static_cast<double>(x[2 + i]) * scale) != static_cast<double>(sizes->ints[i])) {
        return Status::Invalid("scale " + Number(scale) + " of axis " + std::to_string(2 + i) + " makes " +
                               std::to_string(x[2 + i]) + " pixels " +
                               Number(std::floor(static_cast<double>(x[2 + i]) * scale)) + ", not size " +
                               std::to_string(sizes->ints[i]));
      }
    }
  }
  *out = {x[0], x[1], sizes->ints[0], sizes->ints[1]};
  if (ElementCount(*out) <= 0) return Status::Invalid("output shape " + ShapeToString(*out) + " is too large");
  return Status::Ok();
}

Status Export(const Layer& l, OnnxNodeWriter& node) {
  const LayerAttrs& a = l.attrs;
  node.SetString("mode", a.at("mode").text);
  node.SetString("coordinate_transformation_mode", a.at("coordinate_transformation_mode").text);
  node.SetString("nearest_mode", a.at("nearest_mode").text);
  const std::vector<int64_t>& sizes = a.at("sizes").ints;
  const Shape& x = node.InputShape(0);
  if (a.count("cubic_coeff_a")) node.SetFloat("cubic_coeff_a", a.at("cubic_coeff_a").floats[0]);
  if (a.count("exclude_outside")) node.SetInt("exclude_outside", 1);
  if (a.count("extrapolation_value")) node.SetFloat("extrapolation_value", a.at("extrapolation_value").floats[0]);
  if (a.count("roi")) {
    const std::vector<float>& r = a.at("roi").floats;
    node.AddFloatsInput({0, 0, r[0], r[1], 1, 1, r[2], r[3]});
  } else {
    node.AddFloatsInput({});  // roi
  }
  if (a.count("scales")) {
    node.AddFloatsInput({1, 1, a.at("scales").floats[0], a.at("scales").floats[1]});
  } else {
    node.AddFloatsInput({});
    node.AddIntsInput({x[0], x[1], sizes[0], sizes[1]});
  }
  return Status::Ok();
}

double RegressionX(const Layer& l, const std::vector<const Shape*>&) {
  const std::string& mode = l.attrs.at("mode").text;
  return static_cast<double>(ElementCount(l.output_shape)) * (mode == "cubic" ? 16 : mode == "linear" ? 4 : 1);
}

std::vector<CalibrationCase> Calibration(int channels, int hw) {
  std::vector<CalibrationCase> cases;
  for (const char* mode : {"linear", "nearest"}) {
    CalibrationCase c;
    c.layer.kind = LayerKind::kResize;
    c.layer.attrs["mode"].text = mode;
    c.layer.attrs["coordinate_transformation_mode"].text = "half_pixel";
    c.layer.attrs["nearest_mode"].text = "round_prefer_floor";
    c.layer.attrs["scales"].floats = {2, 2};
    c.layer.attrs["sizes"].ints = {2 * hw, 2 * hw};
    c.inputs = {{1, channels, hw, hw}};
    cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace

extern const OpDescriptor kResizeOp;
const OpDescriptor kResizeOp = {
    LayerKind::kResize,
    {
        {"Upsample", 7, 1, 1, 1, 1},  // scales: an attribute
        {"Upsample", 9, 2, 2, 1, 1},  // scales: an input
        {"Resize", 10, 2, 2, 1, 1},   // X, scales
        {"Resize", 11, 3, 4, 1, 1},   // X, roi, scales, sizes
        {"Resize", 13, 1, 4, 1, 1},   // roi and scales optional
    },
    Import,
    InferShape,
    Export,
    RegressionX,
    Calibration,
};

}  // namespace ionn
