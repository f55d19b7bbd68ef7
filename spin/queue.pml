/*
 * Promela model of the devmux queue signalling protocol
 * (include/devmux/queue.h, docs/protocols/queue.md).
 *
 * One producer and one consumer share a ring of CAP descriptor slots.
 * Indices are free-running and wrap modulo WRAP (the model's stand-in for
 * 2^32), so the model also runs through an index wrap-around.
 *
 * Memory is sequentially consistent: every statement that touches a shared
 * variable is one atomic step, and any interleaving of steps is possible.
 * That is what the seq_cst fences in dmq_publish(), dmq_release(),
 * dmq_consumer_sleep() and dmq_producer_sleep() buy for the flag/index
 * accesses that matter.  Reading a wake flag and clearing it are separate
 * steps, as in the C code.
 *
 * An eventfd is a bit: notify sets it (several notifies coalesce), a wait
 * blocks until it is set and clears it.
 *
 * A lost wake-up leaves a side blocked in a wait forever, which spin reports
 * as an invalid end state.  Delivery (every item exactly once, in order) is
 * checked by assertions on the values read from the slots.
 *
 * Variants (for spin/check.sh, to show the model can fail):
 *   -DBROKEN=1  the consumer sets wake_consumer and sleeps without
 *               re-checking the tail
 *   -DBROKEN=2  the producer sets wake_producer and sleeps without
 *               re-checking the head
 *   -DBROKEN=3  the producer reads wake_consumer before it publishes the
 *               tail (the order the fence exists to prevent)
 */

#ifndef CAP
#define CAP 2
#endif
#ifndef NITEMS
#define NITEMS 6
#endif
#define WRAP (2 * CAP)
#define EMPTY 255

/* Distance from b forward to a in free-running arithmetic. */
#define DIFF(a, b) (((a) + WRAP - (b)) % WRAP)

/* ---- shared memory ------------------------------------------------------ */
byte tail;              /* written by the producer only */
byte head;              /* written by the consumer only */
bit wake_consumer;      /* consumer sleeps and wants a notify */
bit wake_producer;      /* producer waits for space */
byte slot[CAP] = EMPTY;  /* the descriptor: here just the item number */

/* ---- eventfds ----------------------------------------------------------- */
bit ev_consumer;
bit ev_producer;

/* ---- ghost state for the properties ------------------------------------- */
byte sent;
byte received;

inline notify(ev)
{
    ev = 1
}

inline wait(ev)
{
    atomic { ev == 1 -> ev = 0 }
}

active proctype Producer()
{
    byte ptail = 0;     /* private tail: the truth */
    byte hseen = 0;     /* last head read from the consumer */

    do
    :: sent == NITEMS -> break
    :: else ->
        /* dmq_enqueue(): re-read the head only when the ring looks full */
        if
        :: DIFF(ptail, hseen) >= CAP -> hseen = head    /* dmq_space() */
        :: else -> skip
        fi;
        if
        :: DIFF(ptail, hseen) < CAP ->
            /* the slot must have been consumed already */
            assert(slot[ptail % CAP] == EMPTY || slot[ptail % CAP] < received);
            slot[ptail % CAP] = sent;                   /* dmq_put() */
            ptail = (ptail + 1) % WRAP;
#if BROKEN == 3
            if
            :: wake_consumer == 1 ->
                tail = ptail;
                wake_consumer = 0;
                notify(ev_consumer)
            :: else -> tail = ptail
            fi;
#else
            tail = ptail;                               /* dmq_publish(): release */
            /* seq_cst fence */
            if
            :: wake_consumer == 1 ->
                wake_consumer = 0;
                notify(ev_consumer)
            :: else -> skip
            fi;
#endif
            sent++
        :: else ->
            /* full: dmq_producer_sleep() */
            wake_producer = 1;
            /* seq_cst fence */
#if BROKEN == 2
            wait(ev_producer)
#else
            hseen = head;                               /* dmq_space() */
            if
            :: DIFF(ptail, hseen) < CAP -> wake_producer = 0
            :: else -> wait(ev_producer)
            fi
#endif
        fi
    od
}

active proctype Consumer()
{
    byte chead = 0;     /* private head: the truth */
    byte tseen = 0;     /* last tail read from the producer */
    byte v;

    do
    :: received == NITEMS -> break
    :: else ->
        /* dmq_dequeue(): re-read the tail only when the ring looks empty */
        if
        :: tseen == chead -> tseen = tail               /* dmq_avail() */
        :: else -> skip
        fi;
        if
        :: tseen != chead ->
            assert(DIFF(tseen, chead) <= CAP);
            v = slot[chead % CAP];                      /* dmq_take() */
            assert(v == received);                      /* in order, once */
            received++;
            chead = (chead + 1) % WRAP;
            head = chead;                               /* dmq_release(): release */
            /* seq_cst fence */
            if
            :: wake_producer == 1 ->
                wake_producer = 0;
                notify(ev_producer)
            :: else -> skip
            fi
        :: else ->
            /* empty: dmq_consumer_sleep() */
            wake_consumer = 1;
            /* seq_cst fence */
#if BROKEN == 1
            wait(ev_consumer)
#else
            tseen = tail;                               /* dmq_avail() */
            if
            :: tseen != chead -> wake_consumer = 0
            :: else -> wait(ev_consumer)
            fi
#endif
        fi
    od;
    assert(tail == head)
}

/* Liveness: every run delivers all items (checked with pan -a -f). */
ltl all_delivered { <> (received == NITEMS) }
