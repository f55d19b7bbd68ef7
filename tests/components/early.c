/*
 * early: code that runs before the devmux runtime's own start-up (a
 * .preinit_array hook, as a hostile program could have) tries to escape:
 * read a file, create one, truncate its statistics page, then open a
 * socket.  The stage-1 sandbox applied before exec must stop all of it.
 */
#include <devmux/microkit.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void say(const char *what, long rc)
{
    char buf[200];
    int n = snprintf(buf, sizeof(buf), "early: %s: %s\n", what,
                     rc < 0 ? strerror(errno) : "succeeded (sandbox hole)");
    (void)!write(2, buf, (size_t)n);
}

static void before_everything(void)
{
    say("read /etc/passwd", open("/etc/passwd", O_RDONLY));
    say("create /tmp/devmux-early-escape",
        open("/tmp/devmux-early-escape", O_CREAT | O_WRONLY, 0600));
    say("truncate the statistics page", ftruncate(5, 0));
    (void)!write(2, "early: opening a socket\n", 24);
    say("socket", socket(AF_INET, SOCK_STREAM, 0));
}

__attribute__((section(".preinit_array"), used)) static void (*hook)(void) = before_everything;

void init(void)
{
    devmux_log("early: init reached (the socket call did not kill us)");
}
