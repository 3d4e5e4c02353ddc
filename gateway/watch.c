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
 *
 * A regular file is read once its writer is done with it: when it is
 * closed after writing, renamed, or removed. Creating it or writing to it
 * starts nothing, since a writer that pauses mid-file (scp, kubectl cp, a
 * pipe) would otherwise have half a file loaded, and a rule whose
 * "sources:" line is not written yet admits every source. Those writes
 * only postpone a reload that something else already started.
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
#define WATCH_MASK (IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_TO | \
	IN_MOVED_FROM | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

#define FILE_MASK (IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

enum watch_action {
	WATCH_IGNORE,
	WATCH_POSTPONE,         /* delay a pending reload, start none */
	WATCH_RELOAD
};

/* A watched directory, to tell what an IN_CREATE made there. */
struct watch_dir {
	int wd;
	char *path;
};

struct gw_watch {
	int fd;
	struct event *ev, *timer;
	void (*cb)(void *);
	void *arg;
	char *const *paths;     /* the configuration's; outlives the watch */
	size_t npaths;
	struct watch_dir *dirs;
	size_t ndirs, capdirs;
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

static struct watch_dir *
watch_dir_find(struct gw_watch *w, int wd)
{
	for (size_t i = 0; i < w->ndirs; i++)
		if (w->dirs[i].wd == wd)
			return &w->dirs[i];
	return NULL;
}

/* The kernel dropped the watch (its directory is gone): forget it. */
static void
watch_dir_forget(struct gw_watch *w, int wd)
{
	struct watch_dir *d = watch_dir_find(w, wd);

	if (d == NULL)
		return;
	free(d->path);
	*d = w->dirs[--w->ndirs];
}

/*
 * Whether an IN_CREATE made a new regular file, which its writer is still
 * to fill. A created symlink or hard link is complete at once (a new
 * ConfigMap key appears as a symlink), and a file we cannot look at (gone
 * already, or in a directory we do not know) is treated as complete too:
 * that is the behaviour from before, a reload.
 */
static int
watch_created_file(struct gw_watch *w, const struct inotify_event *ev)
{
	struct watch_dir *d = watch_dir_find(w, ev->wd);
	char path[PATH_MAX];
	struct stat st;
	int n;

	if (d == NULL)
		return 0;
	n = snprintf(path, sizeof(path), "%s/%s", d->path, ev->name);
	if (n < 0 || (size_t)n >= sizeof(path) || lstat(path, &st) != 0)
		return 0;
	return S_ISREG(st.st_mode) && st.st_nlink == 1;
}

static enum watch_action
watch_classify(struct gw_watch *w, const struct inotify_event *ev)
{
	if (ev->mask & IN_IGNORED)
		watch_dir_forget(w, ev->wd);
	if (!watch_relevant(w, ev))
		return WATCH_IGNORE;
	/* A writer is at work: what it wrote so far is not a policy. */
	if (ev->mask & IN_MODIFY)
		return WATCH_POSTPONE;
	if ((ev->mask & IN_CREATE) && !(ev->mask & IN_ISDIR) &&
	    watch_created_file(w, ev))
		return WATCH_POSTPONE;
	return WATCH_RELOAD;
}

/*
 * A reload starts WATCH_DEBOUNCE_MS after the last event that calls for
 * one. Writes to a policy file push a pending reload back the same way,
 * so that one started by another file (cp of several files, tar) does not
 * read the next file while it is being written steadily; they cannot hold
 * it back across a pause longer than the debounce.
 */
static void
watch_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_watch *w = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct timeval tv = { 0, WATCH_DEBOUNCE_MS * 1000 };
	int reload = 0, postpone = 0;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			switch (watch_classify(w, ev)) {
			case WATCH_RELOAD:
				reload = 1;
				break;
			case WATCH_POSTPONE:
				postpone = 1;
				break;
			case WATCH_IGNORE:
				break;
			}
			p += sizeof(*ev) + ev->len;
		}
	}
	if (reload || (postpone && evtimer_pending(w->timer, NULL)))
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

/* Watch a directory and remember its path; a watch already set is kept. */
static int
watch_add_dir(struct gw_watch *w, const char *dir)
{
	int wd = inotify_add_watch(w->fd, dir, WATCH_MASK);
	struct watch_dir *d;

	if (wd < 0)
		return -1;
	if (watch_dir_find(w, wd) != NULL)
		return 0;
	if (w->ndirs == w->capdirs) {
		size_t cap = w->capdirs ? w->capdirs * 2 : 8;

		d = reallocarray(w->dirs, cap, sizeof(*d));
		if (d == NULL)
			return -1;
		w->dirs = d;
		w->capdirs = cap;
	}
	d = &w->dirs[w->ndirs];
	if ((d->path = strdup(dir)) == NULL)
		return -1;
	d->wd = wd;
	w->ndirs++;
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
		    watch_add_dir(w, dir) != 0) {
			snprintf(err, errlen, "cannot watch %s: %s", w->paths[i],
			    strerror(errno));
			return -1;
		}
		if (stat(w->paths[i], &st) == 0 && !S_ISDIR(st.st_mode)) {
			char *real = realpath(w->paths[i], NULL);

			(void)inotify_add_watch(w->fd, w->paths[i], FILE_MASK);
			/* The target's directory: it may be replaced there. */
			if (real != NULL && watch_dir_of(real, dir, sizeof(dir)) == 0)
				(void)watch_add_dir(w, dir);
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
	for (size_t i = 0; i < w->ndirs; i++)
		free(w->dirs[i].path);
	free(w->dirs);
	free(w);
}
