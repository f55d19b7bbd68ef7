/* Small helpers shared by the supervisor and the tools: allocation that
 * cannot fail silently, and monotonic time. */
#ifndef DEVMUX_UTIL_H
#define DEVMUX_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
uint64_t now_ns(void);
/* printf into a caller's error buffer of errlen bytes (nothing if err is
 * NULL or errlen 0), truncating. */
void errfmt(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Writes all of buf or fails; retries on EINTR and short writes. */
int write_all(int fd, const void *buf, size_t len);

#endif
