// HTTP requests, responses and the transport seam.
//
// HttpTransport runs many requests at once on the calling thread (no thread
// per request). Tests replace it with a fake that records requests and
// answers them from a script.
//
// Thread rules: a transport is used from one thread, except Wakeup(), which
// any thread may call.
#ifndef OUTBOXD_PROVIDERS_HTTP_H_
#define OUTBOXD_PROVIDERS_HTTP_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace outboxd::providers {

struct Header {
  std::string name;
  std::string value;
};

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  std::vector<Header> headers;
  std::string body;
  double timeout_s = 30;  // whole request
  double connect_timeout_s = 10;
  std::string ca_file;  // CA bundle replacing the system one; verification is always on
};

// Why a request got no HTTP answer. Everything but kNone means the server
// was not heard from: the scheduler treats these as "offline".
enum class TransportError {
  kNone = 0,
  kDns,
  kConnect,
  kTls,
  kTimeout,
  kReset,     // connection closed or reset mid-request
  kTooLarge,  // the answer's body passed the cap
  kOther,
};
const char* TransportErrorName(TransportError error);

struct HttpResponse {
  TransportError error = TransportError::kNone;
  std::string error_message;  // never contains credentials
  int status = 0;             // 0 when error != kNone
  std::vector<Header> headers;
  std::string body;  // capped at kMaxResponseBody

  // Case-insensitive header lookup; the last value wins. nullptr if absent.
  const std::string* FindHeader(std::string_view name) const;
};

inline constexpr size_t kMaxResponseBody = 1 << 20;

// A file descriptor the caller wants watched together with the transfers.
struct WaitFd {
  int fd = -1;
  short events = 0;   // POLLIN / POLLOUT
  short revents = 0;  // set by Wait
};

class HttpTransport {
 public:
  using RequestId = uint64_t;
  struct Completion {
    RequestId id = 0;
    HttpResponse response;
  };

  virtual ~HttpTransport() = default;

  // Starts `request`. Its completion is returned later by Wait, with `id`.
  // Never blocks on the network.
  virtual void Start(RequestId id, HttpRequest request) = 0;

  // Waits at most timeout_ms for network progress or for one of `fds` to be
  // ready (their revents are set), drives all transfers, and appends every
  // finished request to `done`. Returns early on Wakeup().
  virtual void Wait(std::span<WaitFd> fds, int timeout_ms, std::vector<Completion>* done) = 0;

  // Makes a Wait in progress (or the next one) return at once. Thread-safe.
  virtual void Wakeup() = 0;

  // Requests started and not yet returned by Wait.
  virtual size_t InFlight() const = 0;
};

struct CurlOptions {
  size_t max_connections_per_host = 8;
  size_t max_total_connections = 64;
  std::string user_agent = "outboxd";
};

// The libcurl multi implementation: keep-alive per host, HTTP/2 when the
// server offers it, TLS verification always on, proxies from the usual
// environment variables, no signals.
std::unique_ptr<HttpTransport> NewCurlTransport(const CurlOptions& options);

// For logs and errors: the URL without query string and userinfo, so that
// credentials carried in a query (MOOST token URL) never reach a log line.
std::string RedactUrl(std::string_view url);

}  // namespace outboxd::providers

#endif  // OUTBOXD_PROVIDERS_HTTP_H_
