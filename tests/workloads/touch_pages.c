/* Maps K anonymous pages (argv[1]) and touches each once: K minor page faults plus start-up. */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long k = argc > 1 ? atol(argv[1]) : 1000;
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, k * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 2;
    for (long i = 0; i < k; i++)
        p[i * page] = 1;
    return 0;
}
