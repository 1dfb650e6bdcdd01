// Reading a whole file and parsing it, with the file named in any error.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "ionn/status.h"

namespace ionn {

// `parse`: a function or lambda from the file's bytes to a Result.
template <typename Parse>
auto ParseFile(const std::string& path, const Parse& parse) -> decltype(parse(std::string())) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  auto parsed = parse(ss.str());
  if (!parsed.ok()) return parsed.status().WithContext(path);
  return parsed;
}

}  // namespace ionn
