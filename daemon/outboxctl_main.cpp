#include <cstdio>
int main() {
  std::printf("outboxctl %s\n", OUTBOXD_VERSION);
  return 0;
}
