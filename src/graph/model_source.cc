#include "ionn/model_source.h"

#include "ionn/onnx_io.h"
#include "ionn/zoo.h"

namespace ionn {

Result<Graph> LoadModel(const std::string& onnx_file, const std::string& zoo_name, bool with_weights) {
  if (onnx_file.empty() == zoo_name.empty()) return Status::Invalid("give a model file or --zoo NAME");
  return onnx_file.empty() ? BuildZooModel(zoo_name, 1, with_weights) : ReadOnnxFile(onnx_file);
}

}  // namespace ionn
