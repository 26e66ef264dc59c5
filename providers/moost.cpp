// MOOST Recommender Platform: push-notification interactions.
//   POST {base}/pushnotifications/{id}/interactions/v1
//   Authorization: Bearer <token>; body {"actionQualifier": "...", "userId"?}
// The token comes from configuration (static) or from
//   GET {base}/auth/token/v1?clientId=..&clientSecret=..  -> {"access_token": JWT}
// and is refreshed before the JWT's exp and once after a 401/403.
#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>

#include "providers/types.h"

namespace outboxd::providers {
namespace {

const KeySpec kKeys[] = {
    {"client_id", false, false, false, "client id for the token endpoint"},
    {"client_secret", false, true, false, "client secret for the token endpoint"},
    {"token", false, true, false, "a static bearer token instead of client_id/client_secret"},
};

// Reads "exp" from a JWT's payload; nullopt if it has none.
std::optional<double> JwtExpiry(std::string_view jwt) {
  size_t a = jwt.find('.');
  if (a == std::string_view::npos) return std::nullopt;
  size_t b = jwt.find('.', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  std::string payload;
  if (!Base64UrlDecode(jwt.substr(a + 1, b - a - 1), &payload)) return std::nullopt;
  rapidjson::Document d;
  d.Parse(payload.data(), payload.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  auto it = d.FindMember("exp");
  if (it == d.MemberEnd() || !it->value.IsNumber()) return std::nullopt;
  return it->value.GetDouble();
}

class Moost : public ProviderBase {
 public:
  Moost(const ProviderSettings& s, CommonSettings c) : ProviderBase(s, std::move(c)) {
    endpoints_.push_back({"interactions", {0, 1}, "rate_limit"});
    client_id_ = Setting(s, "client_id");
    client_secret_ = Setting(s, "client_secret");
    static_token_ = Setting(s, "token");
    token_ = static_token_;
  }

  bool Validate(const rapidjson::Value& e, std::string_view, double, Validated* out,
                std::string* error) const override {
    if (!OnlyKnownFields(e, {"pushNotificationId", "actionQualifier", "userId"}, error)) {
      return false;
    }
    std::string id, action, user;
    if (!RequireString(e, "pushNotificationId", 128, &id, error)) return false;
    if (!IsToken(id, 128)) {
      *error = "pushNotificationId: must be letters, digits, '_', '-' or '.'";
      return false;
    }
    if (!RequireString(e, "actionQualifier", 256, &action, error)) return false;
    bool has_user = false;
    if (!OptionalString(e, "userId", 512, &user, &has_user, error)) return false;
    rapidjson::Document body(rapidjson::kObjectType);
    auto& a = body.GetAllocator();
    body.AddMember("actionQualifier", rapidjson::Value(action.c_str(), a), a);
    if (has_user) body.AddMember("userId", rapidjson::Value(user.c_str(), a), a);
    out->body = CompactJson(body);
    rapidjson::Document route(rapidjson::kObjectType);
    route.AddMember("id", rapidjson::Value(id.c_str(), route.GetAllocator()), route.GetAllocator());
    out->route = CompactJson(route);
    return true;
  }

  HttpRequest Build(const StoredEvent& e, double) const override {
    rapidjson::Document route;
    route.Parse(e.route.data(), e.route.size());
    std::string id = route.IsObject() && route.HasMember("id") && route["id"].IsString()
                         ? route["id"].GetString()
                         : "";
    HttpRequest r = NewRequest("POST", fmt::format("{}/pushnotifications/{}/interactions/v1",
                                                   common_.base_url, PercentEncode(id)));
    r.headers = {{"Authorization", "Bearer " + token_}, {"Content-Type", "application/json"}};
    r.body = std::string(e.body);
    return r;
  }

  Verdict Classify(const StoredEvent& e, const HttpResponse& r, double now) override {
    Verdict v;
    if (ClassifyCommon(r, now, &v)) return v;
    if (r.status >= 200 && r.status < 300) {
      v.kind = VerdictKind::kDelivered;
      return v;
    }
    if (r.status == 401 || r.status == 403) {
      bool refreshed_once = e.last_status == 401 || e.last_status == 403;
      if (refreshed_once) {
        v.kind = VerdictKind::kPermanent;
        v.reason = StatusReason(r) + " (after a token refresh)";
      } else {
        v.kind = VerdictKind::kRefreshAuth;
        v.reason = StatusReason(r);
        if (static_token_.empty()) token_.clear();
      }
      return v;
    }
    v.kind = VerdictKind::kPermanent;
    v.reason = r.status == 404 ? "HTTP 404: notification not found" : StatusReason(r);
    return v;
  }

  bool NeedsAuth(double now) const override {
    if (!static_token_.empty()) return false;
    return token_.empty() || now >= refresh_at_;
  }

  HttpRequest AuthRequest(double) const override {
    return NewRequest("GET",
                      fmt::format("{}/auth/token/v1?clientId={}&clientSecret={}", common_.base_url,
                                  PercentEncode(client_id_), PercentEncode(client_secret_)));
  }

  AuthResult HandleAuthResponse(const HttpResponse& r, double now) override {
    AuthResult a;
    if (r.error != TransportError::kNone) {
      a.reason = fmt::format("token request: {}: {}", TransportErrorName(r.error), r.error_message);
      return a;
    }
    if (r.status == 200) {
      rapidjson::Document d;
      d.Parse(r.body.data(), r.body.size());
      if (!d.HasParseError() && d.IsObject() && d.HasMember("access_token") &&
          d["access_token"].IsString() && d["access_token"].GetStringLength() > 0) {
        token_ = d["access_token"].GetString();
        double exp = JwtExpiry(token_).value_or(now + 86400);
        // Refresh ahead of expiry: 10% of the lifetime, at most 5 minutes.
        double margin = std::clamp((exp - now) * 0.1, 1.0, 300.0);
        refresh_at_ = exp - margin;
        a.ok = true;
        return a;
      }
      a.reason = "token request: answer has no access_token";
      return a;
    }
    a.reason = "token request: " + StatusReason(r);
    a.permanent = r.status == 400 || r.status == 401 || r.status == 403 || r.status == 404;
    return a;
  }

 private:
  std::string client_id_, client_secret_, static_token_;
  std::string token_;
  double refresh_at_ = 0;
};

}  // namespace

std::span<const KeySpec> MoostKeys() { return kKeys; }

std::unique_ptr<Provider> NewMoost(const ProviderSettings& s, std::string* error) {
  CommonSettings c;
  if (!ReadCommon(s, "https://api.moost.io", &c, error)) return nullptr;
  bool has_token = !Setting(s, "token").empty();
  bool has_client = !Setting(s, "client_id").empty() || !Setting(s, "client_secret").empty();
  if (has_token == has_client) {
    *error = "token: set either token or both client_id and client_secret";
    return nullptr;
  }
  if (has_client && (Setting(s, "client_id").empty() || Setting(s, "client_secret").empty())) {
    *error = "client_secret: client_id and client_secret go together";
    return nullptr;
  }
  return std::make_unique<Moost>(s, std::move(c));
}

}  // namespace outboxd::providers
