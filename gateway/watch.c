/*
 * Reload the policy when its files change. The directories are watched:
 * editors replace files by rename, and Kubernetes updates a mounted
 * ConfigMap by swapping the "..data" symlink inside the mount directory;
 * both show up as events on the directory. A policy file named directly is
 * watched too, through its symlinks, so an in-place edit of a target that
 * lives elsewhere is seen. Replaced files and directories are new inodes,
 * so the watches are set again after every burst of events. Events are
 * debounced: a burst of writes becomes one reload. Events about other
 * files in those directories (a log file, say) are ignored.
 */
#include "gateway/gateway.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <event2/event.h>

#define WATCH_DEBOUNCE_MS 200
#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | \
	IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

#define FILE_MASK (IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

struct gw_watch {
	int fd;
	struct event *ev, *timer;
	void (*cb)(void *);
	void *arg;
	char *const *paths;     /* the configuration's; outlives the watch */
	size_t npaths;
};

static int watch_arm(struct gw_watch *w, char *err, size_t errlen);

static void
watch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_watch *w = arg;
	char err[256];

	/* A path that is gone now may come back; the reload reports it. */
	(void)watch_arm(w, err, sizeof(err));
	w->cb(w->arg);
}

static int
has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

/*
 * Only what can change the policy triggers a reload: a policy file, the
 * ConfigMap's "..data" swap, a file named in the configuration, or a
 * watched file or directory itself. A log file or anything else written
 * next to the policy must not cause a reload per write.
 */
static int
watch_relevant(const struct gw_watch *w, const struct inotify_event *ev)
{
	if (ev->len == 0 || (ev->mask & (IN_IGNORED | IN_Q_OVERFLOW)))
		return 1;
	if (has_suffix(ev->name, ".yaml") || has_suffix(ev->name, ".yml") ||
	    strcmp(ev->name, "..data") == 0)
		return 1;
	for (size_t i = 0; i < w->npaths; i++) {
		const char *base = strrchr(w->paths[i], '/');

		if (strcmp(ev->name, base != NULL ? base + 1 : w->paths[i]) == 0)
			return 1;
	}
	return 0;
}

static void
watch_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_watch *w = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct timeval tv = { 0, WATCH_DEBOUNCE_MS * 1000 };
	int any = 0;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (watch_relevant(w, ev))
				any = 1;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (any)
		evtimer_add(w->timer, &tv);
}

/* The directory to watch for a policy path: itself, or its parent. */
static int
watch_dir_of(const char *path, char *out, size_t len)
{
	struct stat st;
	char *copy;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(out, len, "%s", path);
		return 0;
	}
	copy = strdup(path);
	if (copy == NULL)
		return -1;
	snprintf(out, len, "%s", dirname(copy));
	free(copy);
	return 0;
}

/*
 * Watch every path's directory, and every path that is a file. Adding a
 * watch for an inode already watched is a no-op, so this can run again
 * after each change. Fails only when a directory cannot be watched.
 */
static int
watch_arm(struct gw_watch *w, char *err, size_t errlen)
{
	for (size_t i = 0; i < w->npaths; i++) {
		char dir[PATH_MAX];
		struct stat st;

		if (watch_dir_of(w->paths[i], dir, sizeof(dir)) != 0 ||
		    inotify_add_watch(w->fd, dir, WATCH_MASK) < 0) {
			snprintf(err, errlen, "cannot watch %s: %s", w->paths[i],
			    strerror(errno));
			return -1;
		}
		if (stat(w->paths[i], &st) == 0 && !S_ISDIR(st.st_mode)) {
			char *real = realpath(w->paths[i], NULL);

			(void)inotify_add_watch(w->fd, w->paths[i], FILE_MASK);
			/* The target's directory: it may be replaced there. */
			if (real != NULL && watch_dir_of(real, dir, sizeof(dir)) == 0)
				(void)inotify_add_watch(w->fd, dir, WATCH_MASK);
			free(real);
		}
	}
	return 0;
}

struct gw_watch *
gw_watch_new(struct event_base *base, char *const *paths, size_t npaths,
    void (*cb)(void *), void *arg, char *err, size_t errlen)
{
	struct gw_watch *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->cb = cb;
	w->arg = arg;
	w->paths = paths;
	w->npaths = npaths;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		snprintf(err, errlen, "inotify: %s", strerror(errno));
		goto fail;
	}
	if (watch_arm(w, err, errlen) != 0)
		goto fail;
	w->ev = event_new(base, w->fd, EV_READ | EV_PERSIST, watch_read_cb, w);
	w->timer = evtimer_new(base, watch_timer_cb, w);
	if (w->ev == NULL || w->timer == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	event_add(w->ev, NULL);
	return w;
fail:
	gw_watch_free(w);
	return NULL;
}

void
gw_watch_free(struct gw_watch *w)
{
	if (w == NULL)
		return;
	if (w->ev != NULL)
		event_free(w->ev);
	if (w->timer != NULL)
		event_free(w->timer);
	if (w->fd >= 0)
		close(w->fd);
	free(w);
}
