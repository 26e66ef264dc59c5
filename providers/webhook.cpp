// A generic webhook: the event's JSON, compact, to a configured URL with
// configured headers. 2xx delivered; 408/425/429/5xx retry; other answers
// (4xx, and 3xx since redirects are not followed) are permanent.
#include <fmt/format.h>
#include <rapidjson/document.h>

#include "providers/types.h"

namespace outboxd::providers {
namespace {

const KeySpec kKeys[] = {
    {"url", true, false, false, "where to send events (https:// or http://)"},
    {"method", false, false, false, "POST (default), PUT or PATCH"},
    {"headers", false, true, true, "extra request headers; values may be file:/env: secrets"},
};

class Webhook : public ProviderBase {
 public:
  Webhook(const ProviderSettings& s, CommonSettings c) : ProviderBase(s, std::move(c)) {
    endpoints_.push_back({"default", {0, 1}, "rate_limit"});
    url_ = Setting(s, "url");
    method_ = Setting(s, "method");
    if (method_.empty()) method_ = "POST";
    headers_.push_back({"Content-Type", "application/json"});
    if (auto it = s.tables.find("headers"); it != s.tables.end()) {
      for (const auto& [k, v] : it->second) headers_.push_back({k, v});
    }
  }

  bool Validate(const rapidjson::Value& e, std::string_view, double, Validated* out,
                std::string* error) const override {
    if (!e.IsObject()) {
      *error = "event: must be an object";
      return false;
    }
    out->body = CompactJson(e);
    out->route = "{}";
    return true;
  }

  HttpRequest Build(const StoredEvent& e, double) const override {
    HttpRequest r = NewRequest(method_, url_);
    r.headers = headers_;
    r.body = std::string(e.body);
    return r;
  }

  Verdict Classify(const StoredEvent&, const HttpResponse& r, double now) override {
    Verdict v = ClassifyPlain(r, now);
    if (r.status >= 300 && r.status < 400) {
      v.reason = fmt::format("HTTP {}: redirects are not followed", r.status);
    }
    return v;
  }

 private:
  std::string url_, method_;
  std::vector<Header> headers_;
};

}  // namespace

std::span<const KeySpec> WebhookKeys() { return kKeys; }

std::unique_ptr<Provider> NewWebhook(const ProviderSettings& s, std::string* error) {
  std::string url = Setting(s, "url");
  if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) {
    *error = "url: must start with https:// or http://";
    return nullptr;
  }
  std::string method = Setting(s, "method");
  if (!method.empty() && method != "POST" && method != "PUT" && method != "PATCH") {
    *error = "method: must be POST, PUT or PATCH";
    return nullptr;
  }
  if (auto it = s.tables.find("headers"); it != s.tables.end()) {
    for (const auto& [k, v] : it->second) {
      if (!IsToken(k, 128) || v.find_first_of("\r\n") != std::string::npos) {
        *error = fmt::format("headers.{}: not a valid header", k);
        return nullptr;
      }
    }
  }
  CommonSettings c;
  if (!ReadCommon(s, "", &c, error)) return nullptr;
  return std::make_unique<Webhook>(s, std::move(c));
}

}  // namespace outboxd::providers
