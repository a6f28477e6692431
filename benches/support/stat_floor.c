/* The least a counting run can cost here, for comparison with `ruperf stat`: a C program that
 * counts task-clock for `true` the way ruperf does (the counter opened disabled on this thread
 * with inherit and enable_on_exec, the command started by vfork and exec, waited for, the
 * count read and one CSV line written to /dev/null), with nothing else: no option parsing, no
 * event names, no error messages.
 */
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_SOFTWARE;
    a.config = PERF_COUNT_SW_TASK_CLOCK;
    a.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
    a.disabled = 1;
    a.inherit = 1;
    a.enable_on_exec = 1;
    int fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0)
        return 1;
    pid_t pid = vfork();
    if (pid == 0) {
        execlp("true", "true", (char *)0);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return 1;
    uint64_t v[3];
    if (read(fd, v, sizeof v) != sizeof v)
        return 1;
    int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    dprintf(out, "%.2f,msec,task-clock,%llu,%.2f,,\n", v[0] / 1e6, (unsigned long long)v[1],
            v[1] ? 100.0 * v[2] / v[1] : 0.0);
    return WEXITSTATUS(status);
}
