// Provider: what one provider API expects, as three pure jobs.
//
//   Validate  an event at enqueue -> the exact body bytes to store and the
//             route parameters (or an error naming the field and the rule);
//   Build     the HTTP request from a stored row;
//   Classify  the answer into a verdict for the scheduler.
//
// Providers know nothing of SQLite, sockets or time sources: the caller passes
// `now` (Unix epoch seconds). Providers needing a token (MOOST) also produce
// the token request and digest its answer; the scheduler sends it.
//
// Thread rules: a Provider is used from one thread.
#ifndef OUTBOXD_PROVIDERS_PROVIDER_H_
#define OUTBOXD_PROVIDERS_PROVIDER_H_

#include <rapidjson/document.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "providers/http.h"

namespace outboxd::providers {

// A rate: `count` per `period_s` seconds.
struct Rate {
  double count = 0;
  double period_s = 1;
  double per_second() const { return count / period_s; }
};

// One endpoint of a provider, with its own default limit. Events of one
// endpoint share a token bucket; `cost` per request is given by EndpointOf.
struct Endpoint {
  std::string name;       // "recommendations", "events", "default", ...
  Rate default_limit;     // count <= 0: no documented limit
  std::string limit_key;  // configuration key that overrides it ("rate_limit" for the first)
};

// What Validate produces: stored once, sent unchanged on every attempt.
struct Validated {
  std::string body;   // exact request body bytes
  std::string route;  // provider-defined routing parameters (e.g. JSON of path parts)
};

// A stored row, as a provider needs to see it.
struct StoredEvent {
  int64_t id = 0;
  std::string_view key;  // the client's idempotency key, may be empty
  std::string_view route;
  std::string_view body;
  double created_at = 0;
  int attempts = 0;
  int generation = 0;   // bumped after a verdict with next_generation
  int last_status = 0;  // the previous attempt's HTTP status, 0 if none
};

enum class VerdictKind {
  kDelivered,    // done; keep `response` if set
  kRetry,        // transient: try again (at retry_at if set, else backoff)
  kPermanent,    // dead now, with status and reason
  kRateLimited,  // 429-like: pause the lane until lane_pause_until; costs no attempt
  kOffline,      // no HTTP answer (DNS, connect, TLS, timeout, reset)
  kRefreshAuth,  // credentials rejected: fetch a new token, retry once, no attempt
};
const char* VerdictKindName(VerdictKind kind);

struct Verdict {
  VerdictKind kind = VerdictKind::kRetry;
  int status = 0;                          // HTTP status, 0 if none
  std::string reason;                      // short, no secrets
  std::optional<std::string> response;     // kDelivered: body to keep
  double retry_at = 0;                     // kRetry: not before (0: use backoff)
  bool next_generation = false;            // kRetry: new request identity (Novu replayed 5xx)
  std::optional<double> lane_pause_until;  // from rate-limit headers, any kind
};

// Rate-limit hints read from an answer's headers. All times absolute epoch s.
struct RateHints {
  std::optional<double> limit;
  std::optional<double> remaining;
  std::optional<double> reset_at;        // x-ratelimit-reset / RateLimit-Reset
  std::optional<double> retry_after_at;  // Retry-After (seconds or HTTP-date)
  // When the lane must not send before: retry_after_at, or reset_at when
  // remaining is 0. nullopt if the headers do not say.
  std::optional<double> PauseUntil() const;
};
// Parses Retry-After (delta seconds or HTTP-date), x-ratelimit-* (reset is
// epoch seconds) and RateLimit-* (reset is seconds from now).
RateHints ParseRateHints(const HttpResponse& response, double now);

// Result of digesting a token answer.
struct AuthResult {
  bool ok = false;
  bool permanent = false;  // credentials refused: retrying will not help
  std::string reason;
  double retry_at = 0;  // when not ok and not permanent
};

class Provider {
 public:
  virtual ~Provider() = default;

  virtual const std::string& name() const = 0;  // configured name
  virtual const std::string& type() const = 0;  // "novu", ...

  // Endpoints and their default limits; never empty.
  virtual std::span<const Endpoint> endpoints() const = 0;
  // Index into endpoints() and the bucket cost of this stored event.
  virtual std::pair<size_t, double> EndpointOf(const StoredEvent& event) const = 0;

  // Checks `event` (the request's "event" object) against the provider's
  // rules. On success fills `out` and returns true; otherwise sets `error`
  // to a message naming the field and the rule ("subscriberId: must be a
  // non-empty string") and returns false. `key` is the client's key (may be
  // empty); `now` fills fields that default to the time of enqueue.
  virtual bool Validate(const rapidjson::Value& event, std::string_view key, double now,
                        Validated* out, std::string* error) const = 0;

  // The request for a stored event. Uses the current token if any.
  virtual HttpRequest Build(const StoredEvent& event, double now) const = 0;

  // The verdict for an answer (or transport failure) to Build(event).
  virtual Verdict Classify(const StoredEvent& event, const HttpResponse& response, double now) = 0;

  // Token handling. NeedsAuth is true while no valid token is held (none
  // yet, near its expiry, or invalidated by a kRefreshAuth verdict); then
  // the scheduler sends AuthRequest() alone and passes the answer to
  // HandleAuthResponse before any event request.
  virtual bool NeedsAuth(double /*now*/) const { return false; }
  virtual HttpRequest AuthRequest(double /*now*/) const { return {}; }
  virtual AuthResult HandleAuthResponse(const HttpResponse& /*response*/, double /*now*/) {
    return {true, false, {}, 0};
  }
};

// Configuration of one provider, as read from [providers.NAME]. Secrets are
// already resolved. Common keys (base_url, rate_limit, concurrency, timeout,
// ca_file) are in `values` too.
struct ProviderSettings {
  std::string name;
  std::string type;
  std::map<std::string, std::string> values;
  std::map<std::string, std::map<std::string, std::string>> tables;  // e.g. webhook headers
};

// A configuration key a provider type accepts.
struct KeySpec {
  const char* name;
  bool required;
  bool secret;  // accepts file:/env: and is never printed
  bool table;   // a TOML table of strings (e.g. headers)
  const char* help;
};

// The types there are: "moost", "novu", "moengage", "customer_insights",
// "pusher_beams", "webhook".
std::span<const char* const> ProviderTypes();
// Keys a type accepts beyond the common ones; empty span for unknown types.
std::span<const KeySpec> ProviderKeys(std::string_view type);

// Builds a provider. On a bad setting returns nullptr and sets `error` to
// "<key>: <reason>".
std::unique_ptr<Provider> NewProvider(const ProviderSettings& settings, std::string* error);

}  // namespace outboxd::providers

#endif  // OUTBOXD_PROVIDERS_PROVIDER_H_
