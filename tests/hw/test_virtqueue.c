/* Unit tests of the split virtqueue's driver side (src/hw/virtio/virtqueue.c)
 * on crafted rings: this test plays the device by writing the used ring and
 * the device's event word directly, as a misbehaving device could. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hw/virtio/virtqueue.h"

#define QS  8u
#define DEV 0x200000ull

struct fx {
    void *mem;
    struct virtq q;
};

static int setup(void **state, bool event_idx)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct vq_layout l;
    vq_layout(QS, &l);
    f->mem = aligned_alloc(4096, 4096);
    memset(f->mem, 0xa5, 4096); /* vq_init must not rely on zeroed memory */
    assert_true(l.bytes <= 4096);
    assert_int_equal(vq_init(&f->q, f->mem, DEV, QS, event_idx), 0);
    *state = f;
    return 0;
}

static int setup_plain(void **state)
{
    return setup(state, false);
}

static int setup_eidx(void **state)
{
    return setup(state, true);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    vq_fini(&f->q);
    free(f->mem);
    free(f);
    return 0;
}

/* A 2-descriptor receive chain: 12-byte header, 2048-byte buffer. */
static int post_rx(struct virtq *q, uint32_t cookie)
{
    struct vq_seg s[2] = {{0x1000 + cookie * 16, 12, true}, {0x100000 + cookie * 2048, 2048, true}};
    return vq_add(q, s, 2, cookie);
}

/* The device completes the chain at head with len: one used entry. */
static void complete(struct virtq *q, uint32_t id, uint32_t len)
{
    uint16_t i = q->used->idx;
    q->used->ring[i % QS].id = id;
    q->used->ring[i % QS].len = len;
    q->used->idx = (uint16_t)(i + 1);
}

static uint16_t *avail_event(struct virtq *q)
{
    return (uint16_t *)&q->used->ring[QS];
}

static uint16_t used_event(struct virtq *q)
{
    return q->avail->ring[QS];
}

static void test_layout(void **state)
{
    struct vq_layout l;
    vq_layout(256, &l);
    assert_int_equal(l.desc, 0);
    assert_int_equal(l.avail, 256 * 16);
    assert_int_equal(l.avail % VIRTQ_AVAIL_ALIGN, 0);
    assert_int_equal(l.used % VIRTQ_USED_ALIGN, 0);
    assert_true(l.used >= l.avail + 6 + 2 * 256);
    assert_int_equal(l.bytes, l.used + 6 + 8 * 256);
    struct virtq q;
    char buf[64] __attribute__((aligned(16)));
    assert_int_equal(vq_init(&q, buf, DEV, 3, false), -EINVAL);
    assert_int_equal(vq_init(&q, buf, DEV, 0, false), -EINVAL);
    assert_int_equal(vq_init(&q, buf + 4, DEV, 2, false), -EINVAL);
}

static void test_chain_and_completion(void **state)
{
    struct fx *f = *state;
    struct virtq *q = &f->q;
    int h = post_rx(q, 7);
    assert_true(h >= 0);
    assert_int_equal(vq_room(q), QS - 2);
    /* Not visible to the device before the publish. */
    assert_int_equal(q->avail->idx, 0);
    assert_true(vq_kick_prepare(q));
    assert_int_equal(q->avail->idx, 1);
    assert_int_equal(q->avail->ring[0], h);
    struct virtq_desc *d0 = &q->desc[h], *d1 = &q->desc[d0->next];
    assert_int_equal(d0->flags, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE);
    assert_int_equal(d0->len, 12);
    assert_int_equal(d1->flags, VIRTQ_DESC_F_WRITE);
    assert_int_equal(d1->addr, 0x100000 + 7 * 2048);
    /* Nothing new: no second doorbell. */
    assert_false(vq_kick_prepare(q));

    uint32_t cookie, len;
    assert_int_equal(vq_get(q, &cookie, &len), 0);
    complete(q, (uint32_t)h, 12 + 60);
    assert_int_equal(vq_get(q, &cookie, &len), 1);
    assert_int_equal(cookie, 7);
    assert_int_equal(len, 72);
    assert_int_equal(vq_room(q), QS);
    assert_int_equal(q->outstanding, 0);
    /* The freed descriptors are reused. */
    for (uint32_t c = 0; c < QS / 2; c++)
        assert_true(post_rx(q, c) >= 0);
    assert_int_equal(post_rx(q, 99), -ENOSPC);
}

static void test_used_idx_past_outstanding(void **state)
{
    struct fx *f = *state;
    struct virtq *q = &f->q;
    int h = post_rx(q, 1);
    vq_kick_prepare(q);
    complete(q, (uint32_t)h, 100);
    q->used->idx = 5; /* claims five completions for one buffer */
    uint32_t cookie = 0, len = 0;
    assert_int_equal(vq_get(q, &cookie, &len), VQ_ERR_IDX);
    assert_int_equal(cookie, 0);
    /* Broken until reset, even if the device repairs its index. */
    q->used->idx = 1;
    assert_int_equal(vq_get(q, &cookie, &len), VQ_ERR_IDX);
    assert_int_equal(q->outstanding, 1);
}

static void test_duplicate_id(void **state)
{
    struct fx *f = *state;
    struct virtq *q = &f->q;
    int a = post_rx(q, 1);
    post_rx(q, 2);
    vq_kick_prepare(q);
    uint32_t cookie, len;
    complete(q, (uint32_t)a, 80);
    complete(q, (uint32_t)a, 80);
    assert_int_equal(vq_get(q, &cookie, &len), 1);
    assert_int_equal(cookie, 1);
    assert_int_equal(vq_get(q, &cookie, &len), VQ_ERR_STALE);
}

static void test_id_not_a_head(void **state)
{
    struct fx *f = *state;
    struct virtq *q = &f->q;
    int a = post_rx(q, 1);
    vq_kick_prepare(q);
    uint32_t cookie, len;
    complete(q, q->desc[a].next, 80); /* the chain's second descriptor */
    assert_int_equal(vq_get(q, &cookie, &len), VQ_ERR_STALE);
}

static void test_id_out_of_range(void **state)
{
    struct fx *f = *state;
    struct virtq *q = &f->q;
    post_rx(q, 1);
    vq_kick_prepare(q);
    uint32_t cookie, len;
    complete(q, QS, 80);
    assert_int_equal(vq_get(q, &cookie, &len), VQ_ERR_ID);
    assert_string_equal(vq_strerror(VQ_ERR_ID), "used id outside the descriptor table");
}

static void test_len_over_buffer(void **state)
{
    struct fx *f = *state;
    struct virtq *q = &f->q;
    int a = post_rx(q, 1);
    vq_kick_prepare(q);
    uint32_t cookie, len;
    complete(q, (uint32_t)a, 12 + 2048 + 1);
    assert_int_equal(vq_get(q, &cookie, &len), VQ_ERR_LEN);
}

static void test_len_exact_buffer_ok(void **state)
{
    struct fx *f = *state;
    struct virtq *q = &f->q;
    int a = post_rx(q, 1);
    /* A read-only chain (transmit) may report up to its whole length. */
    struct vq_seg s[2] = {{0x1000, 12, false}, {0x300000, 60, false}};
    int t = vq_add(q, s, 2, 9);
    vq_kick_prepare(q);
    uint32_t cookie, len;
    complete(q, (uint32_t)a, 12 + 2048);
    complete(q, (uint32_t)t, 0);
    assert_int_equal(vq_get(q, &cookie, &len), 1);
    assert_int_equal(vq_get(q, &cookie, &len), 1);
    assert_int_equal(cookie, 9);
    t = vq_add(q, s, 2, 10);
    vq_kick_prepare(q);
    complete(q, (uint32_t)t, 73);
    assert_int_equal(vq_get(q, &cookie, &len), VQ_ERR_LEN);
}

static void collect(void *ctx, uint32_t cookie)
{
    uint32_t *mask = ctx;
    *mask |= 1u << cookie;
}

static void test_reclaim(void **state)
{
    struct fx *f = *state;
    struct virtq *q = &f->q;
    int a = post_rx(q, 1);
    post_rx(q, 2);
    post_rx(q, 3);
    vq_kick_prepare(q);
    uint32_t cookie, len, mask = 0;
    complete(q, (uint32_t)a, 80);
    assert_int_equal(vq_get(q, &cookie, &len), 1);
    complete(q, 77, 80); /* breaks the queue */
    assert_true(vq_get(q, &cookie, &len) < 0);
    vq_reclaim(q, collect, &mask);
    assert_int_equal(mask, (1u << 2) | (1u << 3));
    assert_int_equal(vq_room(q), QS);
    assert_int_equal(q->outstanding, 0);
    assert_int_equal(q->used->idx, 0);
    assert_int_equal(q->avail->idx, 0);
    /* Usable again. */
    a = post_rx(q, 4);
    assert_true(vq_kick_prepare(q));
    complete(q, (uint32_t)a, 80);
    assert_int_equal(vq_get(q, &cookie, &len), 1);
    assert_int_equal(cookie, 4);
}

static void test_kick_flags(void **state)
{
    struct fx *f = *state;
    struct virtq *q = &f->q;
    post_rx(q, 1);
    q->used->flags = VIRTQ_USED_F_NO_NOTIFY;
    assert_false(vq_kick_prepare(q));
    assert_int_equal(q->avail->idx, 1); /* published all the same */
    post_rx(q, 2);
    q->used->flags = 0;
    assert_true(vq_kick_prepare(q));
}

static void test_kick_event_idx(void **state)
{
    struct fx *f = *state;
    struct virtq *q = &f->q;
    *avail_event(q) = 0; /* the device wants to hear about entry 0 */
    post_rx(q, 1);
    post_rx(q, 2);
    assert_true(vq_kick_prepare(q)); /* published 0..1: includes 0 */
    post_rx(q, 3);
    assert_false(vq_kick_prepare(q)); /* entry 2: still polling, no event asked */
    *avail_event(q) = 3;
    post_rx(q, 4);
    assert_true(vq_kick_prepare(q)); /* published entry 3 */
    /* The flag is ignored once EVENT_IDX is negotiated. */
    q->used->flags = VIRTQ_USED_F_NO_NOTIFY;
    *avail_event(q) = 4;
    uint32_t cookie, len;
    complete(q, 0, 80);
    assert_int_equal(vq_get(q, &cookie, &len), 1);
    post_rx(q, 5);
    assert_true(vq_kick_prepare(q));
}

static void test_arm_plain(void **state)
{
    struct fx *f = *state;
    struct virtq *q = &f->q;
    assert_int_equal(q->avail->flags, VIRTQ_AVAIL_F_NO_INTERRUPT); /* off until waited for */
    int a = post_rx(q, 1);
    vq_kick_prepare(q);
    assert_false(vq_arm(q, 0));
    assert_int_equal(q->avail->flags, 0);
    complete(q, (uint32_t)a, 80);
    assert_true(vq_arm(q, 0)); /* already there: poll before sleeping */
    vq_disarm(q);
    assert_int_equal(q->avail->flags, VIRTQ_AVAIL_F_NO_INTERRUPT);
}

static void test_arm_event_idx(void **state)
{
    struct fx *f = *state;
    struct virtq *q = &f->q;
    int h[3];
    for (int i = 0; i < 3; i++)
        h[i] = post_rx(q, (uint32_t)i);
    vq_kick_prepare(q);
    assert_false(vq_arm(q, 2));
    assert_int_equal(used_event(q), 2); /* interrupt when the third is used */
    complete(q, (uint32_t)h[0], 80);
    complete(q, (uint32_t)h[1], 80);
    assert_false(vq_arm(q, 2));
    complete(q, (uint32_t)h[2], 80);
    assert_true(vq_arm(q, 2));
    uint32_t cookie, len;
    for (int i = 0; i < 3; i++)
        assert_int_equal(vq_get(q, &cookie, &len), 1);
    vq_disarm(q);
    /* Behind what was taken: the device crossing it needs a full wrap. */
    assert_int_equal(used_event(q), 2);
    assert_false(virtq_need_event(used_event(q), 4, 3));
    assert_true(virtq_need_event(3, 4, 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test_setup_teardown(test_chain_and_completion, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_used_idx_past_outstanding, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_id, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_id_not_a_head, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_id_out_of_range, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_len_over_buffer, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_len_exact_buffer_ok, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_reclaim, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_kick_flags, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_kick_event_idx, setup_eidx, teardown),
        cmocka_unit_test_setup_teardown(test_arm_plain, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_arm_event_idx, setup_eidx, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
