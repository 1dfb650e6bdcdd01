#include "image_input.h"

#include <fstream>

#ifdef IONN_HAVE_OPENCV_IMGCODECS
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace ionn::cli {
namespace {

constexpr int64_t kMaxImageSide = 16384;

#ifdef IONN_HAVE_OPENCV_IMGCODECS
Result<Tensor> Prepare(const std::string& path, const Shape& shape, const ImageOptions& o);
#endif

}  // namespace

Result<Tensor> LoadImageInput(const std::string& path, const Shape& shape, const ImageOptions& o) {
  if (shape.size() != 4 || shape[0] != 1 || shape[1] != 3) {
    return Status::Unsupported("--image needs a model input of shape [1,3,H,W], this one is " + ShapeToString(shape));
  }
  if (o.mean.size() != 3 || o.std.size() != 3) return Status::Invalid("--mean and --std take 3 values each");
  for (float s : o.std) {
    if (!(s > 0)) return Status::Invalid("--std values must be > 0");
  }
  if (shape[2] > kMaxImageSide || shape[3] > kMaxImageSide) {
    return Status::Unsupported("--image needs a model input of at most " + std::to_string(kMaxImageSide) + "x" +
                               std::to_string(kMaxImageSide) + " pixels, this one is " + ShapeToString(shape));
  }
#ifdef IONN_HAVE_OPENCV_IMGCODECS
  std::ifstream probe(path, std::ios::binary);
  if (!probe) return Status::NotFound("cannot open image '" + path + "'");
  try {  // OpenCV reports bad files and memory it cannot get by exceptions
    return Prepare(path, shape, o);
  } catch (const cv::Exception& e) {
    return Status::Invalid("cannot prepare image '" + path + "': " + e.msg.substr(0, 200));
  }
#else
  (void)path;
  return Status::Unsupported("this ionn was built without OpenCV (-DIONN_WITH_OPENCV=OFF): --image is not available");
#endif
}

#ifdef IONN_HAVE_OPENCV_IMGCODECS
namespace {

Result<Tensor> Prepare(const std::string& path, const Shape& shape, const ImageOptions& o) {
  const cv::Mat img = cv::imread(path, cv::IMREAD_COLOR);
  if (img.empty()) return Status::Invalid("cannot decode image '" + path + "' (not an image OpenCV reads: JPEG, PNG, BMP, ...)");
  const int H = static_cast<int>(shape[2]), W = static_cast<int>(shape[3]);
  cv::Mat resized;
  if (o.resize > 0) {
    const double f = static_cast<double>(o.resize) / std::min(img.rows, img.cols);
    const double sh = std::max<double>(H, img.rows * f + 0.5), sw = std::max<double>(W, img.cols * f + 0.5);
    if (sh * sw > double(kMaxImageSide) * kMaxImageSide) {  // a long thin image resized by its short side
      return Status::Unsupported("image '" + path + "' (" + std::to_string(img.cols) + "x" + std::to_string(img.rows) +
                                 ") would be resized to more than " + std::to_string(kMaxImageSide) + "^2 pixels; "
                                 "try --resize 0");
    }
    const int rh = static_cast<int>(sh), rw = static_cast<int>(sw);
    cv::resize(img, resized, cv::Size(rw, rh), 0, 0, cv::INTER_LINEAR);
    resized = resized(cv::Rect((rw - W) / 2, (rh - H) / 2, W, H));
  } else {
    cv::resize(img, resized, cv::Size(W, H), 0, 0, cv::INTER_LINEAR);
  }
  Tensor t{shape, std::vector<float>(static_cast<size_t>(3) * H * W)};
  for (int c = 0; c < 3; ++c) {
    const int from = o.bgr ? c : 2 - c;  // OpenCV decodes to BGR
    for (int y = 0; y < H; ++y) {
      const cv::Vec3b* row = resized.ptr<cv::Vec3b>(y);
      for (int x = 0; x < W; ++x) {
        t.data[(static_cast<size_t>(c) * H + y) * W + x] = (row[x][from] * o.scale - o.mean[c]) / o.std[c];
      }
    }
  }
  return t;
}

}  // namespace
#endif

Result<std::vector<std::string>> ReadLabels(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot open labels '" + path + "'");
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // "n01440764 tench, Tinca tinca": the synset id goes.
    if (line.size() > 10 && line[0] == 'n' && line[9] == ' ' &&
        line.find_first_not_of("0123456789", 1) == 9) {
      line = line.substr(10);
    }
    labels.push_back(line.substr(0, 200));
    if (labels.size() > 1000000) return Status::Invalid("labels '" + path + "' has more than a million lines");
  }
  if (labels.empty()) return Status::Invalid("labels '" + path + "' is empty");
  return labels;
}

}  // namespace ionn::cli
