// CtlClient: outboxctl's connection to the daemon. Blocking, one request or
// a window of pipelined requests at a time.
// Thread rules: one thread.
#ifndef OUTBOXD_DAEMON_CTL_CLIENT_H_
#define OUTBOXD_DAEMON_CTL_CLIENT_H_

#include <optional>
#include <string>

namespace outboxd {

class CtlClient {
 public:
  ~CtlClient();
  // False with `error` naming the socket when the daemon cannot be reached.
  bool Connect(const std::string& path, std::string* error);
  bool Send(const std::string& line);  // appends the newline
  // One reply line; nullopt when the daemon closed the connection.
  std::optional<std::string> Read();

 private:
  int fd_ = -1;
  std::string buf_;
};

}  // namespace outboxd

#endif  // OUTBOXD_DAEMON_CTL_CLIENT_H_
