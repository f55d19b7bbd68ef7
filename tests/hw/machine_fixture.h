/* A cmocka group fixture: one guest-less QEMU machine (64 MiB, the given
 * extra arguments) for every test of a group.  Fails the group loudly when
 * QEMU cannot start. */
#ifndef DEVMUX_TESTS_HW_MACHINE_FIXTURE_H
#define DEVMUX_TESTS_HW_MACHINE_FIXTURE_H

int machine_fixture_start(void **state, const char *const *extra);
int machine_fixture_stop(void **state);

#endif
