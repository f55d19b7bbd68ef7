/*
 * What passes between the supervisor and a component's runtime: the boot
 * information, the control messages, the statistics page and the
 * protected-call wire format.  Both sides are trusted devmux code; the
 * component's own code only sees the API of include/devmux/microkit.h.
 * docs/component-api.md describes the process model around it.
 */
#ifndef DEVMUX_RUNTIME_ABI_H
#define DEVMUX_RUNTIME_ABI_H

#include <stdint.h>

#include "devmux/hw.h"
#include "devmux/microkit.h"

#define DMX_BOOT_MAGIC   0x42584d44u /* "DMXB" */
#define DMX_BOOT_VERSION 3
#define DMX_NAME_LEN     64
#define DMX_MAX_REGIONS  80
#define DMX_MAX_ITEMS    256
#define DMX_CONFIG_BYTES 16384
#define DMX_MAX_DEVICES  8

/* Fixed descriptor numbers in a component.  The supervisor places every
 * other descriptor above DMX_FD_FIRST and closes the rest. */
#define DMX_FD_BOOT  3 /* memfd holding struct dmx_boot, read-only */
#define DMX_FD_CTRL  4 /* SOCK_SEQPACKET to the supervisor */
#define DMX_FD_STATS 5 /* memfd holding struct dmx_stats */
#define DMX_FD_FIRST 6

struct dmx_boot_region {
    char name[DMX_NAME_LEN];
    char setvar[DMX_NAME_LEN]; /* empty: none */
    uint64_t size;
    uint64_t vaddr; /* 0: anywhere */
    int32_t fd;
    uint32_t writable;
    uint64_t dev; /* device address of its first byte, if dma */
    uint32_t dma; /* device-visible: a machine's memory module, or IOMMU-mapped */
    uint32_t pad;
};

struct dmx_boot_item {
    char name[DMX_NAME_LEN];
    uint32_t region; /* index into regions */
    uint32_t kind;   /* enum sdf_item_kind */
    uint64_t offset, size;
    uint32_t count, elem;
};

struct dmx_boot_channel {
    uint32_t present;
    int32_t recv_fd;  /* eventfd we read notifications from */
    int32_t send_fd;  /* eventfd of the peer we notify */
    int32_t call_fd;  /* socket we make protected calls on, or -1 */
    int32_t serve_fd; /* socket we serve protected calls on, or -1 */
    char peer[DMX_NAME_LEN];
};

/* A device resource: a descriptor the supervisor opened for us, whose
 * readiness is delivered as an interrupt on channel irq.  For a PCI device,
 * fd is the backend's handle (qemu: the wire socket of src/hw/qemu/wire.h;
 * vfio: the VFIO device descriptor) and the interrupt is irq_fd, an eventfd
 * the backend signals. */
struct dmx_boot_device {
    char name[DMX_NAME_LEN];
    int32_t fd;
    uint32_t irq;
    uint32_t kind;    /* enum sdf_device_kind */
    int32_t irq_fd;   /* -1: readiness of fd is the interrupt */
    uint32_t backend; /* enum sdf_machine_backend, for SDF_DEV_PCI */
    int32_t aux_fd;   /* vfio: the container descriptor; else -1 */
    struct hw_pci_info pci;
};

struct dmx_boot {
    uint32_t magic, version;
    char name[DMX_NAME_LEN];
    uint32_t nregions, nitems;
    uint32_t restarts; /* how many times this component was restarted */
    uint32_t config_len;
    uint32_t ndevices;
    struct dmx_boot_device devices[DMX_MAX_DEVICES];
    struct dmx_boot_region regions[DMX_MAX_REGIONS];
    struct dmx_boot_item items[DMX_MAX_ITEMS];
    struct dmx_boot_channel channels[MICROKIT_MAX_CHANNELS];
    char config[DMX_CONFIG_BYTES]; /* key\0value\0 ... */
};

/* Counters the runtime keeps for `devmux ctl status`.  They live in a page
 * the supervisor also maps; the component could scribble on its own counts,
 * which only misleads about itself. */
struct dmx_chan_stats {
    uint64_t notify_sent, notify_recv, ppc_made, ppc_served, ppc_faults;
};

struct dmx_stats {
    uint64_t events;
    struct dmx_chan_stats ch[MICROKIT_MAX_CHANNELS];
};

enum dmx_ctrl_type {
    DMX_CTRL_READY = 1,  /* runtime -> supervisor: init() returned */
    DMX_CTRL_SYSCALL,    /* runtime -> supervisor: a forbidden syscall, a = nr */
    DMX_CTRL_PEER_FAULT, /* supervisor -> runtime: peer on ch faulted */
    DMX_CTRL_PEER_READY, /* supervisor -> runtime: peer on ch ran init */
    DMX_CTRL_CALL_FD,    /* supervisor -> runtime: new call socket for ch (SCM_RIGHTS) */
    DMX_CTRL_SERVE_FD,   /* supervisor -> runtime: new serve socket for ch (SCM_RIGHTS) */
};

struct dmx_ctrl {
    uint32_t type;
    uint32_t ch;
    int32_t a, b;
    uint32_t flags;
};
#define DMX_CTRL_F_RESTARTING 1u

/* One protected call or reply: msginfo, then count message registers. */
struct dmx_ppc_msg {
    uint64_t msginfo;
    uint64_t mr[MICROKIT_MAX_MRS];
};

#endif
