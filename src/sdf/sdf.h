/*
 * The system description: one YAML file that says which components run,
 * which memory regions exist and who maps them, and which channels connect
 * whom.  docs/system-description.md is the reference for the format.
 *
 * sdf_load() parses and validates in one go and never starts anything; it
 * either returns a complete, consistent model or a list of errors, each with
 * file:line:column, what was wrong and what was expected.
 */
#ifndef DEVMUX_SDF_H
#define DEVMUX_SDF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SDF_NAME_MAX        63
#define SDF_MAX_CHANNEL     62 /* channel ids are 0..62, as in Microkit */
#define SDF_PAGE            4096u
#define SDF_MAX_COMPONENTS  1024
#define SDF_MAX_REGIONS     4096
#define SDF_MAX_CHANNELS    8192
#define SDF_MAX_CONFIG_KEYS 4096 /* more could never fit the 16 KiB a component gets */
#define SDF_MAX_ERRORS      100  /* more are summarised, not listed */
#define SDF_MAX_FILE        (1 << 20)
#define SDF_MAX_DEPTH       16
#define SDF_MAX_MESSAGE     400               /* bytes of one error message, quotes included */
#define SDF_MIN_VADDR       0x10000ull        /* Linux's usual mmap_min_addr */
#define SDF_MAX_VADDR       0x7ffffffff000ull /* end of 47-bit user space */

struct sdf_loc {
    int line, col; /* 1-based; 0 when unknown */
};

enum sdf_fault_policy {
    SDF_FAULT_RESTART,  /* restart it; peers are told; regions are kept */
    SDF_FAULT_HALT,     /* leave it stopped; the rest keeps running */
    SDF_FAULT_SHUTDOWN, /* stop the whole system */
};

struct sdf_kv {
    char *key, *value;
};

enum sdf_device_kind {
    SDF_DEV_PACKET, /* a host network interface, through an AF_PACKET socket */
    SDF_DEV_TAP,    /* a TAP interface the supervisor creates in a network namespace */
    SDF_DEV_PCI,    /* a PCI function of a machine, through the hardware layer */
};

/* A device resource granted to one component: the supervisor opens it and
 * hands over the descriptor; its readiness arrives as an interrupt on
 * channel `irq`. */
struct sdf_device {
    char *name;
    enum sdf_device_kind kind;
    char *ifname; /* packet: the interface to bind; tap: the name to create */
    char *netns;  /* named network namespace (/run/netns/NAME), or NULL: ours */
    uint8_t mac[6];
    bool has_mac; /* tap: the interface's MAC address */
    uint32_t irq;
    char *machine, *mdevice; /* pci: which machine's which device */
    int mach, mdev;          /* resolved indices */
    struct sdf_loc loc;
};

#define SDF_MAX_DEVICES 8 /* per component */

/* A component's share of the machine (`limits:`), in the shape of seL4 MCS
 * scheduling contexts plus a memory and a thread bound.  Fields left unset
 * (has_* false) take the class's default, then the supervisor's. */
struct sdf_limits {
    bool has_cpu, has_weight, has_memory, has_threads;
    uint32_t cpu_budget_us, cpu_period_us; /* at most budget per period; budget 0: no cap */
    uint32_t weight;                       /* share under contention, 1..10000 (100: normal) */
    uint64_t memory;  /* private allowance in bytes, on top of the regions it maps */
    uint32_t threads; /* tasks (threads and processes) at once */
    struct sdf_loc loc;
};

struct sdf_component {
    char *name;
    char *program;      /* as written */
    char *program_path; /* resolved, absolute */
    struct sdf_kv *config;
    size_t nconfig;
    enum sdf_fault_policy fault;
    uint32_t backoff_min_ms, backoff_max_ms;
    struct sdf_device *devices;
    size_t ndevices;
    struct sdf_limits limits;
    struct sdf_loc loc, program_loc;
};

enum sdf_item_kind { SDF_ITEM_QUEUE, SDF_ITEM_BUFFERS, SDF_ITEM_BYTES };

/* Something declared to live inside a region; the loader lays items out in
 * order, each aligned to a cache line, and tells components where. */
struct sdf_item {
    char *name;
    enum sdf_item_kind kind;
    uint32_t count; /* queue capacity / number of buffers */
    uint32_t elem;  /* buffer size */
    uint64_t size;  /* bytes, computed */
    uint64_t offset;
    struct sdf_loc loc;
};

struct sdf_mapping {
    char *component;
    int comp; /* index, resolved */
    bool writable;
    uint64_t vaddr; /* 0: anywhere */
    char *setvar;   /* symbol to receive the address, or NULL */
    struct sdf_loc loc;
};

struct sdf_region {
    char *name;
    uint64_t size;
    char *machine;     /* device-visible memory of this machine, or NULL */
    int mach;          /* resolved index, or -1 */
    uint64_t dev_addr; /* assigned: the address devices use for byte 0 */
    struct sdf_loc machine_loc;
    struct sdf_item *items;
    size_t nitems;
    struct sdf_mapping *maps;
    size_t nmaps;
    struct sdf_loc loc, size_loc;
};

struct sdf_end {
    char *component;
    int comp; /* index, resolved */
    uint32_t id;
    bool pp; /* this end may make protected calls to the other */
    struct sdf_loc loc;
};

struct sdf_channel {
    char *name; /* optional */
    struct sdf_end end[2];
    struct sdf_loc loc;
};

/* A machine (`machines:`): where devices come from.  qemu starts a
 * guest-less QEMU whose listed devices the hardware layer drives; vfio
 * takes real PCI functions bound to vfio-pci. */
enum sdf_machine_backend { SDF_BACKEND_QEMU, SDF_BACKEND_VFIO };

enum sdf_wire_kind { SDF_WIRE_NONE, SDF_WIRE_TAP, SDF_WIRE_USER };

struct sdf_machine_device {
    char *name;           /* its id, in QEMU and in grants */
    char *model;          /* qemu: the QEMU device (virtio-net-pci, qemu-xhci, usb-kbd, ...) */
    char *host;           /* vfio: the host PCI address, 0000:01:00.0 */
    int slot, func;       /* PCI address on bus 0, or -1 (a device on another bus) */
    char *bus;            /* qemu: the bus for a non-PCI device, like xhci0.0 */
    struct sdf_kv *props; /* qemu: more -device properties */
    size_t nprops;
    enum sdf_wire_kind wire; /* qemu NICs: the other end of the cable */
    char *wire_netns, *wire_ifname;
    char *drive_file;   /* qemu storage: a disk image behind -drive, or NULL */
    char *drive_format; /* raw (default) or qcow2 */
    bool drive_readonly;
    struct sdf_loc loc, name_loc, drive_loc;
};

#define SDF_MAX_MACHINE_DEVICES 32
#define SDF_MAX_MACHINE_REGIONS 128 /* device-visible regions per machine (QEMU: DIMM slots) */
/* Device-visible regions start at 4 GiB, above RAM and the PCI hole: each
 * is a memory module of its own (qemu) or an IOMMU mapping (vfio). */
#define SDF_DMA_BASE 0x100000000ull

struct sdf_machine {
    char *name;
    enum sdf_machine_backend backend;
    uint64_t memory; /* qemu: guest RAM (device-visible regions are modules of their own) */
    enum sdf_fault_policy fault; /* restart or shutdown */
    struct sdf_machine_device *devices;
    size_t ndevices;
    struct sdf_loc loc, name_loc, memory_loc;
};

/* A shared network (`networks:`), kept after expansion for the supervisor's
 * `ctl net`: which clients exist and where their counters live. */
struct sdf_net_client {
    char *name;
    uint8_t mac[6];
    char *addrs;               /* bound addresses and prefixes, comma-separated ("" if none) */
    bool dhcp;                 /* its IPv4 address may also be learned from DHCP */
    uint32_t rx_share;         /* shared receive buffers it may hold */
    uint64_t tx_rate, rx_rate; /* bits per second each way, 0: unlimited */
};

struct sdf_network {
    char *name;
    struct sdf_net_client *clients;
    size_t nclients;
    struct sdf_loc loc;
};

struct sdf_system {
    char *file;
    char *name;
    struct sdf_component *comps;
    size_t ncomps;
    struct sdf_region *regions;
    size_t nregions;
    struct sdf_channel *channels;
    size_t nchannels;
    struct sdf_network *networks;
    size_t nnetworks;
    struct sdf_machine *machines;
    size_t nmachines;
};

struct sdf_error {
    struct sdf_loc loc;
    char *msg;
};

struct sdf_errors {
    struct sdf_error *v;
    size_t n;
};

/* Directories searched for bare program names, in order. */
struct sdf_options {
    const char *const *program_path;
    size_t nprogram_path;
};

/* Returns the model, or NULL with errs filled in. */
struct sdf_system *sdf_load(const char *file, const struct sdf_options *opt,
                            struct sdf_errors *errs);
void sdf_free(struct sdf_system *sys);
void sdf_errors_print(const struct sdf_errors *errs, const char *file, FILE *out);
void sdf_errors_free(struct sdf_errors *errs);

/* Shared by parse and validate. */
void sdf_error(struct sdf_errors *errs, struct sdf_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sdf_validate(struct sdf_system *sys, const struct sdf_options *opt, struct sdf_errors *errs);
int sdf_component_index(const struct sdf_system *sys, const char *name);
int sdf_region_index(const struct sdf_system *sys, const char *name);
int sdf_machine_index(const struct sdf_system *sys, const char *name);
int sdf_machine_device_index(const struct sdf_machine *m, const char *name);
/* The interrupt line (GSI) of a PCI device on bus 0 of a qemu q35 machine,
 * from its slot and pin 1 (INTA): 16 + PIRQ E..H. */
unsigned sdf_qemu_gsi(int slot);
bool sdf_parse_size(const char *s, uint64_t *out);
/* Fills the fields of dst that are unset from src (class or system defaults). */
void sdf_limits_inherit(struct sdf_limits *dst, const struct sdf_limits *src);

#endif
