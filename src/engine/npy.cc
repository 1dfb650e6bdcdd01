#include "ionn/npy.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ionn {
namespace {

// The value of `key` in a header dict like {'descr': '<f4', 'shape': (1, 3), }.
Result<std::string> DictValue(const std::string& header, const std::string& key) {
  const std::string quoted = "'" + key + "'";
  const size_t at = header.find(quoted);
  if (at == std::string::npos) return Status::Invalid("the header has no " + quoted);
  size_t i = header.find(':', at + quoted.size());
  if (i == std::string::npos) return Status::Invalid("the header's " + quoted + " has no value");
  ++i;
  while (i < header.size() && header[i] == ' ') ++i;
  if (i >= header.size()) return Status::Invalid("the header's " + quoted + " has no value");
  const char open = header[i];
  const char close = open == '(' ? ')' : open == '\'' ? '\'' : ',';
  const size_t end = header.find(close, i + 1);
  if (end == std::string::npos) return Status::Invalid("the header's " + quoted + " is not terminated");
  return header.substr(i, end - i + (close == ',' ? 0 : 1));
}

}  // namespace

Result<Tensor> ParseNpy(const std::string& b) {
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) return Status::Invalid("not a .npy file (no \\x93NUMPY magic)");
  const int major = static_cast<unsigned char>(b[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(b[8]) | static_cast<unsigned char>(b[9]) << 8;
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) return Status::Invalid("truncated .npy header");
    for (int i = 3; i >= 0; --i) header_len = header_len << 8 | static_cast<unsigned char>(b[8 + i]);
    offset = 12;
  } else {
    return Status::Unsupported(".npy version " + std::to_string(major) + " (1 to 3 are read)");
  }
  if (header_len > 65536 || offset + header_len > b.size()) return Status::Invalid("truncated or oversized .npy header");
  const std::string header = b.substr(offset, header_len);
  IONN_ASSIGN_OR_RETURN(std::string descr, DictValue(header, "descr"));
  if (descr != "'<f4'") return Status::Unsupported("dtype " + descr.substr(0, 16) + " (only little-endian float32 '<f4')");
  IONN_ASSIGN_OR_RETURN(std::string order, DictValue(header, "fortran_order"));
  if (order.rfind("False", 0) != 0) return Status::Unsupported("Fortran order (only C order)");
  IONN_ASSIGN_OR_RETURN(std::string shape_text, DictValue(header, "shape"));
  if (shape_text.size() < 2 || shape_text.front() != '(') return Status::Invalid("the shape is not a tuple");
  Shape shape;
  std::string cell;
  for (size_t i = 1; i < shape_text.size(); ++i) {
    const char c = shape_text[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      if (cell.size() > 12) return Status::Invalid("a shape dimension is too large");
      cell += c;
    } else if (c == ',' || c == ')') {
      if (!cell.empty()) shape.push_back(std::stoll(cell));
      cell.clear();
    } else if (c != ' ') {
      return Status::Invalid("the shape " + shape_text.substr(0, 40) + " is not a tuple of integers");
    }
  }
  if (shape.size() > 8) return Status::Invalid("more than 8 dimensions");
  const int64_t count = ElementCount(shape);
  if (count < 0) return Status::Invalid("shape " + ShapeToString(shape) + " is too large");
  const size_t data_at = offset + header_len;
  if (b.size() - data_at != static_cast<size_t>(count) * 4) {
    return Status::Invalid("holds " + std::to_string(b.size() - data_at) + " data bytes, shape " + ShapeToString(shape) +
                           " needs " + std::to_string(count * 4));
  }
  Tensor t{shape, std::vector<float>(count)};
  if (count > 0) std::memcpy(t.data.data(), b.data() + data_at, count * 4);
  return t;
}

Result<Tensor> ReadNpyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open '" + path + "'");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  auto t = ParseNpy(bytes.str());
  if (!t.ok()) return t.status().WithContext(path);
  return t;
}

std::string SerializeNpy(const Tensor& t) {
  std::string shape;  // "1, 1000"; one dimension is "1000,"
  for (size_t i = 0; i < t.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape[i]);
  if (t.shape.size() == 1) shape += ",";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * 4);
  return out;
}

Status WriteNpyFile(const std::string& path, const Tensor& t) {
  std::ofstream out(path, std::ios::binary);
  if (!out) return Status::Io("cannot write '" + path + "': " + std::strerror(errno));
  const std::string bytes = SerializeNpy(t);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.flush();
  return out ? Status::Ok() : Status::Io("cannot write '" + path + "': " + std::strerror(errno));
}

}  // namespace ionn
