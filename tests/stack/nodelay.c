/* Preloaded into pcscd by stack.sh: sets TCP_NODELAY on the sockets the vpcd driver accepts or opens.
 *
 * Debian's vpcd writes each frame's length and body with two send() calls; with Nagle on one side and
 * delayed ACK on the other every APDU then waits ~43 ms (docs/simulator.md). With TCP_NODELAY an APDU
 * round trip takes ~0.2 ms. Test stack only: nothing of this ships to users. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void nodelay(int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    int one = 1;
    if (fd < 0 || getsockname(fd, (struct sockaddr *) &addr, &len) != 0)
        return;
    if (addr.ss_family == AF_INET || addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real)
        real = dlsym(RTLD_NEXT, "accept");
    int s = real(fd, addr, len);
    nodelay(s);
    return s;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real)
        real = dlsym(RTLD_NEXT, "accept4");
    int s = real(fd, addr, len, flags);
    nodelay(s);
    return s;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (!real)
        real = dlsym(RTLD_NEXT, "connect");
    int r = real(fd, addr, len);
    nodelay(fd);
    return r;
}
