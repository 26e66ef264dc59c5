#include "tests/daemon/ipc_util.h"

#include <doctest/doctest.h>
#include <poll.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace outboxd::testing {

bool EchoProvider::Validate(const rapidjson::Value& event, std::string_view, double,
                            providers::Validated* out, std::string* error) const {
  auto msg = event.FindMember("msg");
  if (msg == event.MemberEnd() || !msg->value.IsString() || msg->value.GetStringLength() == 0) {
    *error = "msg: must be a non-empty string";
    return false;
  }
  auto n = event.FindMember("n");
  if (n != event.MemberEnd() && !n->value.IsInt64()) {
    *error = "n: must be an integer";
    return false;
  }
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  event.Accept(w);
  out->body.assign(sb.GetString(), sb.GetSize());
  out->route = "{}";
  return true;
}

providers::HttpRequest EchoProvider::Build(const providers::StoredEvent& event, double) const {
  providers::HttpRequest r;
  r.url = "http://127.0.0.1:9/echo";
  r.body = std::string(event.body);
  return r;
}

providers::Verdict EchoProvider::Classify(const providers::StoredEvent&,
                                          const providers::HttpResponse& response, double) {
  providers::Verdict v;
  v.status = response.status;
  if (response.error != providers::TransportError::kNone) {
    v.kind = providers::VerdictKind::kOffline;
  } else if (response.status >= 200 && response.status < 300) {
    v.kind = providers::VerdictKind::kDelivered;
  } else if (response.status == 429 || response.status >= 500) {
    v.kind = providers::VerdictKind::kRetry;
  } else {
    v.kind = providers::VerdictKind::kPermanent;
    v.reason = "rejected";
  }
  return v;
}

bool RecordingLanes::SetPaused(std::string_view provider, bool p) {
  if (!names.count(provider)) return false;
  paused[std::string(provider)] = p;
  return true;
}

bool RecordingLanes::Describe(std::string_view provider, LaneInfo* info) const {
  if (!names.count(provider)) return false;
  auto it = paused.find(provider);
  info->state = (it != paused.end() && it->second) ? "paused" : "active";
  info->rate_limit = "unlimited";
  return true;
}

void RecordingLanes::AppendMetrics(std::string* out) const {
  *out += "# HELP outboxd_lane_paused Lane paused by request.\n# TYPE outboxd_lane_paused gauge\n";
  for (const auto& name : names) {
    auto it = paused.find(name);
    *out += "outboxd_lane_paused{provider=\"" + name + "\"} " +
            ((it != paused.end() && it->second) ? "1" : "0") + "\n";
  }
}

Client::Client(const std::string& path) {
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd_);
    fd_ = -1;
  }
}

Client::~Client() {
  if (fd_ >= 0) close(fd_);
}

void Pump(IpcServer* server, int timeout_ms) {
  std::vector<providers::WaitFd> fds;
  server->AppendPollFds(&fds);
  std::vector<pollfd> pfds;
  for (const auto& f : fds) pfds.push_back({f.fd, f.events, 0});
  if (server->HasPendingWork()) timeout_ms = 0;
  poll(pfds.data(), pfds.size(), timeout_ms);
  for (size_t i = 0; i < fds.size(); ++i) fds[i].revents = pfds[i].revents;
  server->HandleReady(fds);
}

void Client::Send(std::string_view data, IpcServer* server) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd_, data.data() + off, data.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      Pump(server, 10);
    } else {
      return;  // the server closed the connection
    }
  }
}

std::string Client::ReadLine(IpcServer* server) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    if (std::chrono::steady_clock::now() > deadline) return {};
    Pump(server, 0);
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 10) > 0) {
      char chunk[65536];
      ssize_t n = recv(fd_, chunk, sizeof(chunk), MSG_DONTWAIT);
      if (n == 0) return {};
      if (n > 0) buf_.append(chunk, static_cast<size_t>(n));
    }
  }
}

bool Client::WaitClosed(IpcServer* server) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    Pump(server, 0);
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 10) > 0) {
      char chunk[65536];
      ssize_t n = recv(fd_, chunk, sizeof(chunk), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
      if (n > 0) buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  return false;
}

rapidjson::Document ParseReply(const std::string& line) {
  rapidjson::Document d;
  d.Parse(line.c_str(), line.size());
  REQUIRE_MESSAGE(!d.HasParseError(), "reply is not JSON: " << line);
  REQUIRE(d.IsObject());
  return d;
}

std::string ErrorCodeOf(const std::string& line) {
  rapidjson::Document d = ParseReply(line);
  if (d["ok"].GetBool()) return "";
  return d["error"]["code"].GetString();
}

}  // namespace outboxd::testing
