// Status and Result<T>: how every ionn function that parses, does I/O or
// talks to the network reports failure. No exceptions cross part boundaries.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace ionn {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad input: malformed file, unknown name, bad value
  kNotFound,         // a file or a named thing that does not exist
  kUnsupported,      // well-formed but outside what ionn handles
  kIoError,          // the OS refused a read or a write
  kInternal,         // a broken invariant: a bug in ionn
  kUnavailable,      // a peer or resource is not reachable now; retrying may help
  kDeadlineExceeded, // the operation did not finish in the time it was given
  kCancelled,        // the caller gave up on the operation
  kResourceExhausted,  // a configured limit (memory, sessions, sizes) would be passed
};

// "InvalidArgument", "NotFound", ...: the code's name for messages and logs.
inline const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "InvalidArgument";
    case StatusCode::kNotFound: return "NotFound";
    case StatusCode::kUnsupported: return "Unsupported";
    case StatusCode::kIoError: return "IoError";
    case StatusCode::kInternal: return "Internal";
    case StatusCode::kUnavailable: return "Unavailable";
    case StatusCode::kDeadlineExceeded: return "DeadlineExceeded";
    case StatusCode::kCancelled: return "Cancelled";
    case StatusCode::kResourceExhausted: return "ResourceExhausted";
  }
  return "Unknown";
}

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status Invalid(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
  static Status Io(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status DeadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prefixes the message with where it happened: "reading x.onnx: ...".
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  // An OK status carries no value: it becomes an Internal error rather than
  // a Result that is neither a value nor a failure.
  Result(Status status)  // NOLINT
      : status_(status.ok() ? Status::Internal("a Result was made from an OK Status without a value")
                            : std::move(status)) {}

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace ionn

#define IONN_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::ionn::Status ionn_status_ = (expr);        \
    if (!ionn_status_.ok()) return ionn_status_; \
  } while (0)

// IONN_ASSIGN_OR_RETURN(auto graph, ReadOnnxFile(path)); declares `graph`
// from the Result's value, or returns the Result's Status from the caller.
#define IONN_CONCAT_INNER_(a, b) a##b
#define IONN_CONCAT_(a, b) IONN_CONCAT_INNER_(a, b)
#define IONN_ASSIGN_OR_RETURN(decl, expr) \
  IONN_ASSIGN_OR_RETURN_IMPL_(IONN_CONCAT_(ionn_result_, __LINE__), decl, expr)
#define IONN_ASSIGN_OR_RETURN_IMPL_(tmp, decl, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  decl = std::move(tmp).value()
