#include "store/status.h"

namespace outboxd::store {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kNotFound:
      return "not_found";
    case Code::kInvalid:
      return "invalid";
    case Code::kFull:
      return "full";
    case Code::kCorrupt:
      return "corrupt";
    case Code::kTooNew:
      return "too_new";
    case Code::kLocked:
      return "locked";
    case Code::kIoError:
      return "io_error";
    case Code::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code_)) + ": " + message_;
}

}  // namespace outboxd::store
