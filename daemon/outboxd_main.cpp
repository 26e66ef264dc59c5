#include <cstdio>
int main() {
  std::printf("outboxd %s\n", OUTBOXD_VERSION);
  return 0;
}
