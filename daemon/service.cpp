#include "daemon/service.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "daemon/log.h"
#include "daemon/metrics.h"

namespace outboxd {
namespace {

using rapidjson::Value;

std::string_view Str(const Value& v) { return {v.GetString(), v.GetStringLength()}; }

void WriteStr(rapidjson::Writer<rapidjson::StringBuffer>* w, std::string_view s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// Reads an optional non-negative integer member. False with `error` set when
// present but not a fitting integer.
bool OptionalInt(const Value& obj, const char* name, int64_t min, int64_t max, int64_t* out,
                 std::string* error) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return true;
  if (!it->value.IsInt64() || it->value.GetInt64() < min || it->value.GetInt64() > max) {
    *error = fmt::format("{}: must be an integer from {} to {}", name, min, max);
    return false;
  }
  *out = it->value.GetInt64();
  return true;
}

bool OptionalString(const Value& obj, const char* name, std::string* out, std::string* error) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return true;
  if (!it->value.IsString()) {
    *error = fmt::format("{}: must be a string", name);
    return false;
  }
  *out = std::string(Str(it->value));
  return true;
}

// Reads ids/provider/state selectors shared by list, retry and purge.
bool ReadFilter(const Value& req, store::Filter* filter, std::string* error) {
  auto ids = req.FindMember("ids");
  if (ids != req.MemberEnd()) {
    if (!ids->value.IsArray() || ids->value.Empty()) {
      *error = "ids: must be a non-empty array of event ids";
      return false;
    }
    if (ids->value.Size() > 100000) {
      *error = "ids: at most 100000 ids per request";
      return false;
    }
    for (const auto& id : ids->value.GetArray()) {
      if (!id.IsInt64() || id.GetInt64() <= 0) {
        *error = "ids: each id must be a positive integer";
        return false;
      }
      filter->ids.push_back(id.GetInt64());
    }
  }
  if (!OptionalString(req, "provider", &filter->provider, error)) return false;
  std::string state;
  if (!OptionalString(req, "state", &state, error)) return false;
  if (!state.empty()) {
    store::State s;
    if (!store::ParseState(state, &s)) {
      *error = "state: must be one of pending, inflight, delivered, dead";
      return false;
    }
    filter->state = s;
  }
  return true;
}

}  // namespace

void WriteEventJson(const store::Event& e, bool with_body,
                    rapidjson::Writer<rapidjson::StringBuffer>* w) {
  w->StartObject();
  w->Key("id");
  w->Int64(e.id);
  w->Key("provider");
  WriteStr(w, e.provider);
  if (e.key) {
    w->Key("key");
    WriteStr(w, *e.key);
  }
  w->Key("state");
  w->String(store::StateName(e.state));
  w->Key("attempts");
  w->Int(e.attempts);
  w->Key("created_at");
  w->Double(e.created_at);
  w->Key("next_attempt_at");
  w->Double(e.next_attempt_at);
  w->Key("last_status");
  w->Int(e.last_status);
  w->Key("last_error");
  WriteStr(w, e.last_error);
  if (e.state == store::State::kDelivered || e.state == store::State::kDead) {
    w->Key(e.state == store::State::kDelivered ? "delivered_at" : "dead_at");
    w->Double(e.delivered_at);
  }
  if (e.response) {
    w->Key("response");
    WriteStr(w, *e.response);
  }
  if (with_body) {
    w->Key("body");
    WriteStr(w, e.body);
  }
  w->EndObject();
}

Service::Service(store::Store* store, LaneControl* lanes, Clock* clock, ServiceOptions options)
    : store_(store), lanes_(lanes), clock_(clock), options_(options) {}

void Service::SetProviders(std::map<std::string, providers::Provider*, std::less<>> providers) {
  providers_ = std::move(providers);
}

Service::Action Service::Handle(std::string_view line, bool conn_has_deferred, uint64_t ticket,
                                std::string* reply) {
  rapidjson::Document req;
  std::string error;
  if (!ParseRequestLine(line, &req, &error)) {
    ++counters_.bad_requests;
    *reply = ErrorReply(ErrorCode::kBadRequest, error);
    return Action::kReplied;
  }
  auto op_it = req.FindMember("op");
  if (op_it == req.MemberEnd() || !op_it->value.IsString()) {
    ++counters_.bad_requests;
    *reply = ErrorReply(ErrorCode::kBadRequest, "op: must be a string");
    return Action::kReplied;
  }
  std::string_view op = Str(op_it->value);
  if (op == "enqueue") {
    if (shutting_down_) {
      *reply = ErrorReply(ErrorCode::kShuttingDown, "outboxd is shutting down");
      return Action::kReplied;
    }
    bool deferred = false;
    *reply = Enqueue(req, ticket, &deferred);
    return deferred ? Action::kDeferred : Action::kReplied;
  }
  // Any other op must see the effects of this connection's earlier enqueues.
  if (conn_has_deferred) return Action::kAfterCommit;
  if (op == "ping") {
    ReplyWriter r;
    r.w().Key("version");
    r.w().String(OUTBOXD_VERSION);
    *reply = r.Finish();
  } else if (shutting_down_) {
    *reply = ErrorReply(ErrorCode::kShuttingDown, "outboxd is shutting down");
  } else if (op == "get") {
    *reply = Get(req);
  } else if (op == "list") {
    *reply = List(req);
  } else if (op == "stats") {
    *reply = Stats();
  } else if (op == "retry") {
    *reply = RetryOrPurge(req, true);
  } else if (op == "purge") {
    *reply = RetryOrPurge(req, false);
  } else if (op == "pause") {
    *reply = Pause(req, true);
  } else if (op == "resume") {
    *reply = Pause(req, false);
  } else if (op == "metrics") {
    *reply = Metrics();
  } else {
    *reply = ErrorReply(ErrorCode::kUnknownOp, fmt::format("unknown op \"{}\"", op));
  }
  return Action::kReplied;
}

std::string Service::Enqueue(const rapidjson::Document& req, uint64_t ticket, bool* deferred) {
  for (const auto& m : req.GetObject()) {
    std::string_view name = Str(m.name);
    if (name != "op" && name != "provider" && name != "event" && name != "events" &&
        name != "key" && name != "keys") {
      ++counters_.bad_requests;
      return ErrorReply(ErrorCode::kBadRequest, fmt::format("{}: unknown field", name));
    }
  }
  auto prov_it = req.FindMember("provider");
  if (prov_it == req.MemberEnd() || !prov_it->value.IsString()) {
    ++counters_.bad_requests;
    return ErrorReply(ErrorCode::kBadRequest, "provider: must be a string");
  }
  std::string_view name = Str(prov_it->value);
  auto p = providers_.find(name);
  if (p == providers_.end()) {
    return ErrorReply(ErrorCode::kUnknownProvider,
                      fmt::format("no provider named \"{}\" is configured", name));
  }
  auto event_it = req.FindMember("event");
  auto events_it = req.FindMember("events");
  bool single = event_it != req.MemberEnd();
  if (single == (events_it != req.MemberEnd())) {
    ++counters_.bad_requests;
    return ErrorReply(ErrorCode::kBadRequest, "enqueue needs exactly one of event or events");
  }
  std::vector<const Value*> events;
  std::vector<std::string_view> keys;
  if (single) {
    if (!event_it->value.IsObject()) {
      ++counters_.invalid;
      return ErrorReply(ErrorCode::kInvalidEvent, "event: must be an object");
    }
    events.push_back(&event_it->value);
    auto key_it = req.FindMember("key");
    if (key_it != req.MemberEnd()) {
      if (!key_it->value.IsString() || key_it->value.GetStringLength() == 0 ||
          key_it->value.GetStringLength() > 255) {
        ++counters_.bad_requests;
        return ErrorReply(ErrorCode::kBadRequest, "key: must be a string of 1 to 255 bytes");
      }
      keys.push_back(Str(key_it->value));
    } else {
      keys.emplace_back();
    }
    if (req.HasMember("keys")) {
      ++counters_.bad_requests;
      return ErrorReply(ErrorCode::kBadRequest, "keys: goes with events, not event");
    }
  } else {
    const Value& arr = events_it->value;
    if (!arr.IsArray() || arr.Empty()) {
      ++counters_.bad_requests;
      return ErrorReply(ErrorCode::kBadRequest, "events: must be a non-empty array");
    }
    if (arr.Size() > options_.max_batch) {
      ++counters_.bad_requests;
      return ErrorReply(ErrorCode::kBadRequest,
                        fmt::format("events: {} events, more than the limit of {} per request",
                                    arr.Size(), options_.max_batch));
    }
    if (req.HasMember("key")) {
      ++counters_.bad_requests;
      return ErrorReply(ErrorCode::kBadRequest, "key: goes with event; use keys with events");
    }
    auto keys_it = req.FindMember("keys");
    if (keys_it != req.MemberEnd() &&
        (!keys_it->value.IsArray() || keys_it->value.Size() != arr.Size())) {
      ++counters_.bad_requests;
      return ErrorReply(ErrorCode::kBadRequest,
                        "keys: must be an array as long as events (null for no key)");
    }
    for (rapidjson::SizeType i = 0; i < arr.Size(); ++i) {
      events.push_back(&arr[i]);
      std::string_view key;
      if (keys_it != req.MemberEnd()) {
        const Value& k = keys_it->value[i];
        if (!k.IsNull()) {
          if (!k.IsString() || k.GetStringLength() == 0 || k.GetStringLength() > 255) {
            ++counters_.bad_requests;
            return ErrorReply(
                ErrorCode::kBadRequest,
                fmt::format("keys[{}]: must be null or a string of 1 to 255 bytes", i));
          }
          key = Str(k);
        }
      }
      keys.push_back(key);
    }
  }

  Deferred d;
  d.ticket = ticket;
  d.single = single;
  d.events.reserve(events.size());
  const double now = clock_->Now();
  for (size_t i = 0; i < events.size(); ++i) {
    providers::Validated v;
    std::string error;
    std::string prefix = single ? "" : fmt::format("events[{}].", i);
    if (!events[i]->IsObject()) {
      ++counters_.invalid;
      return ErrorReply(
          ErrorCode::kInvalidEvent,
          single ? "event: must be an object" : fmt::format("events[{}]: must be an object", i));
    }
    if (!p->second->Validate(*events[i], keys[i], now, &v, &error)) {
      ++counters_.invalid;
      return ErrorReply(ErrorCode::kInvalidEvent, prefix + error);
    }
    store::NewEvent e;
    e.provider = p->first;
    e.key = std::string(keys[i]);
    e.route = std::move(v.route);
    e.body = std::move(v.body);
    e.created_at = now;
    d.events.push_back(std::move(e));
  }
  deferred_.push_back(std::move(d));
  *deferred = true;
  return {};
}

void Service::Commit(const std::function<void(uint64_t, std::string)>& done) {
  if (deferred_.empty()) return;
  std::vector<std::vector<store::NewEvent>> batches;
  batches.reserve(deferred_.size());
  for (auto& d : deferred_) batches.push_back(std::move(d.events));
  std::vector<store::BatchResult> results;
  store::Status s = store_->Enqueue(batches, &results);
  if (!s.ok()) {
    OUTBOXD_LOG_ERROR("enqueue of {} requests failed: {}", batches.size(), s.ToString());
  }
  std::vector<std::string> touched;
  for (size_t i = 0; i < deferred_.size(); ++i) {
    const Deferred& d = deferred_[i];
    const store::BatchResult& r = results[i];
    if (!r.status.ok()) {
      done(d.ticket, StoreError(r.status));
      continue;
    }
    ReplyWriter w;
    size_t dups = 0;
    if (d.single) {
      w.w().Key("id");
      w.w().Int64(r.ids[0].id);
      w.w().Key("duplicate");
      w.w().Bool(r.ids[0].duplicate);
      dups = r.ids[0].duplicate ? 1 : 0;
    } else {
      w.w().Key("ids");
      w.w().StartArray();
      for (const auto& id : r.ids) {
        w.w().Int64(id.id);
        dups += id.duplicate ? 1 : 0;
      }
      w.w().EndArray();
      w.w().Key("duplicates");
      w.w().StartArray();
      for (size_t j = 0; j < r.ids.size(); ++j) {
        if (r.ids[j].duplicate) w.w().Uint64(j);
      }
      w.w().EndArray();
    }
    counters_.enqueued += r.ids.size() - dups;
    counters_.duplicates += dups;
    if (dups < r.ids.size()) touched.push_back(batches[i].front().provider);
    done(d.ticket, w.Finish());
  }
  deferred_.clear();
  for (const auto& name : touched) lanes_->Notify(name);
}

std::string Service::StoreError(const store::Status& status) {
  if (status.code() == store::Code::kFull) {
    ++counters_.queue_full;
    return ErrorReply(ErrorCode::kQueueFull, status.message());
  }
  if (status.code() == store::Code::kNotFound) {
    return ErrorReply(ErrorCode::kNotFound, status.message());
  }
  if (status.code() == store::Code::kInvalid) {
    return ErrorReply(ErrorCode::kBadRequest, status.message());
  }
  return ErrorReply(ErrorCode::kInternal, status.ToString());
}

std::string Service::Get(const rapidjson::Document& req) {
  auto it = req.FindMember("id");
  if (it == req.MemberEnd() || !it->value.IsInt64() || it->value.GetInt64() <= 0) {
    return ErrorReply(ErrorCode::kBadRequest, "id: must be a positive integer");
  }
  store::Event e;
  store::Status s = store_->Get(it->value.GetInt64(), &e);
  if (s.code() == store::Code::kNotFound) {
    return ErrorReply(ErrorCode::kNotFound,
                      fmt::format("no event with id {}", it->value.GetInt64()));
  }
  if (!s.ok()) return StoreError(s);
  ReplyWriter w;
  w.w().Key("event");
  WriteEventJson(e, true, &w.w());
  return w.Finish();
}

std::string Service::List(const rapidjson::Document& req) {
  store::Filter filter;
  std::string error;
  int64_t limit = 100, after_id = 0;
  if (!ReadFilter(req, &filter, &error) || !OptionalInt(req, "limit", 1, 1000, &limit, &error) ||
      !OptionalInt(req, "after_id", 0, std::numeric_limits<int64_t>::max(), &after_id, &error)) {
    return ErrorReply(ErrorCode::kBadRequest, error);
  }
  std::vector<store::Event> events;
  store::Status s = store_->List(filter, after_id, static_cast<int>(limit), &events);
  if (!s.ok()) return StoreError(s);
  ReplyWriter w;
  w.w().Key("events");
  w.w().StartArray();
  for (const auto& e : events) WriteEventJson(e, true, &w.w());
  w.w().EndArray();
  return w.Finish();
}

store::Status Service::ReadStats(std::map<std::string, store::ProviderStats>* stats, int64_t* used,
                                 int64_t* file) {
  store::Status s = store_->Stats(stats);
  if (s.ok()) s = store_->Size(used, file);
  return s;
}

std::string Service::Stats() {
  std::map<std::string, store::ProviderStats> stats;
  int64_t used = 0, file = 0;
  store::Status s = ReadStats(&stats, &used, &file);
  if (!s.ok()) return StoreError(s);
  const double now = clock_->Now();
  ReplyWriter w;
  w.w().Key("providers");
  w.w().StartObject();
  // Configured providers first (even with no rows), then rows of providers
  // no longer configured.
  std::vector<std::string> names;
  for (const auto& [name, p] : providers_) names.push_back(name);
  for (const auto& [name, st] : stats) {
    if (!providers_.count(name)) names.push_back(name);
  }
  for (const auto& name : names) {
    store::ProviderStats st;
    if (auto it = stats.find(name); it != stats.end()) st = it->second;
    w.w().Key(name.c_str());
    w.w().StartObject();
    for (int i = 0; i < store::kStateCount; ++i) {
      w.w().Key(store::StateName(static_cast<store::State>(i)));
      w.w().Int64(st.count[i]);
    }
    w.w().Key("oldest_pending_age_s");
    w.w().Double(
        st.oldest_pending_created_at > 0 ? std::max(0.0, now - st.oldest_pending_created_at) : 0.0);
    w.w().Key("next_attempt_at");
    w.w().Double(st.next_attempt_at);
    LaneControl::LaneInfo info;
    if (lanes_->Describe(name, &info)) {
      w.w().Key("state");
      WriteStr(&w.w(), info.state);
      w.w().Key("paused_until");
      w.w().Double(info.paused_until);
      w.w().Key("rate_limit");
      WriteStr(&w.w(), info.rate_limit);
      w.w().Key("in_flight");
      w.w().Int(info.in_flight);
      w.w().Key("last_error");
      WriteStr(&w.w(), info.last_error);
    } else {
      w.w().Key("state");
      w.w().String("unconfigured");
    }
    w.w().EndObject();
  }
  w.w().EndObject();
  w.w().Key("db_bytes");
  w.w().Int64(used);
  w.w().Key("db_file_bytes");
  w.w().Int64(file);
  return w.Finish();
}

std::string Service::RetryOrPurge(const rapidjson::Document& req, bool retry) {
  store::Filter filter;
  std::string error;
  if (!ReadFilter(req, &filter, &error)) return ErrorReply(ErrorCode::kBadRequest, error);
  if (filter.ids.empty() && filter.provider.empty() && !filter.state) {
    return ErrorReply(ErrorCode::kBadRequest,
                      fmt::format("{} needs ids, provider or state", retry ? "retry" : "purge"));
  }
  if (!filter.provider.empty() && !providers_.count(filter.provider) && retry) {
    return ErrorReply(ErrorCode::kUnknownProvider,
                      fmt::format("no provider named \"{}\" is configured", filter.provider));
  }
  if (retry && !filter.state && filter.ids.empty()) filter.state = store::State::kDead;
  int64_t count = 0;
  store::Status s =
      retry ? store_->Retry(filter, clock_->Now(), &count) : store_->Purge(filter, &count);
  if (!s.ok()) return StoreError(s);
  OUTBOXD_LOG_INFO("{}: {} events (provider={}, state={}, ids={})", retry ? "retry" : "purge",
                   count, filter.provider.empty() ? "*" : filter.provider,
                   filter.state ? store::StateName(*filter.state) : "*", filter.ids.size());
  if (retry && count > 0) {
    if (!filter.provider.empty()) {
      lanes_->Notify(filter.provider);
    } else {
      for (const auto& [name, p] : providers_) lanes_->Notify(name);
    }
  }
  ReplyWriter w;
  w.w().Key("count");
  w.w().Int64(count);
  return w.Finish();
}

std::string Service::Pause(const rapidjson::Document& req, bool paused) {
  auto it = req.FindMember("provider");
  if (it == req.MemberEnd() || !it->value.IsString()) {
    return ErrorReply(ErrorCode::kBadRequest, "provider: must be a string");
  }
  std::string_view name = Str(it->value);
  if (!lanes_->SetPaused(name, paused)) {
    return ErrorReply(ErrorCode::kUnknownProvider,
                      fmt::format("no provider named \"{}\" is configured", name));
  }
  OUTBOXD_LOG_INFO("provider {} {} by request", name, paused ? "paused" : "resumed");
  ReplyWriter w;
  return w.Finish();
}

std::string Service::Metrics() {
  std::map<std::string, store::ProviderStats> stats;
  int64_t used = 0, file = 0;
  store::Status s = ReadStats(&stats, &used, &file);
  if (!s.ok()) return StoreError(s);
  std::string text = FormatMetrics(stats, used, file, counters_, clock_->Now());
  lanes_->AppendMetrics(&text);
  ReplyWriter w;
  w.w().Key("text");
  WriteStr(&w.w(), text);
  return w.Finish();
}

}  // namespace outboxd
