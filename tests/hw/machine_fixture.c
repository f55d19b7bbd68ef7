#include "machine_fixture.h"

#include <stdio.h>
#include <string.h>

#include "hw/qemu/machine.h"

#define RAM (64u << 20)

int machine_fixture_start(void **state, const char *const *extra)
{
    static struct qemu_machine m;
    struct qemu_machine_opts o = {.ram_size = RAM, .ram_fd = -1, .extra = extra, .err_fd = -1};
    int err = qemu_machine_start(&m, &o);
    if (err) {
        fprintf(stderr, "cannot start QEMU (%s); is qemu-system-x86 installed?\n", strerror(-err));
        return -1;
    }
    *state = &m;
    return 0;
}

int machine_fixture_stop(void **state)
{
    if (*state)
        qemu_machine_stop(*state);
    return 0;
}
