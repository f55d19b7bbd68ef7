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
/* The boot entries of a granted device and a mapped region (with where it
 * is mapped), for the hardware layer; NULL if there is none. */
const struct dmx_boot_device *dmx_boot_device(const char *name);
const struct dmx_boot_region *dmx_boot_region(const char *name, void **addr);
/* Runs fn(ctx) inside microkit_irq_ack(ch), before delivery is re-enabled:
 * where a backend must unmask the line itself (vfio INTx). */
void dmx_irq_ack_hook(microkit_channel ch, void (*fn)(void *ctx), void *ctx);
noreturn void dmx_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
