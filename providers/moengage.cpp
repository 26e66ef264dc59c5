// MoEngage: two APIs behind one provider.
//   Recommendation metadata: GET {base}/v1/recommendations/{id}
//     (an event {"recommendationId": ...}; the answer is kept for the caller)
//   Data API track events:   POST {base}/v1/event/{workspaceId}
//     (an event {"type":"event","customer_id":...,"actions":[...]})
// Auth: Basic base64(workspaceId:key) and MOE-APPKEY: <workspaceId>; the
// Data API has its own key. Data centres api-01 ... api-06 and api-101.
#include <fmt/format.h>
#include <rapidjson/document.h>

#include <cmath>

#include "providers/types.h"

namespace outboxd::providers {
namespace {

const KeySpec kKeys[] = {
    {"workspace_id", true, false, false, "workspace id (earlier app id), also MOE-APPKEY"},
    {"api_key", false, true, false, "API key for recommendations"},
    {"data_api_key", false, true, false, "Data API key for track events"},
    {"data_center", false, false, false, "data centre number: 01 ... 06 or 101"},
    {"events_rate_limit", false, false, false, "limit for track events (default 30000/min)"},
};

constexpr size_t kMaxBody = 100 * 1000;
constexpr int kMaxAttributes = 100;

bool StartsWithMoe(std::string_view s) { return s.rfind("moe_", 0) == 0; }

class MoEngage : public ProviderBase {
 public:
  MoEngage(const ProviderSettings& s, CommonSettings c) : ProviderBase(s, std::move(c)) {
    endpoints_.push_back({"recommendations", {1000, 60}, "rate_limit"});
    endpoints_.push_back({"events", {30000, 60}, "events_rate_limit"});
    workspace_ = Setting(s, "workspace_id");
    api_key_ = Setting(s, "api_key");
    data_key_ = Setting(s, "data_api_key");
  }

  std::pair<size_t, double> EndpointOf(const StoredEvent& e) const override {
    if (e.route.find("\"r\"") != std::string_view::npos) return {0, 1};
    // A track request costs one per action against the events/minute limit.
    rapidjson::Document route;
    route.Parse(e.route.data(), e.route.size());
    double n = route.IsObject() && route.HasMember("n") && route["n"].IsNumber()
                   ? route["n"].GetDouble()
                   : 1;
    return {1, std::max(1.0, n)};
  }

  bool Validate(const rapidjson::Value& e, std::string_view, double now, Validated* out,
                std::string* error) const override {
    if (e.HasMember("recommendationId")) {
      if (!OnlyKnownFields(e, {"recommendationId"}, error)) return false;
      std::string id;
      if (!RequireString(e, "recommendationId", 256, &id, error)) return false;
      if (!IsToken(id, 256)) {
        *error = "recommendationId: must be letters, digits, '_', '-' or '.'";
        return false;
      }
      if (api_key_.empty()) {
        *error = "recommendationId: provider " + name_ + " has no api_key for recommendations";
        return false;
      }
      rapidjson::Document route(rapidjson::kObjectType);
      route.AddMember("r", rapidjson::Value(id.c_str(), route.GetAllocator()),
                      route.GetAllocator());
      out->route = CompactJson(route);
      out->body.clear();
      return true;
    }
    return ValidateTrack(e, now, out, error);
  }

  bool ValidateTrack(const rapidjson::Value& e, double now, Validated* out,
                     std::string* error) const {
    if (data_key_.empty()) {
      *error = "type: provider " + name_ + " has no data_api_key for track events";
      return false;
    }
    if (!OnlyKnownFields(e, {"type", "customer_id", "device_id", "actions"}, error)) return false;
    std::string type, customer;
    if (!RequireString(e, "type", 16, &type, error)) return false;
    if (type != "event") {
      *error = "type: must be \"event\" (or give recommendationId for a recommendation fetch)";
      return false;
    }
    if (!RequireString(e, "customer_id", 512, &customer, error)) return false;
    auto dev = e.FindMember("device_id");
    if (dev != e.MemberEnd() && !dev->value.IsString()) {
      *error = "device_id: must be a string";
      return false;
    }
    auto acts = e.FindMember("actions");
    if (acts == e.MemberEnd() || !acts->value.IsArray() || acts->value.Empty()) {
      *error = "actions: must be a non-empty array";
      return false;
    }
    rapidjson::Document body;
    body.CopyFrom(e, body.GetAllocator());
    auto& a = body.GetAllocator();
    rapidjson::Value& actions = body["actions"];
    for (rapidjson::SizeType i = 0; i < actions.Size(); ++i) {
      rapidjson::Value& act = actions[i];
      std::string at = fmt::format("actions[{}]", i);
      if (!act.IsObject()) {
        *error = at + ": must be an object";
        return false;
      }
      std::string sub;
      if (!OnlyKnownFields(act,
                           {"action", "attributes", "current_time", "user_timezone_offset",
                            "platform", "app_version", "user_time"},
                           &sub)) {
        *error = at + "." + sub;
        return false;
      }
      std::string name;
      if (!RequireString(act, "action", 256, &name, &sub)) {
        *error = at + "." + sub;
        return false;
      }
      if (StartsWithMoe(name)) {
        *error = at + ".action: must not start with \"moe_\" (reserved)";
        return false;
      }
      auto attrs = act.FindMember("attributes");
      if (attrs != act.MemberEnd()) {
        if (!attrs->value.IsObject()) {
          *error = at + ".attributes: must be an object";
          return false;
        }
        if (attrs->value.MemberCount() > kMaxAttributes) {
          *error = fmt::format("{}.attributes: at most {} attributes", at, kMaxAttributes);
          return false;
        }
        for (const auto& m : attrs->value.GetObject()) {
          if (StartsWithMoe(m.name.GetString())) {
            *error = fmt::format("{}.attributes.{}: names must not start with \"moe_\"", at,
                                 m.name.GetString());
            return false;
          }
        }
      }
      auto t = act.FindMember("current_time");
      if (t == act.MemberEnd()) {
        // The time of the interaction is the time of enqueue.
        act.AddMember("current_time", static_cast<int64_t>(std::floor(now)), a);
      } else if (!t->value.IsNumber() || t->value.GetDouble() < 0) {
        *error = at + ".current_time: must be epoch seconds";
        return false;
      } else if (t->value.GetDouble() > now + 60) {
        *error = at + ".current_time: must not be in the future";
        return false;
      }
    }
    out->body = CompactJson(body);
    if (out->body.size() > kMaxBody) {
      *error = fmt::format("actions: the request body would be {} bytes, over MoEngage's 100 KB",
                           out->body.size());
      return false;
    }
    out->route = fmt::format("{{\"n\":{}}}", actions.Size());
    return true;
  }

  HttpRequest Build(const StoredEvent& e, double) const override {
    if (e.route.find("\"r\"") != std::string_view::npos) {
      rapidjson::Document route;
      route.Parse(e.route.data(), e.route.size());
      std::string id = route.IsObject() && route.HasMember("r") && route["r"].IsString()
                           ? route["r"].GetString()
                           : "";
      HttpRequest r = NewRequest(
          "GET", fmt::format("{}/v1/recommendations/{}", common_.base_url, PercentEncode(id)));
      r.headers = {{"Authorization", "Basic " + Base64(workspace_ + ":" + api_key_)},
                   {"MOE-APPKEY", workspace_},
                   {"Content-Type", "application/json"}};
      return r;
    }
    HttpRequest r = NewRequest(
        "POST", fmt::format("{}/v1/event/{}", common_.base_url, PercentEncode(workspace_)));
    r.headers = {{"Authorization", "Basic " + Base64(workspace_ + ":" + data_key_)},
                 {"MOE-APPKEY", workspace_},
                 {"Content-Type", "application/json"}};
    r.body = std::string(e.body);
    return r;
  }

  Verdict Classify(const StoredEvent& e, const HttpResponse& r, double now) override {
    Verdict v;
    if (ClassifyCommon(r, now, &v)) return v;
    bool reco = e.route.find("\"r\"") != std::string_view::npos;
    if (r.status >= 200 && r.status < 300) {
      v.kind = VerdictKind::kDelivered;
      if (reco) v.response = r.body;
      return v;
    }
    v.kind = VerdictKind::kPermanent;
    if (reco) {
      v.reason = StatusReason(r, "message");
    } else {
      // {"status":"fail","error":{"message":...}}
      rapidjson::Document d;
      d.Parse(r.body.data(), r.body.size());
      if (!d.HasParseError() && d.IsObject() && d.HasMember("error") && d["error"].IsObject() &&
          d["error"].HasMember("message") && d["error"]["message"].IsString()) {
        v.reason = fmt::format("HTTP {}: {}", r.status, Excerpt(d["error"]["message"].GetString()));
      } else {
        v.reason = StatusReason(r);
      }
    }
    return v;
  }

 private:
  std::string workspace_, api_key_, data_key_;
};

}  // namespace

std::span<const KeySpec> MoEngageKeys() { return kKeys; }

std::unique_ptr<Provider> NewMoEngage(const ProviderSettings& s, std::string* error) {
  std::string dc = Setting(s, "data_center");
  std::string base;
  if (!dc.empty()) {
    static const char* kCentres[] = {"01", "02", "03", "04", "05", "06", "101"};
    bool ok = false;
    for (const char* c : kCentres) ok |= dc == c;
    if (!ok) {
      *error = "data_center: must be one of 01, 02, 03, 04, 05, 06, 101";
      return nullptr;
    }
    base = "https://api-" + dc + ".moengage.com";
  }
  if (dc.empty() && Setting(s, "base_url").empty()) {
    *error = "data_center: set data_center (01 ... 06, 101) or base_url";
    return nullptr;
  }
  if (Setting(s, "api_key").empty() && Setting(s, "data_api_key").empty()) {
    *error = "api_key: set api_key (recommendations), data_api_key (track events) or both";
    return nullptr;
  }
  if (!IsToken(Setting(s, "workspace_id"), 128)) {
    *error = "workspace_id: must be letters, digits, '_', '-' or '.'";
    return nullptr;
  }
  CommonSettings c;
  if (!ReadCommon(s, base, &c, error)) return nullptr;
  return std::make_unique<MoEngage>(s, std::move(c));
}

}  // namespace outboxd::providers
