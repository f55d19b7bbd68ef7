/*
 * The Linux floor under devmux's signalling, measured on the same machine
 * in the same run: two bare processes (no devmux, no sandbox) doing
 * eventfd ping-pong and AF_UNIX SOCK_SEQPACKET request/reply.
 * Usage: baseline CPU_A CPU_B ROUNDS
 */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    sched_setaffinity(0, sizeof(s), &s);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s CPU_A CPU_B ROUNDS\n", argv[0]);
        return 2;
    }
    int ca = atoi(argv[1]), cb = atoi(argv[2]);
    long rounds = atol(argv[3]);
    int to_b = eventfd(0, 0), to_a = eventfd(0, 0), sv[2];
    if (to_a < 0 || to_b < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv))
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        pin(cb);
        uint64_t v;
        for (long i = 0; i < rounds; i++) {
            if (read(to_b, &v, 8) != 8 || write(to_a, &v, 8) != 8)
                _exit(1);
        }
        char buf[520];
        for (long i = 0; i < rounds; i++) {
            ssize_t n = recv(sv[1], buf, sizeof(buf), 0);
            if (n <= 0 || send(sv[1], buf, (size_t)n, 0) != n)
                _exit(1);
        }
        _exit(0);
    }
    pin(ca);
    uint64_t one = 1, v;
    uint64_t t0 = now_ns();
    for (long i = 0; i < rounds; i++)
        if (write(to_b, &one, 8) != 8 || read(to_a, &v, 8) != 8)
            return 1;
    uint64_t t1 = now_ns();
    char buf[520] = {0};
    for (long i = 0; i < rounds; i++)
        if (send(sv[0], buf, 16, 0) != 16 || recv(sv[0], buf, sizeof(buf), 0) != 16)
            return 1;
    uint64_t t2 = now_ns();
    int st;
    waitpid(pid, &st, 0);
    printf("RESULT linux-eventfd n=%ld per=%.1fns round-trip\n", rounds,
           (double)(t1 - t0) / (double)rounds);
    printf("RESULT linux-seqpacket n=%ld per=%.1fns round-trip\n", rounds,
           (double)(t2 - t1) / (double)rounds);
    return 0;
}
