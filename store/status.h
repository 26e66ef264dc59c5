// Status: the result of a store operation. A value, never an exception.
// Thread rules: a plain value type; copy freely.
#ifndef OUTBOXD_STORE_STATUS_H_
#define OUTBOXD_STORE_STATUS_H_

#include <string>
#include <utility>

namespace outboxd::store {

enum class Code {
  kOk = 0,
  kNotFound,  // no such row
  kInvalid,   // the caller passed something the store cannot hold
  kFull,      // store.max_size reached or the disk is full: nothing stored
  kCorrupt,   // the file is not a database, or fails its check
  kTooNew,    // the file was written by a newer schema version
  kLocked,    // another process holds the database
  kIoError,   // an I/O error from the OS
  kInternal,  // anything else SQLite reported
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(Code code, std::string message) { return Status(code, std::move(message)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "ok" or "<code name>: <message>".
  std::string ToString() const;

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

const char* CodeName(Code code);

}  // namespace outboxd::store

#endif  // OUTBOXD_STORE_STATUS_H_
