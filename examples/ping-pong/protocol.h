/* What ping and pong agree on: the names in the system description and the
 * protected-call labels.  Each buffer carries one 64-bit counter. */
#ifndef PING_PONG_PROTOCOL_H
#define PING_PONG_PROTOCOL_H

#define PP_REGION      "ring"
#define PP_ACTIVE      "active" /* ping -> pong: buffers holding n */
#define PP_FREE        "free"   /* pong -> ping: buffers holding n + 1 */
#define PP_BUFFERS     "buffers"
#define PP_CH_DATA     0 /* notifications both ways */
#define PP_CH_CALL     1 /* ping calls pong */
#define PP_LABEL_STATS 1 /* reply: MR0 = counters seen, MR1 = last, MR2 = replayed */

#endif
