/*
 * Virtio 1.x, as far as devmux drivers need it: the modern PCI transport's
 * registers and the split virtqueue's memory layout.  Numbers follow the
 * OASIS "Virtual I/O Device (VIRTIO) Version 1.2" specification (sections
 * 2.7 split virtqueues, 4.1 PCI transport, 5.1 network device).
 *
 * Everything the device reads or writes is little-endian.  devmux hosts are
 * x86-64 or little-endian arm64, so the ring structures below use native
 * integers; the assertion keeps a big-endian port from silently breaking.
 */
#ifndef DEVMUX_HW_VIRTIO_H
#define DEVMUX_HW_VIRTIO_H

#include <stdint.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "virtio rings are little-endian; add byte swaps for this host");

/* ---- PCI identity --------------------------------------------------------- */
#define VIRTIO_PCI_VENDOR         0x1af4u
#define VIRTIO_PCI_ID_NET_TRANS   0x1000u /* transitional (legacy BAR0 plus modern caps) */
#define VIRTIO_PCI_ID_MODERN_BASE 0x1040u /* + virtio device type */
#define VIRTIO_TYPE_NET           1u
#define VIRTIO_PCI_ID_NET_MODERN  (VIRTIO_PCI_ID_MODERN_BASE + VIRTIO_TYPE_NET)

/* ---- PCI configuration space ------------------------------------------- */
#define PCI_CFG_COMMAND      0x04u
#define PCI_COMMAND_IO       0x1u
#define PCI_COMMAND_MEMORY   0x2u
#define PCI_COMMAND_MASTER   0x4u
#define PCI_CFG_STATUS       0x06u
#define PCI_STATUS_CAP_LIST  0x10u
#define PCI_CFG_CAP_PTR      0x34u
#define PCI_CAP_ID_VENDOR    0x09u
#define PCI_CFG_SPACE_BYTES  256u
#define PCI_CFG_HEADER_BYTES 0x40u /* capabilities live after the standard header */

/* A virtio vendor capability (struct virtio_pci_cap): byte offsets. */
#define VIRTIO_CAP_NEXT         1u
#define VIRTIO_CAP_LEN          2u
#define VIRTIO_CAP_TYPE         3u
#define VIRTIO_CAP_BAR          4u
#define VIRTIO_CAP_OFFSET       8u
#define VIRTIO_CAP_LENGTH       12u
#define VIRTIO_CAP_NOTIFY_MULT  16u /* notify capability only */
#define VIRTIO_CAP_MIN_BYTES    16u
#define VIRTIO_CAP_NOTIFY_BYTES 20u

enum virtio_cap_type {
    VIRTIO_CAP_COMMON = 1,
    VIRTIO_CAP_NOTIFY = 2,
    VIRTIO_CAP_ISR = 3,
    VIRTIO_CAP_DEVICE = 4,
    VIRTIO_CAP_PCI_CFG = 5,
};

/* ---- common configuration (struct virtio_pci_common_cfg) -----------------
 * Offsets inside the common region, each with its width: the device only
 * answers accesses of a field's own width (QEMU returns part of a field
 * for a wider read). */
#define VIRTIO_COMMON_DFSELECT  0x00u /* 32 */
#define VIRTIO_COMMON_DF        0x04u /* 32 */
#define VIRTIO_COMMON_GFSELECT  0x08u /* 32 */
#define VIRTIO_COMMON_GF        0x0cu /* 32 */
#define VIRTIO_COMMON_MSIX      0x10u /* 16 */
#define VIRTIO_COMMON_NUMQ      0x12u /* 16 */
#define VIRTIO_COMMON_STATUS    0x14u /* 8 */
#define VIRTIO_COMMON_CFGGEN    0x15u /* 8 */
#define VIRTIO_COMMON_Q_SELECT  0x16u /* 16 */
#define VIRTIO_COMMON_Q_SIZE    0x18u /* 16 */
#define VIRTIO_COMMON_Q_MSIX    0x1au /* 16 */
#define VIRTIO_COMMON_Q_ENABLE  0x1cu /* 16 */
#define VIRTIO_COMMON_Q_NOFF    0x1eu /* 16 */
#define VIRTIO_COMMON_Q_DESCLO  0x20u /* 32, then hi at +4 */
#define VIRTIO_COMMON_Q_AVAILLO 0x28u /* 32, then hi at +4 */
#define VIRTIO_COMMON_Q_USEDLO  0x30u /* 32, then hi at +4 */
#define VIRTIO_COMMON_BYTES     0x38u

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01u
#define VIRTIO_STATUS_DRIVER      0x02u
#define VIRTIO_STATUS_DRIVER_OK   0x04u
#define VIRTIO_STATUS_FEATURES_OK 0x08u
#define VIRTIO_STATUS_NEEDS_RESET 0x40u
#define VIRTIO_STATUS_FAILED      0x80u

/* ISR status: read-to-clear; reading it also lowers INTx. */
#define VIRTIO_ISR_QUEUE  0x1u
#define VIRTIO_ISR_CONFIG 0x2u

/* ---- feature bits ---------------------------------------------------------- */
#define VIRTIO_F_INDIRECT_DESC   28
#define VIRTIO_F_EVENT_IDX       29
#define VIRTIO_F_VERSION_1       32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED     34

#define VIRTIO_NET_F_CSUM      0
#define VIRTIO_NET_F_MAC       5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS    16
#define VIRTIO_NET_F_CTRL_VQ   17

#define VIRTIO_BIT(b) (1ull << (b))

/* ---- network device -------------------------------------------------------- */
#define VIRTIO_NET_CFG_MAC    0x00u /* 6 bytes */
#define VIRTIO_NET_CFG_STATUS 0x06u /* 16, with VIRTIO_NET_F_STATUS */
#define VIRTIO_NET_S_LINK_UP  0x1u
#define VIRTIO_NET_Q_RX       0u
#define VIRTIO_NET_Q_TX       1u
/* The header before every frame once VERSION_1 is negotiated (it then
 * includes num_buffers even without MRG_RXBUF). */
#define VIRTIO_NET_HDR_BYTES 12u

/* ---- split virtqueue layout ---------------------------------------------- */
#define VIRTQ_MAX_SIZE 32768u

#define VIRTQ_DESC_F_NEXT     1u
#define VIRTQ_DESC_F_WRITE    2u
#define VIRTQ_DESC_F_INDIRECT 4u

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u
#define VIRTQ_USED_F_NO_NOTIFY     1u

/* Alignment the device requires of each part (modern transport). */
#define VIRTQ_DESC_ALIGN  16u
#define VIRTQ_AVAIL_ALIGN 2u
#define VIRTQ_USED_ALIGN  4u

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

/* Driver area: flags, idx, ring[size], then used_event (EVENT_IDX). */
struct virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];
};

struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};

/* Device area: flags, idx, ring[size], then avail_event (EVENT_IDX). */
struct virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct virtq_used_elem ring[];
};

#define VIRTQ_DESC_BYTES(n)  ((size_t)(n) * sizeof(struct virtq_desc))
#define VIRTQ_AVAIL_BYTES(n) ((size_t)2 * 2 + (size_t)(n)*2 + 2)
#define VIRTQ_USED_BYTES(n)  ((size_t)2 * 2 + (size_t)(n) * sizeof(struct virtq_used_elem) + 2)

/* With EVENT_IDX, the side that moved an index from old to new must signal
 * iff the peer's event index lies in [old, new) in 16-bit ring arithmetic:
 * the peer asked to hear about exactly that entry. */
static inline int virtq_need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

#endif
