// Pusher Beams Reporting API: delivery and open events.
//   POST
//   https://{instanceId}.pushnotifications.pusher.com/reporting_api/v2/instances/{instanceId}/events
//   body {"event": "delivery"|"open", "publishId", "deviceId", "timestampSecs", "userId"?, ...}
// timestampSecs is when the interaction happened on the device: it defaults
// to the time of enqueue, so an event queued offline keeps its real time.
#include <fmt/format.h>
#include <rapidjson/document.h>

#include <cmath>

#include "providers/types.h"

namespace outboxd::providers {
namespace {

const KeySpec kKeys[] = {
    {"instance_id", true, false, false, "Beams instance id (a UUID)"},
};

class PusherBeams : public ProviderBase {
 public:
  PusherBeams(const ProviderSettings& s, CommonSettings c) : ProviderBase(s, std::move(c)) {
    endpoints_.push_back({"events", {0, 1}, "rate_limit"});
    instance_ = Setting(s, "instance_id");
  }

  bool Validate(const rapidjson::Value& e, std::string_view, double now, Validated* out,
                std::string* error) const override {
    if (!OnlyKnownFields(e,
                         {"event", "publishId", "deviceId", "timestampSecs", "userId",
                          "appInBackground", "hasDisplayableContent", "hasData"},
                         error)) {
      return false;
    }
    std::string event, publish, device, user;
    if (!RequireString(e, "event", 16, &event, error)) return false;
    if (event != "delivery" && event != "open") {
      *error = "event: must be \"delivery\" or \"open\"";
      return false;
    }
    if (!RequireString(e, "publishId", 256, &publish, error)) return false;
    if (!RequireString(e, "deviceId", 256, &device, error)) return false;
    bool has_user = false;
    if (!OptionalString(e, "userId", 256, &user, &has_user, error)) return false;
    int64_t ts = static_cast<int64_t>(std::floor(now));
    auto t = e.FindMember("timestampSecs");
    if (t != e.MemberEnd()) {
      if (!t->value.IsInt64() || t->value.GetInt64() <= 0) {
        *error = "timestampSecs: must be a positive integer (Unix seconds)";
        return false;
      }
      ts = t->value.GetInt64();
    }
    rapidjson::Document body(rapidjson::kObjectType);
    auto& a = body.GetAllocator();
    body.AddMember("event", rapidjson::Value(event.c_str(), a), a);
    body.AddMember("publishId", rapidjson::Value(publish.c_str(), a), a);
    body.AddMember("deviceId", rapidjson::Value(device.c_str(), a), a);
    body.AddMember("timestampSecs", ts, a);
    if (has_user) body.AddMember("userId", rapidjson::Value(user.c_str(), a), a);
    for (const char* flag : {"appInBackground", "hasDisplayableContent", "hasData"}) {
      auto f = e.FindMember(flag);
      if (f == e.MemberEnd()) continue;
      if (event != "delivery") {
        *error = fmt::format("{}: only delivery events carry it", flag);
        return false;
      }
      if (!f->value.IsBool()) {
        *error = fmt::format("{}: must be true or false", flag);
        return false;
      }
      body.AddMember(rapidjson::StringRef(flag), f->value.GetBool(), a);
    }
    out->body = CompactJson(body);
    out->route = "{}";
    return true;
  }

  HttpRequest Build(const StoredEvent& e, double) const override {
    return PostJson(
        fmt::format("{}/reporting_api/v2/instances/{}/events", common_.base_url, instance_),
        e.body);
  }

  Verdict Classify(const StoredEvent&, const HttpResponse& r, double now) override {
    return ClassifyPlain(r, now, "description");
  }

 private:
  std::string instance_;
};

}  // namespace

std::span<const KeySpec> PusherBeamsKeys() { return kKeys; }

std::unique_ptr<Provider> NewPusherBeams(const ProviderSettings& s, std::string* error) {
  std::string id = Setting(s, "instance_id");
  if (!IsGuid(id)) {
    *error = "instance_id: must be a UUID (8-4-4-4-12 hex digits)";
    return nullptr;
  }
  CommonSettings c;
  if (!ReadCommon(s, "https://" + id + ".pushnotifications.pusher.com", &c, error)) {
    return nullptr;
  }
  return std::make_unique<PusherBeams>(s, std::move(c));
}

}  // namespace outboxd::providers
