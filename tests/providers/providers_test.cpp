// Each provider type: the request built from a sample event equals the
// documented request; each documented status gives the documented verdict;
// each validation rule rejects a bad event naming the field.
#include <doctest/doctest.h>

#include "providers/provider.h"
#include "tests/providers/provider_util.h"

namespace outboxd::providers {
namespace {

using testing::Answer;
using testing::Failure;
using testing::HeaderOf;
using testing::MakeProvider;
using testing::SettingsError;
using testing::ValidateError;
using testing::ValidateOk;

constexpr double kNow = 1.7e9;

TEST_CASE("novu: the documented request, with a stable idempotency key") {
  auto p = MakeProvider("novu", {{"api_key", "nk-123"}});
  auto kept = ValidateOk(p.get(),
                         R"({"subscriberId":"sub 1","messageId":"m-9","type":"primary",)"
                         R"("status":"done","payload":{"a":1}})",
                         kNow, "tap-1");
  HttpRequest r = p->Build(kept.View(), kNow);
  CHECK(r.method == "POST");
  CHECK(r.url == "https://api.novu.co/v1/subscribers/sub%201/messages/m-9/actions/primary");
  CHECK(HeaderOf(r, "Authorization") == "ApiKey nk-123");
  CHECK(HeaderOf(r, "Content-Type") == "application/json");
  CHECK(HeaderOf(r, "Idempotency-Key") == "tap-1");
  CHECK(r.body == R"({"status":"done","payload":{"a":1}})");
  // Retries resend the same bytes with the same key.
  kept.attempts = 3;
  HttpRequest again = p->Build(kept.View(), kNow + 100);
  CHECK(again.body == r.body);
  CHECK(HeaderOf(again, "Idempotency-Key") == "tap-1");
  // A new generation (after a replayed 5xx) gets a new key.
  kept.generation = 1;
  CHECK(HeaderOf(p->Build(kept.View(), kNow), "Idempotency-Key") != "tap-1");
}

TEST_CASE("novu: without a client key, a UUID is generated once and kept") {
  auto p = MakeProvider("novu", {{"api_key", "k"}, {"region", "eu"}});
  auto a = ValidateOk(
      p.get(), R"({"subscriberId":"s","messageId":"m","type":"secondary","status":"pending"})");
  auto b = ValidateOk(
      p.get(), R"({"subscriberId":"s","messageId":"m","type":"secondary","status":"pending"})");
  std::string ka = HeaderOf(p->Build(a.View(), kNow), "Idempotency-Key");
  CHECK(ka.size() == 36);
  CHECK(ka == HeaderOf(p->Build(a.View(), kNow + 5), "Idempotency-Key"));
  CHECK(ka != HeaderOf(p->Build(b.View(), kNow), "Idempotency-Key"));
  CHECK(p->Build(a.View(), kNow).url.rfind("https://eu.api.novu.co/", 0) == 0);
}

TEST_CASE("novu: each status gives the documented verdict") {
  auto p = MakeProvider("novu", {{"api_key", "k"}});
  auto kept = ValidateOk(
      p.get(), R"({"subscriberId":"s","messageId":"m","type":"primary","status":"done"})");
  auto e = kept.View();
  CHECK(p->Classify(e, Answer(201, R"({"data":{}})"), kNow).kind == VerdictKind::kDelivered);
  for (int s : {400, 401, 403, 404, 422}) {
    Verdict v = p->Classify(e, Answer(s, R"({"statusCode":400,"message":"bad thing"})"), kNow);
    CHECK_MESSAGE(v.kind == VerdictKind::kPermanent, s);
    CHECK(v.status == s);
  }
  CHECK(p->Classify(e, Answer(400, R"({"message":"bad thing"})"), kNow).reason ==
        "HTTP 400: bad thing");
  Verdict conflict = p->Classify(e, Answer(409, "", {{"Retry-After", "1"}}), kNow);
  CHECK(conflict.kind == VerdictKind::kRetry);
  CHECK(conflict.retry_at == kNow + 1);
  CHECK_FALSE(conflict.lane_pause_until.has_value());
  CHECK(p->Classify(e, Answer(408), kNow).kind == VerdictKind::kRetry);
  Verdict fresh500 = p->Classify(e, Answer(500), kNow);
  CHECK(fresh500.kind == VerdictKind::kRetry);
  CHECK_FALSE(fresh500.next_generation);
  Verdict replayed = p->Classify(e, Answer(500, "", {{"Idempotency-Replay", "true"}}), kNow);
  CHECK(replayed.kind == VerdictKind::kRetry);
  CHECK(replayed.next_generation);
  Verdict limited = p->Classify(
      e,
      Answer(429, "",
             {{"Retry-After", "3"}, {"RateLimit-Remaining", "0"}, {"RateLimit-Reset", "2"}}),
      kNow);
  CHECK(limited.kind == VerdictKind::kRateLimited);
  CHECK(limited.lane_pause_until == kNow + 3);
  Verdict exhausted = p->Classify(
      e, Answer(201, "{}", {{"RateLimit-Remaining", "0"}, {"RateLimit-Reset", "2"}}), kNow);
  CHECK(exhausted.kind == VerdictKind::kDelivered);
  CHECK(exhausted.lane_pause_until == kNow + 2);
  CHECK(p->Classify(e, Failure(TransportError::kConnect), kNow).kind == VerdictKind::kOffline);
  CHECK(p->endpoints()[0].default_limit.per_second() == 20);
}

TEST_CASE("novu: validation names the field and the rule") {
  auto p = MakeProvider("novu", {{"api_key", "k"}});
  CHECK(ValidateError(p.get(), R"({"messageId":"m","type":"primary","status":"done"})") ==
        "subscriberId: must be a non-empty string");
  CHECK(ValidateError(
            p.get(), R"({"subscriberId":"s","messageId":"m","type":"tertiary","status":"done"})") ==
        "type: must be \"primary\" or \"secondary\"");
  CHECK(ValidateError(p.get(),
                      R"({"subscriberId":"s","messageId":"m","type":"primary","status":"read"})") ==
        "status: must be \"pending\" or \"done\"");
  CHECK(
      ValidateError(
          p.get(),
          R"({"subscriberId":"s","messageId":"m","type":"primary","status":"done","payload":[1]})") ==
      "payload: must be an object");
  CHECK(
      ValidateError(
          p.get(), R"({"subscriberId":"s","messageId":"m","type":"primary","status":"done","x":1})")
          .rfind("x: unknown field", 0) == 0);
  CHECK(ValidateError(p.get(),
                      R"({"subscriberId":"","messageId":"m","type":"primary","status":"done"})") ==
        "subscriberId: must be a non-empty string");
  CHECK(SettingsError("novu", {{"api_key", "k"}, {"region", "mars"}}) ==
        "region: must be \"us\" or \"eu\"");
}

TEST_CASE("moost: the documented request with a bearer token") {
  auto p = MakeProvider("moost", {{"token", "static-tok"}, {"base_url", "https://m.example/"}});
  auto kept = ValidateOk(
      p.get(), R"({"pushNotificationId":"0123456789abcdefABCDEF01","actionQualifier":"DISMISS"})");
  CHECK_FALSE(p->NeedsAuth(kNow));
  HttpRequest r = p->Build(kept.View(), kNow);
  CHECK(r.method == "POST");
  CHECK(r.url == "https://m.example/pushnotifications/0123456789abcdefABCDEF01/interactions/v1");
  CHECK(HeaderOf(r, "Authorization") == "Bearer static-tok");
  CHECK(HeaderOf(r, "Content-Type") == "application/json");
  CHECK(r.body == R"({"actionQualifier":"DISMISS"})");
  auto with_user = ValidateOk(
      p.get(), R"({"pushNotificationId":"abc","actionQualifier":"PRIMARY","userId":"u-1"})");
  CHECK(with_user.body == R"({"actionQualifier":"PRIMARY","userId":"u-1"})");
  CHECK(ValidateError(p.get(), R"({"pushNotificationId":"abc"})") ==
        "actionQualifier: must be a non-empty string");
  CHECK(ValidateError(p.get(), R"({"pushNotificationId":"a/b","actionQualifier":"X"})")
            .rfind("pushNotificationId:", 0) == 0);
  CHECK(SettingsError("moost", {}) ==
        "token: set either token or both client_id and client_secret");
}

TEST_CASE("moost: token fetched, reused, refreshed before exp and once after a 401") {
  auto p = MakeProvider("moost", {{"client_id", "cid"}, {"client_secret", "s&cret"}});
  CHECK(p->NeedsAuth(kNow));
  HttpRequest auth = p->AuthRequest(kNow);
  CHECK(auth.method == "GET");
  CHECK(auth.url == "https://api.moost.io/auth/token/v1?clientId=cid&clientSecret=s%26cret");
  CHECK(RedactUrl(auth.url) == "https://api.moost.io/auth/token/v1?REDACTED");
  // A JWT whose payload is {"exp": kNow + 86400}.
  std::string payload = "{\"exp\":" + std::to_string(static_cast<int64_t>(kNow) + 86400) + "}";
  std::string b64;
  {
    static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int val = 0, bits = -6;
    for (unsigned char c : payload) {
      val = (val << 8) + c;
      bits += 8;
      while (bits >= 0) {
        b64.push_back(a[(val >> bits) & 0x3F]);
        bits -= 6;
      }
    }
    if (bits > -6) b64.push_back(a[((val << 8) >> (bits + 8)) & 0x3F]);
  }
  std::string jwt = "eyJhbGciOiJIUzI1NiJ9." + b64 + ".sig";
  AuthResult ok = p->HandleAuthResponse(Answer(200, R"({"access_token":")" + jwt + "\"}"), kNow);
  CHECK(ok.ok);
  CHECK_FALSE(p->NeedsAuth(kNow));
  CHECK_FALSE(p->NeedsAuth(kNow + 86400 - 400));  // reused for its lifetime
  CHECK(p->NeedsAuth(kNow + 86400 - 60));         // refreshed before exp
  auto kept = ValidateOk(p.get(), R"({"pushNotificationId":"n1","actionQualifier":"DISMISS"})");
  CHECK(HeaderOf(p->Build(kept.View(), kNow), "Authorization") == "Bearer " + jwt);
  // A 401 asks for a fresh token once...
  Verdict v = p->Classify(kept.View(), Answer(401), kNow);
  CHECK(v.kind == VerdictKind::kRefreshAuth);
  CHECK(p->NeedsAuth(kNow));
  CHECK(p->HandleAuthResponse(Answer(200, R"({"access_token":")" + jwt + "\"}"), kNow).ok);
  // ...and a second 401 for the same event is permanent.
  kept.last_status = 401;
  CHECK(p->Classify(kept.View(), Answer(401), kNow).kind == VerdictKind::kPermanent);
  CHECK(p->Classify(kept.View(), Answer(404), kNow).kind == VerdictKind::kPermanent);
  CHECK(p->Classify(kept.View(), Answer(200), kNow).kind == VerdictKind::kDelivered);
  CHECK(p->Classify(kept.View(), Answer(502), kNow).kind == VerdictKind::kRetry);
  AuthResult refused = p->HandleAuthResponse(Answer(401, R"({"message":"bad client"})"), kNow);
  CHECK_FALSE(refused.ok);
  CHECK(refused.permanent);
  CHECK(refused.reason.find("s&cret") == std::string::npos);
}

TEST_CASE("moengage: recommendation fetch, kept answer and its rate limit") {
  auto p = MakeProvider("moengage",
                        {{"workspace_id", "WS1"}, {"api_key", "ak"}, {"data_center", "101"}});
  auto kept = ValidateOk(p.get(), R"({"recommendationId":"reco-7"})");
  HttpRequest r = p->Build(kept.View(), kNow);
  CHECK(r.method == "GET");
  CHECK(r.url == "https://api-101.moengage.com/v1/recommendations/reco-7");
  CHECK(HeaderOf(r, "Authorization") == "Basic V1MxOmFr");  // base64("WS1:ak")
  CHECK(HeaderOf(r, "MOE-APPKEY") == "WS1");
  CHECK(r.body.empty());
  Verdict ok = p->Classify(kept.View(), Answer(200, R"({"id":"reco-7"})"), kNow);
  CHECK(ok.kind == VerdictKind::kDelivered);
  CHECK(ok.response == std::optional<std::string>(R"({"id":"reco-7"})"));
  for (int s : {400, 401, 413})
    CHECK(p->Classify(kept.View(), Answer(s), kNow).kind == VerdictKind::kPermanent);
  CHECK(p->Classify(kept.View(), Answer(500), kNow).kind == VerdictKind::kRetry);
  Verdict limited =
      p->Classify(kept.View(),
                  Answer(429, "",
                         {{"x-ratelimit-limit", "1000"},
                          {"x-ratelimit-remaining", "0"},
                          {"x-ratelimit-reset", std::to_string(static_cast<int64_t>(kNow) + 42)}}),
                  kNow);
  CHECK(limited.kind == VerdictKind::kRateLimited);
  CHECK(limited.lane_pause_until == kNow + 42);
  CHECK(p->endpoints()[0].default_limit.count == 1000);
  CHECK(p->endpoints()[0].default_limit.period_s == 60);
  CHECK(p->EndpointOf(kept.View()).first == 0);
}

TEST_CASE("moengage: track events validated and sent to the Data API") {
  auto p = MakeProvider("moengage",
                        {{"workspace_id", "WS1"}, {"data_api_key", "dk"}, {"data_center", "03"}});
  auto kept = ValidateOk(
      p.get(),
      R"({"type":"event","customer_id":"c1","actions":[{"action":"tap","attributes":{"k":1}},{"action":"view","current_time":1699999000}]})");
  CHECK(
      kept.body ==
      R"({"type":"event","customer_id":"c1","actions":[{"action":"tap","attributes":{"k":1},"current_time":1700000000},{"action":"view","current_time":1699999000}]})");
  HttpRequest r = p->Build(kept.View(), kNow);
  CHECK(r.url == "https://api-03.moengage.com/v1/event/WS1");
  CHECK(HeaderOf(r, "Authorization") == "Basic V1MxOmRr");
  CHECK(p->EndpointOf(kept.View()) == std::pair<size_t, double>{1, 2});
  CHECK(p->endpoints()[1].default_limit.count == 30000);
  for (int s : {400, 401, 403, 413, 415})
    CHECK(p->Classify(kept.View(), Answer(s), kNow).kind == VerdictKind::kPermanent);
  CHECK(p->Classify(kept.View(), Answer(500), kNow).kind == VerdictKind::kRetry);
  CHECK(p->Classify(kept.View(), Answer(200, R"({"status":"success"})"), kNow).response ==
        std::nullopt);
  CHECK(ValidateError(p.get(),
                      R"({"type":"event","customer_id":"c","actions":[{"action":"moe_x"}]})") ==
        "actions[0].action: must not start with \"moe_\" (reserved)");
  CHECK(
      ValidateError(
          p.get(),
          R"({"type":"event","customer_id":"c","actions":[{"action":"a","current_time":1800000000}]})") ==
      "actions[0].current_time: must not be in the future");
  CHECK(ValidateError(p.get(), R"({"type":"event","actions":[{"action":"a"}]})") ==
        "customer_id: must be a non-empty string");
  std::string many = R"({"type":"event","customer_id":"c","actions":[{"action":"a","attributes":{)";
  for (int i = 0; i < 101; ++i)
    many += (i ? "," : "") + std::string("\"a") + std::to_string(i) + "\":1";
  many += "}}]}";
  CHECK(ValidateError(p.get(), many) == "actions[0].attributes: at most 100 attributes");
  std::string big =
      R"({"type":"event","customer_id":"c","actions":[{"action":"a","attributes":{"x":")" +
      std::string(100001, 'x') + "\"}}]}";
  CHECK(ValidateError(p.get(), big).find("100 KB") != std::string::npos);
  // Recommendations need their own key.
  CHECK(ValidateError(p.get(), R"({"recommendationId":"r"})").find("api_key") != std::string::npos);
  CHECK(
      SettingsError("moengage", {{"workspace_id", "W"}, {"api_key", "k"}, {"data_center", "7"}}) ==
      "data_center: must be one of 01, 02, 03, 04, 05, 06, 101");
}

TEST_CASE("customer insights: endpoint normalised, GUIDs checked, 202 accepted") {
  const char* org = "0f8fad5b-d9cb-469f-a165-70867728950e";
  for (const char* endpoint :
       {"https://public-eur.mkt.dynamics.com/", "https://public-eur.mkt.dynamics.com"}) {
    auto p = MakeProvider("customer_insights", {{"public_endpoint", endpoint}, {"org_id", org}});
    auto kept = ValidateOk(
        p.get(),
        R"({"TrackingId":"7c9e6679-7425-40de-944b-e07fc1f90ae7","DeviceToken":"tok","PushNotificationStatus":1})");
    HttpRequest r = p->Build(kept.View(), kNow);
    CHECK(r.url == std::string("https://public-eur.mkt.dynamics.com/api/v1.0/orgs/") + org +
                       "/pushdatareceiver/events");
    CHECK(
        r.body ==
        R"({"TrackingId":"7c9e6679-7425-40de-944b-e07fc1f90ae7","DeviceToken":"tok","PushNotificationStatus":1})");
    CHECK(HeaderOf(r, "Authorization") == "<absent>");
    CHECK(p->Classify(kept.View(), Answer(202), kNow).kind == VerdictKind::kDelivered);
    CHECK(p->Classify(kept.View(), Answer(400), kNow).kind == VerdictKind::kPermanent);
    CHECK(p->Classify(kept.View(), Answer(503), kNow).kind == VerdictKind::kRetry);
    CHECK(p->Classify(kept.View(), Failure(TransportError::kTimeout), kNow).kind ==
          VerdictKind::kOffline);
  }
  auto p = MakeProvider("customer_insights", {{"public_endpoint", "https://x/"}, {"org_id", org}});
  CHECK(ValidateError(p.get(),
                      R"({"TrackingId":"nope","DeviceToken":"t","PushNotificationStatus":1})") ==
        "TrackingId: must be a GUID (8-4-4-4-12 hex digits)");
  CHECK(
      ValidateError(
          p.get(),
          R"({"TrackingId":"00000000-0000-0000-0000-000000000000","DeviceToken":"t","PushNotificationStatus":1})") ==
      "TrackingId: the all-zero GUID is not a tracked message");
  CHECK(
      ValidateError(
          p.get(),
          R"({"TrackingId":"7c9e6679-7425-40de-944b-e07fc1f90ae7","DeviceToken":"","PushNotificationStatus":1})") ==
      "DeviceToken: must be a non-empty string");
  CHECK(
      ValidateError(
          p.get(),
          R"({"TrackingId":"7c9e6679-7425-40de-944b-e07fc1f90ae7","DeviceToken":"t","PushNotificationStatus":"1"})")
          .rfind("PushNotificationStatus:", 0) == 0);
  CHECK(SettingsError("customer_insights", {{"public_endpoint", "https://x/"}, {"org_id", "42"}}) ==
        "org_id: must be a GUID (8-4-4-4-12 hex digits)");
}

TEST_CASE("pusher beams: instance in host and path, timestampSecs from the time of enqueue") {
  const char* id = "97c56dfe-58f5-408b-ab3a-158e51a860f2";
  auto p = MakeProvider("pusher_beams", {{"instance_id", id}});
  // Queued at kNow, sent an hour later: the body keeps the original time.
  auto kept = ValidateOk(
      p.get(),
      R"({"event":"delivery","publishId":"pub-1","deviceId":"dev-1","appInBackground":true})");
  HttpRequest r = p->Build(kept.View(), kNow + 3600);
  CHECK(r.url == std::string("https://") + id +
                     ".pushnotifications.pusher.com/reporting_api/v2/instances/" + id + "/events");
  CHECK(
      r.body ==
      R"({"event":"delivery","publishId":"pub-1","deviceId":"dev-1","timestampSecs":1700000000,"appInBackground":true})");
  CHECK(HeaderOf(r, "Content-Type") == "application/json");
  auto given = ValidateOk(
      p.get(),
      R"({"event":"open","publishId":"p","deviceId":"d","timestampSecs":1600000000,"userId":"u"})");
  CHECK(
      given.body ==
      R"({"event":"open","publishId":"p","deviceId":"d","timestampSecs":1600000000,"userId":"u"})");
  CHECK(p->Classify(kept.View(), Answer(200), kNow).kind == VerdictKind::kDelivered);
  Verdict bad = p->Classify(
      kept.View(), Answer(400, R"({"error":"Bad request","description":"Invalid instance id"})"),
      kNow);
  CHECK(bad.kind == VerdictKind::kPermanent);
  CHECK(bad.reason == "HTTP 400: Invalid instance id");
  CHECK(p->Classify(kept.View(), Answer(500), kNow).kind == VerdictKind::kRetry);
  CHECK(ValidateError(p.get(), R"({"event":"click","publishId":"p","deviceId":"d"})") ==
        "event: must be \"delivery\" or \"open\"");
  CHECK(
      ValidateError(p.get(), R"({"event":"open","publishId":"p","deviceId":"d","hasData":true})") ==
      "hasData: only delivery events carry it");
  CHECK(ValidateError(p.get(),
                      R"({"event":"delivery","publishId":"p","deviceId":"d","hasData":"yes"})") ==
        "hasData: must be true or false");
  CHECK(ValidateError(p.get(),
                      R"({"event":"open","publishId":"p","deviceId":"d","timestampSecs":1.5})") ==
        "timestampSecs: must be a positive integer (Unix seconds)");
  CHECK(SettingsError("pusher_beams", {{"instance_id", "not-a-uuid"}}) ==
        "instance_id: must be a UUID (8-4-4-4-12 hex digits)");
}

TEST_CASE("webhook: configured method, URL and headers; statuses by class") {
  auto p = MakeProvider("webhook", {{"url", "https://hooks.example/in"}, {"method", "PUT"}},
                        {{"headers", {{"X-Token", "t0k"}}}});
  auto kept = ValidateOk(p.get(), R"({ "b": [1, 2], "a": "x" })");
  CHECK(kept.body == R"({"b":[1,2],"a":"x"})");
  HttpRequest r = p->Build(kept.View(), kNow);
  CHECK(r.method == "PUT");
  CHECK(r.url == "https://hooks.example/in");
  CHECK(HeaderOf(r, "X-Token") == "t0k");
  CHECK(HeaderOf(r, "Content-Type") == "application/json");
  CHECK(p->Classify(kept.View(), Answer(204), kNow).kind == VerdictKind::kDelivered);
  for (int s : {408, 425, 500, 503})
    CHECK(p->Classify(kept.View(), Answer(s), kNow).kind == VerdictKind::kRetry);
  CHECK(p->Classify(kept.View(), Answer(429), kNow).kind == VerdictKind::kRateLimited);
  for (int s : {301, 400, 404, 410})
    CHECK(p->Classify(kept.View(), Answer(s), kNow).kind == VerdictKind::kPermanent);
  CHECK(SettingsError("webhook", {{"url", "ftp://x"}}) ==
        "url: must start with https:// or http://");
  CHECK(SettingsError("webhook", {{"url", "https://x"}, {"method", "GET"}}) ==
        "method: must be POST, PUT or PATCH");
}

TEST_CASE("rate hints: Retry-After in both forms, x-ratelimit epoch, RateLimit seconds") {
  SUBCASE("Retry-After seconds") {
    auto h = ParseRateHints(Answer(429, "", {{"retry-after", "7"}}), kNow);
    CHECK(h.retry_after_at == kNow + 7);
    CHECK(h.PauseUntil() == kNow + 7);
  }
  SUBCASE("Retry-After HTTP-date") {
    auto h =
        ParseRateHints(Answer(429, "", {{"Retry-After", "Tue, 14 Nov 2023 22:13:30 GMT"}}), kNow);
    CHECK(h.retry_after_at == 1700000010.0);
  }
  SUBCASE("x-ratelimit-reset is an epoch") {
    auto h = ParseRateHints(Answer(200, "",
                                   {{"X-RateLimit-Limit", "1000"},
                                    {"x-ratelimit-remaining", "0"},
                                    {"x-ratelimit-reset", "1700000060"}}),
                            kNow);
    CHECK(h.limit == 1000.0);
    CHECK(h.PauseUntil() == 1700000060.0);
  }
  SUBCASE("RateLimit-Reset is seconds from now") {
    auto h = ParseRateHints(
        Answer(200, "", {{"RateLimit-Remaining", "0"}, {"RateLimit-Reset", "5"}}), kNow);
    CHECK(h.PauseUntil() == kNow + 5);
  }
  SUBCASE("remaining above zero does not pause") {
    auto h = ParseRateHints(
        Answer(200, "", {{"RateLimit-Remaining", "3"}, {"RateLimit-Reset", "5"}}), kNow);
    CHECK_FALSE(h.PauseUntil().has_value());
  }
  SUBCASE("garbage is ignored") {
    auto h = ParseRateHints(Answer(429, "", {{"Retry-After", "soon"}, {"x-ratelimit-reset", "-1"}}),
                            kNow);
    CHECK_FALSE(h.PauseUntil().has_value());
  }
}

TEST_CASE("every type lists its keys and refuses unknown types") {
  CHECK(ProviderTypes().size() == 6);
  for (const char* t : ProviderTypes()) CHECK_FALSE(ProviderKeys(t).empty());
  CHECK(ProviderKeys("carrier_pigeon").empty());
  ProviderSettings s{"x", "carrier_pigeon", {}, {}};
  std::string error;
  CHECK(NewProvider(s, &error) == nullptr);
  CHECK(error.find("carrier_pigeon") != std::string::npos);
}

TEST_CASE("RedactUrl drops credentials in the query and userinfo") {
  CHECK(RedactUrl("https://api.moost.io/auth/token/v1?clientId=a&clientSecret=b") ==
        "https://api.moost.io/auth/token/v1?REDACTED");
  CHECK(RedactUrl("https://user:pass@host/p#frag") == "https://host/p");
  CHECK(RedactUrl("http://host/path") == "http://host/path");
}

}  // namespace
}  // namespace outboxd::providers
