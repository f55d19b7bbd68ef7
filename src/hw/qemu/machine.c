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
#define BASE_ARGS     32    /* our own arguments, with room to spare */
#define QMP_START_MS  10000 /* greeting and negotiation of a starting QEMU */

/* ICH9's ACPI PCI hot-plug registers (QEMU's acpi/pcihp.c at 0xcc0): the
 * "down" bits of the selected bus (unplug requests), eject, bus select. */
#define PCIHP_DOWN 0xcc4
#define PCIHP_EJ   0xcc8
#define PCIHP_SEL  0xcd0

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

static void child(const char *const *argv, const int *keep, size_t nkeep, int err_fd)
{
    /* QEMU must not outlive us, and sees only the descriptors it is given.
     * It gets default signal handling (not our blocked mask, not our
     * ignored SIGPIPE), so a plain kill stops it and is a machine fault,
     * and a group of its own, so a terminal's Ctrl-C reaches only us. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setpgid(0, 0);
    if (err_fd >= 0)
        dup2(err_fd, 2);
    for (size_t i = 0; i < nkeep; i++)
        fcntl(keep[i], F_SETFD, 0);
    execvp(argv[0], (char *const *)argv);
    fprintf(stderr, "qemu: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* qom-get of an integer property.  -EREMOTEIO (QEMU's error) when the
 * object or property does not exist. */
static int qom_get_int(struct qmp *q, const char *path, const char *prop, long long *v, char *err,
                       size_t errlen)
{
    json_t *r;
    int rc = qmp_call(q, "qom-get", json_pack("{s:s, s:s}", "path", path, "property", prop), &r,
                      err, errlen);
    if (rc)
        return rc;
    if (!json_is_integer(r)) {
        json_decref(r);
        snprintf(err, errlen, "qom-get %s %s: not an integer", path, prop);
        return -EPROTO;
    }
    *v = json_integer_value(r);
    json_decref(r);
    return 0;
}

/* Does, over qtest, what a guest's ACPI _EJ0 method would: select the bus
 * and eject the slot.  The pending check keeps us from removing a device
 * nobody asked QEMU to unplug, and proves the registers are where we think. */
static int pcihp_eject(struct qemu_machine *m, long long bsel, unsigned slot, char *err,
                       size_t errlen)
{
    uint32_t sel = 0, down = 0;
    int rc;
    if (bsel < 0 || bsel > 255 || slot > 31) {
        snprintf(err, errlen, "ACPI eject: bus %lld slot %u out of range", bsel, slot);
        return -EINVAL;
    }
    if ((rc = qtest_out(&m->qt, 4, PCIHP_SEL, (uint32_t)bsel)) ||
        (rc = qtest_in(&m->qt, 4, PCIHP_SEL, &sel)) ||
        (rc = qtest_in(&m->qt, 4, PCIHP_DOWN, &down))) {
        snprintf(err, errlen, "ACPI eject: qtest: %s", strerror(-rc));
        return rc;
    }
    if (sel != (uint32_t)bsel) {
        snprintf(err, errlen, "ACPI eject: bus select reads %#x, not %#llx", sel, bsel);
        return -EPROTO;
    }
    if (!(down & 1u << slot)) {
        snprintf(err, errlen, "ACPI eject: no unplug pending on bus %lld slot %u", bsel, slot);
        return -ENOENT;
    }
    if ((rc = qtest_out(&m->qt, 4, PCIHP_EJ, 1u << slot)))
        snprintf(err, errlen, "ACPI eject: qtest: %s", strerror(-rc));
    return rc;
}

int qemu_pci_eject(struct qemu_machine *m, const char *port_id, unsigned slot, char *err,
                   size_t errlen)
{
    char path[160];
    long long bsel;
    /* The port's secondary bus is its child named after the port. */
    if (!port_id || !*port_id || strchr(port_id, '/') ||
        (size_t)snprintf(path, sizeof(path), "/machine/peripheral/%s/%s", port_id, port_id) >=
            sizeof(path)) {
        snprintf(err, errlen, "ACPI eject: bad port id");
        return -EINVAL;
    }
    int rc = qom_get_int(&m->qmp, path, "acpi-pcihp-bsel", &bsel, err, errlen);
    return rc ? rc : pcihp_eject(m, bsel, slot, err, errlen);
}

/* The unplug hook of m->qmp, run after QEMU accepted device_del. */
static int acpi_unplug(void *ctx, struct qmp *q, const char *id, char *err, size_t errlen)
{
    struct qemu_machine *m = ctx;
    char dev[160];
    if (strchr(id, '/') ||
        (size_t)snprintf(dev, sizeof(dev), "/machine/peripheral/%s", id) >= sizeof(dev))
        return 0; /* not a peripheral we could have added */
    json_t *bus;
    /* Gone already (USB and other buses that need no guest unplug at once),
     * or on a bus without ACPI hot-plug: nothing for us to do. */
    int rc = qmp_call(q, "qom-get", json_pack("{s:s, s:s}", "path", dev, "property", "parent_bus"),
                      &bus, NULL, 0);
    if (rc)
        return rc == -EREMOTEIO ? 0 : rc;
    long long bsel, devfn;
    rc = json_is_string(bus)
             ? qom_get_int(q, json_string_value(bus), "acpi-pcihp-bsel", &bsel, NULL, 0)
             : -EPROTO;
    json_decref(bus);
    if (rc)
        return rc == -EREMOTEIO ? 0 : rc;
    if ((rc = qom_get_int(q, dev, "addr", &devfn, err, errlen)))
        return rc == -EREMOTEIO ? 0 : rc;
    return pcihp_eject(m, bsel, (unsigned)(devfn >> 3) & 31, err, errlen);
}

int qemu_machine_start(struct qemu_machine *m, const struct qemu_machine_opts *o)
{
    size_t ram_size = o->ram_size;
    const char *const *extra = o->extra;
    memset(m, 0, sizeof(*m));
    m->pid = -1;
    m->ram_fd = -1;
    m->qt.fd = -1;
    m->qmp.fd = -1;
    if (!ram_size || ram_size % (1u << 20) || o->maxmem % (1u << 20))
        return -EINVAL; /* QEMU sizes RAM in MiB */
    int fw = memfd_create("devmux:firmware", MFD_CLOEXEC);
    int sv[2] = {-1, -1}, mon[2] = {-1, -1};
    m->own_ram = o->ram_fd < 0;
    m->ram_fd = m->own_ram ? memfd_create("devmux:guest-ram", MFD_CLOEXEC) : o->ram_fd;
    int err = 0;
    if (fw < 0 || m->ram_fd < 0 || (m->own_ram && ftruncate(m->ram_fd, (off_t)ram_size)) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, mon)) {
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

    char bios[32], mem[96], machine[64], chardev[48], memsz[96], monchr[48];
    snprintf(bios, sizeof(bios), "/dev/fd/%d", fw);
    snprintf(mem, sizeof(mem), "memory-backend-file,id=ram0,size=%zu,mem-path=/dev/fd/%d,share=on",
             ram_size, m->ram_fd);
    snprintf(machine, sizeof(machine), "q35,memory-backend=ram0,pit=off");
    snprintf(chardev, sizeof(chardev), "socket,id=qt,fd=%d", sv[1]);
    snprintf(monchr, sizeof(monchr), "socket,id=mon,fd=%d", mon[1]);
    /* A bare number means MiB.  DIMM slots are where device-visible
     * regions go (pc-dimm in extra). */
    if (o->dimm_slots)
        snprintf(memsz, sizeof(memsz), "%zuM,slots=%u,maxmem=%lluM", ram_size >> 20, o->dimm_slots,
                 (unsigned long long)(o->maxmem >> 20));
    else
        snprintf(memsz, sizeof(memsz), "%zuM", ram_size >> 20);
    size_t nextra = 0;
    while (extra && extra[nextra])
        nextra++;
    const char **argv = calloc(BASE_ARGS + nextra + 1, sizeof(*argv));
    int *keep = calloc(4 + o->nkeep, sizeof(*keep));
    if (!argv || !keep) {
        free(argv);
        free(keep);
        err = -ENOMEM;
        goto fail;
    }
    const char *base[] = {"qemu-system-x86_64",
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
                          "qtest,id=qt0,chardev=qt,log=none",
                          "-chardev",
                          monchr,
                          "-mon",
                          "chardev=mon,mode=control",
                          NULL};
    size_t argc = 0;
    for (; base[argc]; argc++)
        argv[argc] = base[argc];
    for (size_t i = 0; i < nextra; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    keep[0] = fw;
    keep[1] = m->ram_fd;
    keep[2] = sv[1];
    keep[3] = mon[1];
    for (size_t i = 0; i < o->nkeep; i++)
        keep[4 + i] = o->keep_fds[i];
    m->pid = fork();
    if (m->pid < 0) {
        err = -errno;
        free(argv);
        free(keep);
        goto fail;
    }
    if (m->pid == 0)
        child(argv, keep, 4 + o->nkeep, o->err_fd);
    free(argv);
    free(keep);
    close(sv[1]);
    sv[1] = -1;
    close(mon[1]);
    mon[1] = -1;
    close(fw);
    fw = -1;
    qtest_init(&m->qt, sv[0], o->on_irq, o->irq_ctx);
    sv[0] = -1;
    /* The first answer proves the machine is up. */
    uint32_t v;
    if ((err = qtest_in(&m->qt, 4, 0xcfc, &v))) {
        fprintf(stderr, "qemu: the machine did not answer on qtest (%s)\n", strerror(-err));
        goto fail;
    }
    int qfd = mon[0];
    mon[0] = -1;
    if ((err = qmp_init(&m->qmp, qfd, QMP_START_MS))) {
        fprintf(stderr, "qemu: no QMP greeting or negotiation (%s)\n", strerror(-err));
        goto fail;
    }
    m->qmp.unplug = acpi_unplug;
    m->qmp.unplug_ctx = m;
    return 0;
fail:
    if (fw >= 0)
        close(fw);
    for (int i = 0; i < 2; i++) {
        if (sv[i] >= 0)
            close(sv[i]);
        if (mon[i] >= 0)
            close(mon[i]);
    }
    qemu_machine_stop(m);
    return err ? err : -EIO;
}

void qemu_machine_stop(struct qemu_machine *m)
{
    qtest_close(&m->qt);
    qmp_close(&m->qmp);
    if (m->pid > 0) {
        kill(m->pid, SIGKILL);
        while (waitpid(m->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        m->pid = -1;
    }
    if (m->ram)
        munmap(m->ram, m->ram_size);
    m->ram = NULL;
    if (m->ram_fd >= 0 && m->own_ram)
        close(m->ram_fd);
    m->ram_fd = -1;
}
