/*
 * The shorthand accessors of devmux/hw.h: hw_read8..64 and hw_write8..64
 * over hw_read/hw_write, with the first error latched in the device until
 * hw_error.  Kept apart from hw.c so that a test double of hw_read/hw_write
 * gets the real shorthands, not a copy.
 */
#include "devmux/hw.h"
#include "hw/backend.h"

static uint64_t read_latch(struct hw_device *d, unsigned bar, uint64_t off, unsigned width)
{
    uint64_t v;
    int err = hw_read(d, bar, off, width, &v);
    if (err) {
        if (!d->err)
            d->err = err;
        return ~0ull; /* what a master abort reads as */
    }
    return v;
}

static void write_latch(struct hw_device *d, unsigned bar, uint64_t off, unsigned width, uint64_t v)
{
    int err = hw_write(d, bar, off, width, v);
    if (err && !d->err)
        d->err = err;
}

uint8_t hw_read8(struct hw_device *d, unsigned bar, uint64_t off)
{
    return (uint8_t)read_latch(d, bar, off, 1);
}

uint16_t hw_read16(struct hw_device *d, unsigned bar, uint64_t off)
{
    return (uint16_t)read_latch(d, bar, off, 2);
}

uint32_t hw_read32(struct hw_device *d, unsigned bar, uint64_t off)
{
    return (uint32_t)read_latch(d, bar, off, 4);
}

uint64_t hw_read64(struct hw_device *d, unsigned bar, uint64_t off)
{
    return read_latch(d, bar, off, 8);
}

void hw_write8(struct hw_device *d, unsigned bar, uint64_t off, uint8_t v)
{
    write_latch(d, bar, off, 1, v);
}

void hw_write16(struct hw_device *d, unsigned bar, uint64_t off, uint16_t v)
{
    write_latch(d, bar, off, 2, v);
}

void hw_write32(struct hw_device *d, unsigned bar, uint64_t off, uint32_t v)
{
    write_latch(d, bar, off, 4, v);
}

void hw_write64(struct hw_device *d, unsigned bar, uint64_t off, uint64_t v)
{
    write_latch(d, bar, off, 8, v);
}

int hw_error(struct hw_device *d)
{
    int err = d->err;
    d->err = 0;
    return err;
}
