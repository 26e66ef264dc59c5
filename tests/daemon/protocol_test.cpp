// Request lines: numbers parse to the values their text means, and bad
// lines are refused with the reason.
#include "daemon/protocol.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>

namespace outboxd {
namespace {

std::string Serialized(const rapidjson::Value& v) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  v.Accept(w);
  return out.GetString();
}

TEST_CASE("numbers keep their exact values and types, zero significands included") {
  rapidjson::Document d;
  std::string error;
  REQUIRE_MESSAGE(
      ParseRequestLine(R"({"op":"enqueue","event":{"zero_exp":0e67,"tiny_zero":0.000e-400,)"
                       R"("tenth":0.1,"neg_zero":-0,"u64":18446744073709551615,)"
                       R"("i64":-9223372036854775808,"under":1e-400,)"
                       R"("big":123456789012345678901234567890,"small":-7,"n":42,)"
                       R"("subnormal":2.2250738585072011e-308}})",
                       &d, &error),
      error);
  const rapidjson::Value& e = d["event"];
  CHECK(e["zero_exp"].IsDouble());
  CHECK(e["zero_exp"].GetDouble() == 0.0);
  CHECK(e["tiny_zero"].GetDouble() == 0.0);
  CHECK(e["tenth"].GetDouble() == 0.1);
  CHECK(e["neg_zero"].IsInt());
  CHECK(e["u64"].IsUint64());
  CHECK(e["u64"].GetUint64() == std::numeric_limits<uint64_t>::max());
  CHECK(e["i64"].IsInt64());
  CHECK(e["i64"].GetInt64() == std::numeric_limits<int64_t>::min());
  CHECK(e["under"].GetDouble() == 0.0);
  CHECK(e["big"].IsDouble());
  CHECK(e["big"].GetDouble() == 123456789012345678901234567890.0);
  CHECK(e["small"].GetInt() == -7);
  CHECK(e["n"].IsInt());
  CHECK(e["n"].GetInt() == 42);
  CHECK(e["subnormal"].GetDouble() == 2.2250738585072011e-308);
  // Written back, a number reads as it was sent.
  CHECK(Serialized(e["tenth"]) == "0.1");
  CHECK(Serialized(e["u64"]) == "18446744073709551615");
}

TEST_CASE("bad lines are refused with where and why") {
  rapidjson::Document d;
  std::string error;
  CHECK_FALSE(ParseRequestLine(R"({"op":"enqueue","event":{"x":1e400}})", &d, &error));
  CHECK(error.find("Number too big") != std::string::npos);
  CHECK_FALSE(ParseRequestLine(R"({"op":"ping",})", &d, &error));
  CHECK(error.find("invalid JSON at byte 13") != std::string::npos);
  CHECK_FALSE(ParseRequestLine(R"({"op":"ping"} {"op":"ping"})", &d, &error));
  CHECK(error.find("invalid JSON") != std::string::npos);
  CHECK_FALSE(ParseRequestLine(R"([1,2])", &d, &error));
  CHECK(error == "request must be a JSON object");
}

}  // namespace
}  // namespace outboxd
