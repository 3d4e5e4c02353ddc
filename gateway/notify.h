/*
 * gateway/notify: tell the service manager what state the daemon is in
 * (systemd's Type=notify), without linking libsystemd.
 */
#ifndef EGRESSD_NOTIFY_H
#define EGRESSD_NOTIFY_H

/*
 * Send STATE ("READY=1", "STOPPING=1", "RELOADING=1", or any
 * newline-separated VAR=value lines) to the socket named by $NOTIFY_SOCKET.
 * "RELOADING=1" gets the MONOTONIC_USEC=... line systemd asks for added.
 * Without $NOTIFY_SOCKET (not started by systemd, or not Type=notify) it does
 * nothing. A failure is not reported: the daemon serves either way, and
 * systemd says itself when READY=1 never came (the start times out).
 */
void gw_notify(const char *state);

#endif
