// The libcurl multi transport. One CURLM drives every transfer on the
// calling thread; easy handles are kept on a free list and reused, so the
// multi handle's connection cache keeps connections alive per host.
//
// TLS verification is always on (libcurl's default; never switched off).
// ca_file replaces the system CA bundle for that request. Proxies come from
// the usual environment variables (libcurl's default). No signals.
#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "providers/http.h"

namespace outboxd::providers {
namespace {

struct Transfer {
  HttpTransport::RequestId id = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  HttpRequest request;
  HttpResponse response;
  bool too_large = false;
  char error[CURL_ERROR_SIZE] = {};
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (t->response.body.size() + len > kMaxResponseBody) {
    t->too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  t->response.body.append(data, len);
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  std::string_view line(data, len);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (after 1xx): keep only the last one's headers.
    t->response.headers.clear();
    return len;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) {
      s.remove_suffix(1);
    }
    return s;
  };
  t->response.headers.push_back(
      {std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1)))});
  return len;
}

TransportError MapError(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return TransportError::kDns;
    case CURLE_COULDNT_CONNECT:
      return TransportError::kConnect;
    case CURLE_OPERATION_TIMEDOUT:
      return TransportError::kTimeout;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
      return TransportError::kTls;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return TransportError::kReset;
    default:
      return TransportError::kOther;
  }
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

class CurlTransport : public HttpTransport {
 public:
  explicit CurlTransport(const CurlOptions& o) : options_(o) {
    GlobalInit();
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS,
                      static_cast<long>(o.max_connections_per_host));
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      static_cast<long>(o.max_total_connections));
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(o.max_total_connections));
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_MULTIPLEX));
  }

  ~CurlTransport() override {
    for (auto& [easy, t] : active_) {
      curl_multi_remove_handle(multi_, easy);
      curl_slist_free_all(t->headers);
      curl_easy_cleanup(easy);
    }
    for (CURL* e : free_) curl_easy_cleanup(e);
    curl_multi_cleanup(multi_);
  }

  void Start(RequestId id, HttpRequest request) override {
    auto t = std::make_unique<Transfer>();
    t->id = id;
    t->request = std::move(request);
    CURL* e;
    if (!free_.empty()) {
      e = free_.back();
      free_.pop_back();
      curl_easy_reset(e);  // keeps the connection and DNS caches
    } else {
      e = curl_easy_init();
    }
    t->easy = e;
    const HttpRequest& r = t->request;
    curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!r.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, r.ca_file.c_str());
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout_s * 1000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connect_timeout_s * 1000));
    curl_easy_setopt(e, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    if (r.method == "GET") {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.data());
    }
    for (const auto& h : r.headers) {
      t->headers = curl_slist_append(t->headers, (h.name + ": " + h.value).c_str());
    }
    // No "Expect: 100-continue" round trip for bodies.
    t->headers = curl_slist_append(t->headers, "Expect:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_multi_add_handle(multi_, e);
    active_[e] = std::move(t);
  }

  void Wait(std::span<WaitFd> fds, int timeout_ms, std::vector<Completion>* done) override {
    int running = 0;
    curl_multi_perform(multi_, &running);
    Collect(done);
    if (!done->empty()) timeout_ms = 0;
    std::vector<curl_waitfd> extra(fds.size());
    for (size_t i = 0; i < fds.size(); ++i) {
      extra[i].fd = fds[i].fd;
      extra[i].events = static_cast<short>(fds[i].events);
      extra[i].revents = 0;
    }
    int n = 0;
    curl_multi_poll(multi_, extra.data(), static_cast<unsigned>(extra.size()), timeout_ms, &n);
    for (size_t i = 0; i < fds.size(); ++i) fds[i].revents = static_cast<short>(extra[i].revents);
    curl_multi_perform(multi_, &running);
    Collect(done);
  }

  void Wakeup() override { curl_multi_wakeup(multi_); }

  size_t InFlight() const override { return active_.size(); }

 private:
  void Collect(std::vector<Completion>* done) {
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      CURL* e = m->easy_handle;
      auto it = active_.find(e);
      if (it == active_.end()) continue;
      std::unique_ptr<Transfer> t = std::move(it->second);
      active_.erase(it);
      CURLcode code = m->data.result;
      curl_multi_remove_handle(multi_, e);
      if (code == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        t->response.status = static_cast<int>(status);
      } else {
        t->response.error = t->too_large ? TransportError::kTooLarge : MapError(code);
        std::string msg = t->too_large  ? fmt::format("answer body over {} bytes", kMaxResponseBody)
                          : t->error[0] ? std::string(t->error)
                                        : std::string(curl_easy_strerror(code));
        // curl's messages may quote the URL: never let a query through.
        size_t q = msg.find('?');
        if (q != std::string::npos) msg = msg.substr(0, q) + "?REDACTED";
        t->response.error_message = msg;
        t->response.status = 0;
        t->response.body.clear();
        t->response.headers.clear();
      }
      curl_slist_free_all(t->headers);
      free_.push_back(e);
      done->push_back({t->id, std::move(t->response)});
    }
  }

  CurlOptions options_;
  CURLM* multi_;
  std::map<CURL*, std::unique_ptr<Transfer>> active_;
  std::vector<CURL*> free_;
};

}  // namespace

std::unique_ptr<HttpTransport> NewCurlTransport(const CurlOptions& options) {
  return std::make_unique<CurlTransport>(options);
}

}  // namespace outboxd::providers
