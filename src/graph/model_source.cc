#include "ionn/model_source.h"

#include "ionn/onnx_io.h"
#include "ionn/zoo.h"

namespace ionn {

Result<Graph> LoadModel(const std::string& onnx_file, const std::string& zoo_name, bool with_weights,
                        const OnnxImportOptions& onnx) {
  if (onnx_file.empty() == zoo_name.empty()) return Status::Invalid("give a model file or --zoo NAME");
  if (!onnx_file.empty()) return ReadOnnxFile(onnx_file, onnx);
  if (!onnx.input_shapes.empty()) {
    return Status::Invalid("--input-shape is for a model file: zoo model '" + zoo_name + "' has fixed input shapes");
  }
  return BuildZooModel(zoo_name, 1, with_weights);
}

}  // namespace ionn
