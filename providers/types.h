// The provider types and their factories. Internal to providers/; the
// public entry points are in provider.h (NewProvider, ProviderKeys).
#ifndef OUTBOXD_PROVIDERS_TYPES_H_
#define OUTBOXD_PROVIDERS_TYPES_H_

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "providers/common.h"
#include "providers/provider.h"

namespace outboxd::providers {

// What every type shares: names, common settings, endpoints.
class ProviderBase : public Provider {
 public:
  ProviderBase(const ProviderSettings& s, CommonSettings common)
      : name_(s.name), type_(s.type), common_(std::move(common)) {}
  const std::string& name() const override { return name_; }
  const std::string& type() const override { return type_; }
  std::span<const Endpoint> endpoints() const override { return endpoints_; }
  std::pair<size_t, double> EndpointOf(const StoredEvent&) const override { return {0, 1}; }

 protected:
  // A request with the common settings filled in.
  HttpRequest NewRequest(std::string method, std::string url) const {
    HttpRequest r;
    r.method = std::move(method);
    r.url = std::move(url);
    r.timeout_s = common_.timeout_s;
    r.connect_timeout_s = std::min(10.0, common_.timeout_s);
    r.ca_file = common_.ca_file;
    return r;
  }

  // POST of `body` as JSON to `url`.
  HttpRequest PostJson(std::string url, std::string_view body) const {
    HttpRequest r = NewRequest("POST", std::move(url));
    r.headers = {{"Content-Type", "application/json"}};
    r.body = std::string(body);
    return r;
  }

  // The shared classification, then: 2xx delivered, anything else
  // permanent with the reason from the body's `message_field`.
  static Verdict ClassifyPlain(const HttpResponse& r, double now,
                               const char* message_field = "message") {
    Verdict v;
    if (ClassifyCommon(r, now, &v)) return v;
    if (r.status >= 200 && r.status < 300) {
      v.kind = VerdictKind::kDelivered;
      return v;
    }
    v.kind = VerdictKind::kPermanent;
    v.reason = StatusReason(r, message_field);
    return v;
  }

  std::string name_;
  std::string type_;
  CommonSettings common_;
  std::vector<Endpoint> endpoints_;
};

struct TypeInfo {
  const char* type;
  std::span<const KeySpec> keys;
  std::unique_ptr<Provider> (*make)(const ProviderSettings&, std::string* error);
};

std::unique_ptr<Provider> NewMoost(const ProviderSettings& s, std::string* error);
std::unique_ptr<Provider> NewNovu(const ProviderSettings& s, std::string* error);
std::unique_ptr<Provider> NewMoEngage(const ProviderSettings& s, std::string* error);
std::unique_ptr<Provider> NewCustomerInsights(const ProviderSettings& s, std::string* error);
std::unique_ptr<Provider> NewPusherBeams(const ProviderSettings& s, std::string* error);
std::unique_ptr<Provider> NewWebhook(const ProviderSettings& s, std::string* error);

std::span<const KeySpec> MoostKeys();
std::span<const KeySpec> NovuKeys();
std::span<const KeySpec> MoEngageKeys();
std::span<const KeySpec> CustomerInsightsKeys();
std::span<const KeySpec> PusherBeamsKeys();
std::span<const KeySpec> WebhookKeys();

}  // namespace outboxd::providers

#endif  // OUTBOXD_PROVIDERS_TYPES_H_
