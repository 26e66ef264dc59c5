#include <fmt/format.h>

#include <array>

#include "providers/types.h"

namespace outboxd::providers {
namespace {

const std::array<TypeInfo, 6>& Types() {
  static const std::array<TypeInfo, 6> types = {{
      {"moost", MoostKeys(), NewMoost},
      {"novu", NovuKeys(), NewNovu},
      {"moengage", MoEngageKeys(), NewMoEngage},
      {"customer_insights", CustomerInsightsKeys(), NewCustomerInsights},
      {"pusher_beams", PusherBeamsKeys(), NewPusherBeams},
      {"webhook", WebhookKeys(), NewWebhook},
  }};
  return types;
}

const char* const kTypeNames[] = {"moost",        "novu",   "moengage", "customer_insights",
                                  "pusher_beams", "webhook"};

}  // namespace

std::span<const char* const> ProviderTypes() { return kTypeNames; }

std::span<const KeySpec> ProviderKeys(std::string_view type) {
  for (const auto& t : Types()) {
    if (type == t.type) return t.keys;
  }
  return {};
}

std::unique_ptr<Provider> NewProvider(const ProviderSettings& settings, std::string* error) {
  for (const auto& t : Types()) {
    if (settings.type == t.type) return t.make(settings, error);
  }
  *error = fmt::format("type: unknown provider type \"{}\"", settings.type);
  return nullptr;
}

}  // namespace outboxd::providers
