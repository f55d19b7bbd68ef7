/* Internals of the component runtime (the side of libdevmux that links into
 * every component).  The public face is include/devmux/microkit.h. */
#ifndef DEVMUX_RUNTIME_H
#define DEVMUX_RUNTIME_H

#include <stdnoreturn.h>

#include "runtime/abi.h"

extern const struct dmx_boot *dmx_boot;
extern struct dmx_stats *dmx_stats;

/* Maps regions and the stats page from the boot info; sets setvar symbols. */
void dmx_boot_map(void);
int dmx_sandbox_close(void);
noreturn void dmx_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
