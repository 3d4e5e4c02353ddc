/*
 * The sd_notify(3) protocol by hand: the daemon keeps its five libraries.
 *
 * systemd starts a Type=notify service with $NOTIFY_SOCKET naming a unix
 * datagram socket: a file system path ("/run/systemd/notify"), or a name in
 * the abstract namespace written with a leading "@" (the "@" stands for the
 * leading NUL byte, and the address is exactly that long, with no
 * terminating NUL). One datagram holds newline-separated VAR=value lines.
 * systemd reads the sender's PID from the socket credentials (it sets
 * SO_PASSCRED), so NotifyAccess=main only accepts datagrams from the main
 * process; every thread of it counts, as the kernel reports the thread
 * group's PID.
 *
 * RELOADING=1 must come with MONOTONIC_USEC=<CLOCK_MONOTONIC in
 * microseconds>, so that systemd can tell this reload from an older one;
 * READY=1 ends the reload.
 */
#include "gateway/notify.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

void
gw_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	struct timespec now;
	char msg[256];
	size_t plen;
	socklen_t salen;
	int fd, n;

	if (path == NULL || state == NULL)
		return;
	/* "vsock:..." (a VM's manager) is not for a gateway on a host. */
	if (path[0] != '/' && path[0] != '@')
		return;
	plen = strlen(path);
	if (plen < 2 || plen >= sizeof(sa.sun_path))
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@') {
		sa.sun_path[0] = '\0';
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	} else {
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
	}

	if (strncmp(state, "RELOADING=1", 11) == 0 &&
	    (state[11] == '\0' || state[11] == '\n')) {
		if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
			return;
		n = snprintf(msg, sizeof(msg), "%s\nMONOTONIC_USEC=%llu", state,
		    (unsigned long long)now.tv_sec * 1000000ULL +
		    (unsigned long long)now.tv_nsec / 1000ULL);
	} else {
		n = snprintf(msg, sizeof(msg), "%s", state);
	}
	/* A cut message would tell systemd something else: send nothing. */
	if (n <= 0 || (size_t)n >= sizeof(msg))
		return;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, msg, (size_t)n, MSG_NOSIGNAL,
	    (const struct sockaddr *)&sa, salen);
	close(fd);
}
