/* Keeps starting short-lived threads, so that a process's thread list changes all the time. */
#include <pthread.h>
#include <unistd.h>

static void *brief(void *arg) {
    (void)arg;
    usleep(200);
    return 0;
}

int main(void) {
    for (;;) {
        pthread_t t[8];
        for (int i = 0; i < 8; i++)
            pthread_create(&t[i], 0, brief, 0);
        for (int i = 0; i < 8; i++)
            pthread_join(t[i], 0);
    }
}
