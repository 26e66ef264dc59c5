// Helpers for provider tests: build a provider from settings, validate an
// event given as JSON text, turn the result into a stored event.
#ifndef OUTBOXD_TESTS_PROVIDERS_PROVIDER_UTIL_H_
#define OUTBOXD_TESTS_PROVIDERS_PROVIDER_UTIL_H_

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <map>
#include <memory>
#include <string>

#include "providers/provider.h"

namespace outboxd::testing {

inline std::unique_ptr<providers::Provider> MakeProvider(
    const std::string& type, std::map<std::string, std::string> values,
    std::map<std::string, std::map<std::string, std::string>> tables = {}) {
  providers::ProviderSettings s{type, type, std::move(values), std::move(tables)};
  std::string error;
  auto p = providers::NewProvider(s, &error);
  REQUIRE_MESSAGE(p != nullptr, error);
  return p;
}

inline std::string SettingsError(const std::string& type,
                                 std::map<std::string, std::string> values) {
  providers::ProviderSettings s{type, type, std::move(values), {}};
  std::string error;
  auto p = providers::NewProvider(s, &error);
  CHECK(p == nullptr);
  return error;
}

// A validated event kept the way the store keeps it.
struct Kept {
  std::string key, route, body;
  double created_at = 0;
  int attempts = 0, generation = 0, last_status = 0;
  providers::StoredEvent View() const {
    providers::StoredEvent e;
    e.id = 1;
    e.key = key;
    e.route = route;
    e.body = body;
    e.created_at = created_at;
    e.attempts = attempts;
    e.generation = generation;
    e.last_status = last_status;
    return e;
  }
};

inline Kept ValidateOk(providers::Provider* p, const std::string& json, double now = 1.7e9,
                       const std::string& key = "") {
  rapidjson::Document d;
  d.Parse(json.c_str());
  REQUIRE(!d.HasParseError());
  providers::Validated v;
  std::string error;
  bool ok = p->Validate(d, key, now, &v, &error);
  REQUIRE_MESSAGE(ok, error);
  return Kept{key, v.route, v.body, now};
}

inline std::string ValidateError(providers::Provider* p, const std::string& json,
                                 double now = 1.7e9) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  REQUIRE(!d.HasParseError());
  providers::Validated v;
  std::string error;
  CHECK_FALSE(p->Validate(d, "", now, &v, &error));
  return error;
}

inline providers::HttpResponse Answer(int status, std::string body = "",
                                      std::vector<providers::Header> headers = {}) {
  providers::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

inline providers::HttpResponse Failure(providers::TransportError e) {
  providers::HttpResponse r;
  r.error = e;
  r.error_message = "simulated";
  return r;
}

inline std::string HeaderOf(const providers::HttpRequest& r, const std::string& name) {
  for (const auto& h : r.headers) {
    if (h.name == name) return h.value;
  }
  return "<absent>";
}

}  // namespace outboxd::testing

#endif  // OUTBOXD_TESTS_PROVIDERS_PROVIDER_UTIL_H_
