#include "daemon/units.h"

#include <doctest/doctest.h>

namespace outboxd {
namespace {

TEST_CASE("durations, sizes and rates parse as documented") {
  double s;
  std::string e;
  CHECK((ParseDuration("500ms", &s, &e) && s == 0.5));
  CHECK((ParseDuration("1h30m", &s, &e) && s == 5400));
  CHECK((ParseDuration("7d", &s, &e) && s == 604800));
  CHECK((ParseDuration("45", &s, &e) && s == 45));
  CHECK_FALSE(ParseDuration("", &s, &e));
  CHECK_FALSE(ParseDuration("5 parsecs", &s, &e));
  CHECK_FALSE(ParseDuration("-5s", &s, &e));
  int64_t b;
  CHECK((ParseSize("256MiB", &b, &e) && b == 256ll << 20));
  CHECK((ParseSize("1GB", &b, &e) && b == 1000000000));
  CHECK((ParseSize("4096", &b, &e) && b == 4096));
  CHECK_FALSE(ParseSize("12 furlongs", &b, &e));
  providers::Rate r;
  CHECK((ParseRate("20/s", &r, &e) && r.per_second() == 20));
  CHECK((ParseRate("1000/min", &r, &e) && r.count == 1000 && r.period_s == 60));
  CHECK((ParseRate("3600/h", &r, &e) && r.per_second() == 1));
  CHECK_FALSE(ParseRate("0/s", &r, &e));
  CHECK_FALSE(ParseRate("20", &r, &e));
  CHECK_FALSE(ParseRate("20/fortnight", &r, &e));
  CHECK(FormatRate({1000, 60}) == "1000/min");
  CHECK(FormatRate({20, 1}) == "20/s");
  CHECK(FormatRate({0, 1}) == "unlimited");
}

}  // namespace
}  // namespace outboxd
