// Test helpers for the socket server: a provider with simple rules, a lane
// control that records what it was told, and a client over a real socket.
#ifndef OUTBOXD_TESTS_DAEMON_IPC_UTIL_H_
#define OUTBOXD_TESTS_DAEMON_IPC_UTIL_H_

#include <rapidjson/document.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "daemon/ipc_server.h"
#include "daemon/service.h"
#include "providers/provider.h"

namespace outboxd::testing {

// Accepts {"msg": non-empty string, "n"?: integer}; stores the compact JSON.
class EchoProvider : public providers::Provider {
 public:
  explicit EchoProvider(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  const std::string& type() const override { return type_; }
  std::span<const providers::Endpoint> endpoints() const override { return endpoints_; }
  std::pair<size_t, double> EndpointOf(const providers::StoredEvent&) const override {
    return {0, 1};
  }
  bool Validate(const rapidjson::Value& event, std::string_view key, double now,
                providers::Validated* out, std::string* error) const override;
  providers::HttpRequest Build(const providers::StoredEvent& event, double now) const override;
  providers::Verdict Classify(const providers::StoredEvent& event,
                              const providers::HttpResponse& response, double now) override;

 private:
  std::string name_;
  std::string type_ = "echo";
  std::vector<providers::Endpoint> endpoints_{{"default", {0, 1}, "rate_limit"}};
};

class RecordingLanes : public LaneControl {
 public:
  void Notify(std::string_view provider) override { notified.emplace_back(provider); }
  bool SetPaused(std::string_view provider, bool paused) override;
  bool Describe(std::string_view provider, LaneInfo* info) const override;
  void AppendMetrics(std::string* out) const override;

  std::set<std::string, std::less<>> names;
  std::map<std::string, bool, std::less<>> paused;
  std::vector<std::string> notified;
};

// A blocking client of a Unix socket, pumping the server between steps.
class Client {
 public:
  // Connects to `path`; check connected().
  explicit Client(const std::string& path);
  ~Client();
  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Writes all of `data` (the server is pumped while the socket is full).
  void Send(std::string_view data, IpcServer* server);
  // Reads one reply line, pumping the server; empty on EOF or after 5 s.
  std::string ReadLine(IpcServer* server);
  // True once the server closed the connection (pumping meanwhile).
  bool WaitClosed(IpcServer* server);

 private:
  int fd_ = -1;
  std::string buf_;
};

// Runs one round of the server: poll its fds for up to `timeout_ms`, then
// handle what is ready.
void Pump(IpcServer* server, int timeout_ms = 0);

// Parses a reply line; fails the test if it is not a JSON object.
rapidjson::Document ParseReply(const std::string& line);
// The error code of a reply ("" if ok).
std::string ErrorCodeOf(const std::string& line);

}  // namespace outboxd::testing

#endif  // OUTBOXD_TESTS_DAEMON_IPC_UTIL_H_
