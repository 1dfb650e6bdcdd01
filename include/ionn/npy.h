// NumPy .npy files of float32 tensors, so that inputs and outputs can be
// compared across tools. Reading is strict: version 1.0-3.0, dtype '<f4'
// only, C order, a shape whose element count fits ionn's limit, exactly
// that many values; errors name the file and what was wrong.
#pragma once

#include <string>

#include "ionn/engine.h"

namespace ionn {

Result<Tensor> ParseNpy(const std::string& bytes);
Result<Tensor> ReadNpyFile(const std::string& path);
std::string SerializeNpy(const Tensor& tensor);  // version 1.0, '<f4', C order
Status WriteNpyFile(const std::string& path, const Tensor& tensor);

}  // namespace ionn
