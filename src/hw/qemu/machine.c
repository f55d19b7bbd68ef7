#include "hw/qemu/machine.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIRMWARE_SIZE 65536
#define MAX_ARGS      96

int qemu_write_firmware(int fd)
{
    static uint8_t fw[FIRMWARE_SIZE];
    memset(fw, 0xf4, sizeof(fw)); /* hlt everywhere */
    /* The reset vector, 16 bytes below 4 GiB: cli; hlt; jmp -3 (to hlt). */
    static const uint8_t reset[] = {0xfa, 0xf4, 0xeb, 0xfd};
    memcpy(fw + 0xfff0, reset, sizeof(reset));
    for (size_t off = 0; off < sizeof(fw);) {
        ssize_t w = write(fd, fw + off, sizeof(fw) - off);
        if (w <= 0)
            return -errno;
        off += (size_t)w;
    }
    return 0;
}

static void child(const char *const *argv, const int *keep, int nkeep, int err_fd)
{
    /* QEMU must not outlive us, and sees only the descriptors it is given. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (err_fd >= 0)
        dup2(err_fd, 2);
    for (int i = 0; i < nkeep; i++)
        fcntl(keep[i], F_SETFD, 0);
    execvp(argv[0], (char *const *)argv);
    fprintf(stderr, "qemu: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int qemu_machine_start(struct qemu_machine *m, size_t ram_size, const char *const *extra,
                       int err_fd, qtest_irq_fn on_irq, void *ctx)
{
    memset(m, 0, sizeof(*m));
    m->pid = -1;
    if (!ram_size || ram_size % (1u << 20))
        return -EINVAL; /* QEMU sizes RAM in MiB */
    m->ram_fd = -1;
    m->qt.fd = -1;
    int fw = memfd_create("devmux:firmware", MFD_CLOEXEC);
    int sv[2] = {-1, -1};
    m->ram_fd = memfd_create("devmux:guest-ram", MFD_CLOEXEC);
    int err = 0;
    if (fw < 0 || m->ram_fd < 0 || ftruncate(m->ram_fd, (off_t)ram_size) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
        err = -errno;
        goto fail;
    }
    if ((err = qemu_write_firmware(fw)))
        goto fail;
    m->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->ram_fd, 0);
    if (m->ram == MAP_FAILED) {
        m->ram = NULL;
        err = -errno;
        goto fail;
    }
    m->ram_size = ram_size;

    char bios[32], mem[96], machine[64], chardev[48], memsz[32];
    snprintf(bios, sizeof(bios), "/dev/fd/%d", fw);
    snprintf(mem, sizeof(mem), "memory-backend-file,id=ram0,size=%zu,mem-path=/dev/fd/%d,share=on",
             ram_size, m->ram_fd);
    snprintf(machine, sizeof(machine), "q35,memory-backend=ram0,pit=off");
    snprintf(chardev, sizeof(chardev), "socket,id=qt,fd=%d", sv[1]);
    snprintf(memsz, sizeof(memsz), "%zuM", ram_size >> 20); /* a bare number means MiB */
    const char *argv[MAX_ARGS] = {"qemu-system-x86_64",
                                  "-machine",
                                  machine,
                                  "-accel",
                                  "tcg",
                                  "-object",
                                  mem,
                                  "-m",
                                  memsz,
                                  "-bios",
                                  bios,
                                  "-display",
                                  "none",
                                  "-nodefaults",
                                  "-no-reboot",
                                  "-chardev",
                                  chardev,
                                  "-object",
                                  "qtest,id=qt0,chardev=qt,log=none"};
    int argc = 0;
    while (argv[argc])
        argc++;
    for (size_t i = 0; extra && extra[i]; i++) {
        if (argc >= MAX_ARGS - 1) {
            err = -E2BIG;
            goto fail;
        }
        argv[argc++] = extra[i];
    }
    argv[argc] = NULL;
    int keep[3] = {fw, m->ram_fd, sv[1]};
    m->pid = fork();
    if (m->pid < 0) {
        err = -errno;
        goto fail;
    }
    if (m->pid == 0)
        child(argv, keep, 3, err_fd);
    close(sv[1]);
    sv[1] = -1;
    close(fw);
    fw = -1;
    qtest_init(&m->qt, sv[0], on_irq, ctx);
    sv[0] = -1;
    /* The first answer proves the machine is up. */
    uint32_t v;
    if ((err = qtest_in(&m->qt, 4, 0xcfc, &v))) {
        fprintf(stderr, "qemu: the machine did not answer on qtest (%s)\n", strerror(-err));
        goto fail;
    }
    return 0;
fail:
    if (fw >= 0)
        close(fw);
    for (int i = 0; i < 2; i++)
        if (sv[i] >= 0)
            close(sv[i]);
    qemu_machine_stop(m);
    return err ? err : -EIO;
}

void qemu_machine_stop(struct qemu_machine *m)
{
    qtest_close(&m->qt);
    if (m->pid > 0) {
        kill(m->pid, SIGKILL);
        while (waitpid(m->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        m->pid = -1;
    }
    if (m->ram)
        munmap(m->ram, m->ram_size);
    m->ram = NULL;
    if (m->ram_fd >= 0)
        close(m->ram_fd);
    m->ram_fd = -1;
}
