/* A CPU-bound workload with a known profile for `ruperf report` tests.
 *
 * main -> run -> caller_a -> hot_spin   (about 3/4 of the hot work)
 *             -> caller_b -> hot_spin   (about 1/4)
 *             -> warm_spin              (a smaller, separate hot spot)
 *
 * Usage: report_hot [ITERATIONS]   (default 40; each iteration is roughly 10 ms)
 */
#include <stdlib.h>

static volatile unsigned long sink;

/* Called by the spinning functions so that they are not leaf functions: GCC leaves the frame
 * pointer out of leaves, which would hide their callers from frame-pointer call chains. */
__attribute__((noinline)) void publish(unsigned long x)
{
    sink = x;
}

__attribute__((noinline)) void hot_spin(unsigned long n)
{
    unsigned long x = 1;
    for (unsigned long i = 0; i < n; i++)
        x = x * 2862933555777941757UL + 3037000493UL;
    publish(x);
}

__attribute__((noinline)) void warm_spin(unsigned long n)
{
    unsigned long x = 7;
    for (unsigned long i = 0; i < n; i++)
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    publish(x);
}

/* The stores after each call keep the calls from becoming tail jumps, so that the callers
 * stay in the frame-pointer call chains. */
__attribute__((noinline)) void caller_a(unsigned long n)
{
    hot_spin(3 * n);
    sink++;
}

__attribute__((noinline)) void caller_b(unsigned long n)
{
    hot_spin(n);
    sink++;
}

__attribute__((noinline)) void run(unsigned long iterations)
{
    const unsigned long chunk = 2000000;
    for (unsigned long i = 0; i < iterations; i++) {
        caller_a(chunk);
        caller_b(chunk);
        warm_spin(chunk);
    }
    sink++;
}

int main(int argc, char **argv)
{
    unsigned long iterations = argc > 1 ? strtoul(argv[1], NULL, 10) : 40;
    run(iterations);
    return (int)(sink & 0);
}
