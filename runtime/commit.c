/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Group commit of queued jobs' records (DECISIONS.md (aw)). A submission
 * writes its job's record and holds its answer (conn->hold_out); a thread
 * makes the records durable with one syncfs of the state directory's file
 * system while the event loop goes on, and the answers held for the records
 * written before that syncfs began go when it ends. The submissions that
 * come meanwhile gather for the next one: the loop never waits for the disk,
 * and an answer never goes before its record is on the disk. Without the
 * thread (it could not be made; tried again at the next commit) the loop
 * syncs itself, as before. */
#include "runtime/runtime-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

struct commit {
	int req[2];  /* loop -> thread: a byte per syncfs asked (EOF: end) */
	int done[2]; /* thread -> loop: its result, an int (0 or -errno) */
	int state_fd;
	pthread_t thread;
	bool busy;         /* a syncfs is under way */
	uint64_t gen;      /* the records written since the last syncfs began */
	uint64_t busy_gen; /* those that the syncfs under way makes durable */
};

static void *commit_main(void *arg)
{
	struct commit *cm = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main loop's */
	for (;;) {
		char b;
		ssize_t n = read(cm->req[0], &b, 1);
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		r = syncfs(cm->state_fd) < 0 ? -errno : 0;
		while (write(cm->done[1], &r, sizeof(r)) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

static void commit_close(struct commit *cm)
{
	for (int i = 0; i < 2; i++) {
		if (cm->req[i] >= 0)
			close(cm->req[i]);
		if (cm->done[i] >= 0)
			close(cm->done[i]);
	}
	free(cm);
}

/* The thread and its pipes, made at the first commit (xosd has detached
 * by then: a thread does not outlive a fork); NULL: the loop syncs. */
static struct commit *commit_make(struct daemon *d)
{
	struct commit *cm = calloc(1, sizeof(*cm));

	if (!cm)
		return NULL;
	cm->req[0] = cm->req[1] = cm->done[0] = cm->done[1] = -EBADF;
	cm->state_fd = d->state_fd;
	if (pipe2(cm->req, O_CLOEXEC) < 0 || pipe2(cm->done, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    daemon_epoll_add(d, cm->done[0], EPOLLIN, EP_COMMIT, cm) < 0 ||
	    pthread_create(&cm->thread, NULL, commit_main, cm) != 0) {
		if (!d->commit_warned) /* (tried again at the next commit: out of fds, say) */
			log_warn("Failed to start the thread that syncs queued jobs' records: "
				 "xosd syncs them itself");
		d->commit_warned = true;
		if (cm->done[0] >= 0)
			epoll_ctl(d->epfd, EPOLL_CTL_DEL, cm->done[0], NULL);
		commit_close(cm);
		return NULL;
	}
	return cm;
}

/* The answers held for generations up to gen go (r < 0: their records may
 * not be on the disk; their connections close without one). */
static void release_held(struct daemon *d, uint64_t gen, int r)
{
	if (r < 0)
		log_error("Failed to sync the queued jobs' records: %s; their submitters get no "
			  "answer",
			  strerror(-r));
	for (struct conn *c = d->conns, *next; c; c = next) {
		next = c->next;
		if (!c->hold_out || c->closed || c->hold_gen > gen)
			continue;
		c->hold_out = false;
		if (r < 0) {
			c->out_off = c->out_len;
			c->mode = CONN_CLOSING;
		}
		conn_event(d, c, 0);
	}
}

uint64_t commit_hold(struct daemon *d, struct conn *c)
{
	c->hold_out = true;
	c->hold_gen = d->commit ? d->commit->gen : 0;
	return c->hold_gen;
}

/* 1: a syncfs began in the thread, 0: done here (no thread), the answers
 * released either way once their records are durable. */
int commit_start(struct daemon *d)
{
	struct commit *cm = d->commit;
	char b = 0;
	ssize_t n;

	if (cm && cm->busy)
		return 1; /* (the next one begins when it ends) */
	if (!cm)
		cm = d->commit = commit_make(d);
	if (cm) {
		do
			n = write(cm->req[1], &b, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1) {
			cm->busy = true;
			cm->busy_gen = cm->gen++;
			return 1;
		}
	}
	/* no thread: here, every answer held */
	release_held(d, UINT64_MAX, syncfs(d->state_fd) < 0 ? -errno : 0);
	return 0;
}

void commit_done(struct daemon *d)
{
	struct commit *cm = d->commit;
	int r;
	ssize_t n;

	if (!cm || !cm->busy)
		return;
	do
		n = read(cm->done[0], &r, sizeof(r));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(r))
		return; /* (EAGAIN: not yet) */
	cm->busy = false;
	release_held(d, cm->busy_gen, r);
}

bool commit_busy(const struct daemon *d)
{
	return d->commit && d->commit->busy;
}

void commit_stop(struct daemon *d)
{
	struct commit *cm = d->commit;

	if (!cm)
		return;
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, cm->done[0], NULL);
	close(cm->req[1]); /* (the thread ends after the syncfs under way) */
	cm->req[1] = -EBADF;
	pthread_join(cm->thread, NULL);
	commit_close(cm);
	d->commit = NULL;
}
