/*
 * The component API: a protection domain's view of the world, shaped after
 * the seL4 Microkit so that a component ports to seL4 by recompiling against
 * libmicrokit.  docs/component-api.md lists where it differs and why.
 *
 * A component provides init(), notified() and (if it serves protected calls)
 * protected().  The devmux runtime provides main(): it maps the regions the
 * system description grants, closes the sandbox, calls init() and then
 * dispatches events one at a time, like a Microkit PD's event loop.
 */
#ifndef DEVMUX_MICROKIT_H
#define DEVMUX_MICROKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef unsigned int microkit_channel;
typedef uint64_t microkit_msginfo;

#define MICROKIT_MAX_CHANNELS 63
#define MICROKIT_MAX_MRS      64

/* msginfo layout as in seL4: label in the upper bits, length in the low 7. */
static inline microkit_msginfo microkit_msginfo_new(uint64_t label, uint16_t count)
{
    return (label << 12) | (count & 0x7fu);
}
static inline uint64_t microkit_msginfo_get_label(microkit_msginfo m)
{
    return m >> 12;
}
static inline uint16_t microkit_msginfo_get_count(microkit_msginfo m)
{
    return (uint16_t)(m & 0x7fu);
}

/* Entry points the component defines.  init is required; a component with
 * no channels to listen on, or that serves no protected calls, may leave out
 * notified or protected. */
void init(void);
void notified(microkit_channel ch) __attribute__((weak));
microkit_msginfo protected(microkit_channel ch, microkit_msginfo msginfo) __attribute__((weak));

/* Calls into the system. */
void microkit_notify(microkit_channel ch);
microkit_msginfo microkit_ppcall(microkit_channel ch, microkit_msginfo msginfo);
void microkit_irq_ack(microkit_channel ch);
void microkit_mr_set(unsigned int mr, uint64_t value);
uint64_t microkit_mr_get(unsigned int mr);
void microkit_dbg_puts(const char *s);
extern const char *microkit_name;

/* ---- devmux extensions (no Microkit equivalent; see docs) -------------- */

/* Label of the reply a ppcall returns when the callee faulted or was never
 * reachable.  Callers must be ready for it: a peer may crash at any time. */
#define DEVMUX_PPC_FAULT 0xfffffffULL

/* Look up a region mapped into this component by name.  Returns NULL if the
 * system description grants no such region.  (Microkit patches a variable
 * instead; devmux does that too with `setvar_vaddr`.) */
void *devmux_region(const char *name, size_t *size);
/* Whether the region is mapped writable. */
bool devmux_region_writable(const char *name);

/* An item the system description declared inside a region (a queue, a
 * buffer pool): where it is and how big.  Returns NULL if there is none. */
struct devmux_item {
    void *addr;
    size_t size;
    uint32_t count; /* queue capacity, or number of buffers */
    uint32_t elem;  /* buffer size, for a buffer pool */
};
const struct devmux_item *devmux_item(const char *region, const char *item);

/* The component's config, from the system description: a flat map of keys
 * to strings.  Returns def when the key is absent. */
const char *devmux_config_str(const char *key, const char *def);
/* As above, parsed as an unsigned number (0x.., K/M/G suffixes); a value that
 * is not a number is logged and def is returned. */
uint64_t devmux_config_u64(const char *key, uint64_t def);

/* How many times the supervisor restarted this component (0 on first
 * start).  Regions survive restarts, so a restarted component resumes its
 * queues instead of resetting them. */
unsigned devmux_restarts(void);

/* printf-style logging to the supervisor, which prefixes the component name. */
void devmux_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A device the system description grants this component (`devices:`): the
 * supervisor opened it (an AF_PACKET socket bound to a host interface, a
 * TAP interface) and the descriptor is ours.  The device "interrupts" when
 * it has input: notified(irq) runs, and, as with a real IRQ, no further
 * interrupt comes on that channel until microkit_irq_ack(irq).  Returns the
 * descriptor, or -1 if no such device is granted. */
int devmux_device(const char *name, microkit_channel *irq);

/* A one-shot timer: notified(DEVMUX_TIMER_CHANNEL) runs once, ns
 * nanoseconds from now (CLOCK_MONOTONIC).  A new call replaces the pending
 * one; 0 cancels.  On seL4 this is a timer driver's channel. */
#define DEVMUX_TIMER_CHANNEL 63u
void devmux_timeout(uint64_t ns);
/* Leaves channel ch's notifications undelivered for ns nanoseconds; those
 * that arrive meanwhile merge into one notified(ch) when the time is up.
 * For a server whose untrusted peer notifies it without cause, so that a
 * notification storm costs it one wake-up per quiet period, not one per
 * notification.  On seL4 notifications already merge into one badge and
 * the sender's scheduling context bounds how often it can signal; this is
 * a no-op there. */
void devmux_channel_quiet(microkit_channel ch, uint64_t ns);
/* CLOCK_MONOTONIC in nanoseconds (no system call: vDSO). */
uint64_t devmux_now_ns(void);

/* Optional entry point: a component connected to ch faulted.  restarting is
 * true if the supervisor is bringing it back; shared regions are kept, so
 * queues resume.  Notifications to it are held until it runs again. */
struct devmux_fault_info {
    int signal;      /* fatal signal, or 0 */
    int exit_status; /* exit status when signal == 0 */
    bool restarting;
};
void peer_fault(microkit_channel ch, const struct devmux_fault_info *info) __attribute__((weak));

/* Optional entry point: a component connected to ch (re)started and ran its
 * init.  Lets a survivor resynchronise queues after a peer restart. */
void peer_ready(microkit_channel ch) __attribute__((weak));

#endif
