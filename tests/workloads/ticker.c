/* Runs until killed, writing one byte to /dev/null every millisecond: a target for -p and -a. */
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    int fd = open("/dev/null", O_WRONLY);
    struct timespec ms = {0, 1000000};
    for (;;) {
        if (write(fd, "x", 1) != 1)
            return 3;
        nanosleep(&ms, NULL);
    }
}
