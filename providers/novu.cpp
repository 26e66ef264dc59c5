// Novu: update an in-app message's action status.
//   POST {base}/v1/subscribers/{subscriberId}/messages/{messageId}/actions/{type}
//   Authorization: ApiKey <key>; Idempotency-Key: <stable key>
//   body {"status": "pending"|"done", "payload"?: {...}}
// The body bytes are stored once and resent unchanged, so a retry with the
// same key is a harmless replay. Novu replays a cached 5xx too: after one, a
// new key generation lets the retry reach the server.
#include <fmt/format.h>
#include <rapidjson/document.h>

#include "providers/types.h"

namespace outboxd::providers {
namespace {

const KeySpec kKeys[] = {
    {"api_key", true, true, false, "Novu secret API key"},
    {"region", false, false, false, "\"us\" (api.novu.co, default) or \"eu\" (eu.api.novu.co)"},
};

class Novu : public ProviderBase {
 public:
  Novu(const ProviderSettings& s, CommonSettings c) : ProviderBase(s, std::move(c)) {
    endpoints_.push_back({"actions", {20, 1}, "rate_limit"});
    api_key_ = Setting(s, "api_key");
  }

  bool Validate(const rapidjson::Value& e, std::string_view key, double, Validated* out,
                std::string* error) const override {
    if (!OnlyKnownFields(e, {"subscriberId", "messageId", "type", "status", "payload"}, error)) {
      return false;
    }
    std::string sub, msg, type, status;
    if (!RequireString(e, "subscriberId", 256, &sub, error)) return false;
    if (!RequireString(e, "messageId", 256, &msg, error)) return false;
    if (!RequireString(e, "type", 16, &type, error)) return false;
    if (type != "primary" && type != "secondary") {
      *error = "type: must be \"primary\" or \"secondary\"";
      return false;
    }
    if (!RequireString(e, "status", 16, &status, error)) return false;
    if (status != "pending" && status != "done") {
      *error = "status: must be \"pending\" or \"done\"";
      return false;
    }
    rapidjson::Document body(rapidjson::kObjectType);
    auto& a = body.GetAllocator();
    body.AddMember("status", rapidjson::Value(status.c_str(), a), a);
    auto p = e.FindMember("payload");
    if (p != e.MemberEnd()) {
      if (!p->value.IsObject()) {
        *error = "payload: must be an object";
        return false;
      }
      body.AddMember("payload", rapidjson::Value(p->value, a), a);
    }
    out->body = CompactJson(body);
    // The idempotency key: the client's, or a fresh UUID kept with the row
    // (row ids can repeat if a database is ever recreated; UUIDs do not).
    std::string idem = key.empty() ? NewUuid() : std::string(key);
    rapidjson::Document route(rapidjson::kObjectType);
    auto& ra = route.GetAllocator();
    route.AddMember("s", rapidjson::Value(sub.c_str(), ra), ra);
    route.AddMember("m", rapidjson::Value(msg.c_str(), ra), ra);
    route.AddMember("t", rapidjson::Value(type.c_str(), ra), ra);
    route.AddMember("k", rapidjson::Value(idem.c_str(), ra), ra);
    out->route = CompactJson(route);
    return true;
  }

  // The Idempotency-Key for a generation of the event.
  static std::string KeyFor(std::string_view base, int generation) {
    if (generation == 0) return std::string(base);
    std::string suffix = fmt::format("~g{}", generation);
    return std::string(base.substr(0, 255 - suffix.size())) + suffix;
  }

  HttpRequest Build(const StoredEvent& e, double) const override {
    rapidjson::Document route;
    route.Parse(e.route.data(), e.route.size());
    auto get = [&](const char* k) -> std::string {
      return route.IsObject() && route.HasMember(k) && route[k].IsString() ? route[k].GetString()
                                                                           : "";
    };
    HttpRequest r =
        NewRequest("POST", fmt::format("{}/v1/subscribers/{}/messages/{}/actions/{}",
                                       common_.base_url, PercentEncode(get("s")),
                                       PercentEncode(get("m")), PercentEncode(get("t"))));
    r.headers = {{"Authorization", "ApiKey " + api_key_},
                 {"Content-Type", "application/json"},
                 {"Idempotency-Key", KeyFor(get("k"), e.generation)}};
    r.body = std::string(e.body);
    return r;
  }

  Verdict Classify(const StoredEvent&, const HttpResponse& r, double now) override {
    Verdict v;
    const std::string* replay = r.FindHeader("Idempotency-Replay");
    bool replayed = replay && *replay == "true";
    if (ClassifyCommon(r, now, &v)) {
      // A replayed 5xx is the cache talking: only a new key reaches Novu.
      if (v.kind == VerdictKind::kRetry && r.status >= 500 && replayed) {
        v.next_generation = true;
        v.reason += " (replayed)";
      }
      return v;
    }
    if (r.status >= 200 && r.status < 300) {
      v.kind = VerdictKind::kDelivered;
      return v;
    }
    if (r.status == 409) {
      // The same key is still being processed: ask again shortly.
      v.kind = VerdictKind::kRetry;
      v.reason = "HTTP 409: request with this idempotency key in progress";
      RateHints h = ParseRateHints(r, now);
      v.retry_at = h.retry_after_at.value_or(now + 1);
      return v;
    }
    v.kind = VerdictKind::kPermanent;
    v.reason = StatusReason(r);
    return v;
  }

 private:
  std::string api_key_;
};

}  // namespace

std::span<const KeySpec> NovuKeys() { return kKeys; }

std::unique_ptr<Provider> NewNovu(const ProviderSettings& s, std::string* error) {
  std::string region = Setting(s, "region");
  const char* base = "https://api.novu.co";
  if (region == "eu")
    base = "https://eu.api.novu.co";
  else if (!region.empty() && region != "us") {
    *error = "region: must be \"us\" or \"eu\"";
    return nullptr;
  }
  CommonSettings c;
  if (!ReadCommon(s, base, &c, error)) return nullptr;
  return std::make_unique<Novu>(s, std::move(c));
}

}  // namespace outboxd::providers
