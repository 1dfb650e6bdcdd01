// `ionn run --image`: a photo as a model input, prepared as torchvision's
// ImageNet models expect (resize the shorter side, center crop to the
// model's input size, RGB, [0,1], per-channel mean and std, NCHW).
#pragma once

#include <string>
#include <vector>

#include "ionn/engine.h"

namespace ionn::cli {

struct ImageOptions {
  int resize = 256;  // the shorter side before the crop; 0: resize straight to the input size
  std::vector<float> mean = {0.485f, 0.456f, 0.406f};
  std::vector<float> std = {0.229f, 0.224f, 0.225f};
  bool bgr = false;  // channel order BGR (Caffe models) instead of RGB
  float scale = 1.0f / 255;  // pixel values times this before mean and std
};

// The input tensor of shape `shape` ([1, 3, H, W]) from the image file at
// `path`; an error names the file and what was wrong. Needs OpenCV
// (imgcodecs, imgproc): without it, an error that says so.
Result<Tensor> LoadImageInput(const std::string& path, const Shape& shape, const ImageOptions& options);

// Class names, one per line (ImageNet's synset_words.txt: "n01440764 tench,
// Tinca tinca" gives "tench, Tinca tinca").
Result<std::vector<std::string>> ReadLabels(const std::string& path);

}  // namespace ionn::cli
