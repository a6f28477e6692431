/* A hot loop whose body is an always-inlined function: at -O2 with -g, the sampled addresses
 * stand for two functions, mix (inlined) inside work. Built by the pprof test with -O2. */
#include <stdlib.h>

static inline __attribute__((always_inline)) unsigned long mix(unsigned long x) {
    return x * 6364136223846793005UL + 1442695040888963407UL;
}

__attribute__((noinline)) unsigned long work(long n) {
    unsigned long h = 1;
    for (long i = 0; i < n; i++)
        h = mix(h ^ (unsigned long)i);
    return h;
}

volatile unsigned long sink;

int main(int argc, char **argv) {
    sink = work(argc > 1 ? atol(argv[1]) : 200000000);
    return 0;
}
