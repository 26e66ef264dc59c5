// Dynamics 365 Customer Insights - Journeys: push interaction events.
//   POST {PublicEndpoint}api/v1.0/orgs/{orgId}/pushdatareceiver/events
//   body {"TrackingId": GUID, "DeviceToken": "...", "PushNotificationStatus": 1}
// 202 accepted; 400 invalid (permanent). No auth header is documented.
#include <fmt/format.h>
#include <rapidjson/document.h>

#include "providers/types.h"

namespace outboxd::providers {
namespace {

const KeySpec kKeys[] = {
    {"public_endpoint", false, false, false,
     "the organisation's PublicEndpoint, e.g. https://public-eur.mkt.dynamics.com/"},
    {"org_id", true, false, false, "organisation id (a GUID)"},
};

class CustomerInsights : public ProviderBase {
 public:
  CustomerInsights(const ProviderSettings& s, CommonSettings c) : ProviderBase(s, std::move(c)) {
    endpoints_.push_back({"events", {0, 1}, "rate_limit"});
    org_ = Setting(s, "org_id");
  }

  bool Validate(const rapidjson::Value& e, std::string_view, double, Validated* out,
                std::string* error) const override {
    if (!OnlyKnownFields(e, {"TrackingId", "DeviceToken", "PushNotificationStatus"}, error)) {
      return false;
    }
    std::string tracking, token;
    if (!RequireString(e, "TrackingId", 64, &tracking, error)) return false;
    if (!IsGuid(tracking)) {
      *error = "TrackingId: must be a GUID (8-4-4-4-12 hex digits)";
      return false;
    }
    if (IsAllZeroGuid(tracking)) {
      *error = "TrackingId: the all-zero GUID is not a tracked message";
      return false;
    }
    if (!RequireString(e, "DeviceToken", 4096, &token, error)) return false;
    auto st = e.FindMember("PushNotificationStatus");
    if (st == e.MemberEnd() || !st->value.IsInt() ||
        (st->value.GetInt() != 0 && st->value.GetInt() != 1)) {
      *error = "PushNotificationStatus: must be the integer 1 (opened) or 0 (clicked)";
      return false;
    }
    rapidjson::Document body(rapidjson::kObjectType);
    auto& a = body.GetAllocator();
    body.AddMember("TrackingId", rapidjson::Value(tracking.c_str(), a), a);
    body.AddMember("DeviceToken", rapidjson::Value(token.c_str(), a), a);
    body.AddMember("PushNotificationStatus", st->value.GetInt(), a);
    out->body = CompactJson(body);
    out->route = "{}";
    return true;
  }

  HttpRequest Build(const StoredEvent& e, double) const override {
    return PostJson(fmt::format("{}/api/v1.0/orgs/{}/pushdatareceiver/events", common_.base_url,
                                PercentEncode(org_)),
                    e.body);
  }

  Verdict Classify(const StoredEvent&, const HttpResponse& r, double now) override {
    return ClassifyPlain(r, now);
  }

 private:
  std::string org_;
};

}  // namespace

std::span<const KeySpec> CustomerInsightsKeys() { return kKeys; }

std::unique_ptr<Provider> NewCustomerInsights(const ProviderSettings& s, std::string* error) {
  if (!IsGuid(Setting(s, "org_id"))) {
    *error = "org_id: must be a GUID (8-4-4-4-12 hex digits)";
    return nullptr;
  }
  std::string endpoint = Setting(s, "public_endpoint");
  if (endpoint.empty() && Setting(s, "base_url").empty()) {
    *error = "public_endpoint: is required (or base_url)";
    return nullptr;
  }
  ProviderSettings copy = s;
  if (copy.values["base_url"].empty()) copy.values["base_url"] = endpoint;
  CommonSettings c;  // ReadCommon drops the trailing slash: the path adds one
  if (!ReadCommon(copy, "", &c, error)) {
    if (error->rfind("base_url", 0) == 0 && Setting(s, "base_url").empty()) {
      *error = "public_endpoint" + error->substr(8);
    }
    return nullptr;
  }
  return std::make_unique<CustomerInsights>(s, std::move(c));
}

}  // namespace outboxd::providers
