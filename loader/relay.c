/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A unit's stdout and stderr go through pipes to the loader, which writes
 * the spool files: a job cannot truncate or seek them, and each keeps at
 * most the newest log_size bytes. What is older is punched out of the file
 * (FALLOC_FL_PUNCH_HOLE): offsets stay those of the whole stream, so readers
 * that follow a file never lose their place, and the first data in a file
 * (SEEK_DATA) says how much was dropped before it. */
#include <fcntl.h>
#include <sys/stat.h>

#include "loader/loader-internal.h"

#define RELAY_BLOCK 4096ULL   /* holes are punched in whole blocks */
#define RELAY_ROUNDS 64       /* pipe reads per event: other units get their turn */
#define RELAY_CHUNK (1 << 20) /* what one splice may move */

uint64_t loader_relay_punch_to(uint64_t start, uint64_t end, uint64_t cap)
{
	uint64_t keep, to;

	if (cap == 0 || end - start <= cap)
		return start;
	keep = cap - cap / 4; /* punch a quarter at a time, not every write */
	to = (end - keep) & ~(RELAY_BLOCK - 1);
	return to > start ? to : start;
}

void loader_relay_init(struct relay *r)
{
	*r = (struct relay){ .pipe_fd = -EBADF, .file_fd = -EBADF };
}

void loader_relay_close(struct relay *r)
{
	closep(&r->pipe_fd);
	closep(&r->file_fd);
}

int loader_relay_open(struct relay *r, int spool_fd, const char *name, uint64_t cap,
		      int *ret_write_end)
{
	_cleanup_close_ int file = -EBADF;
	struct stat st;
	int fds[2];

	file = openat(spool_fd, name, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (file < 0 || fstat(file, &st) < 0)
		return -errno;
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	/* the unit's end blocks (back-pressure); the loader's end does not */
	if (fcntl(fds[1], F_SETFL, 0) < 0) {
		int e = -errno;

		close(fds[0]);
		close(fds[1]);
		return e;
	}
	r->pipe_fd = fds[0];
	r->file_fd = TAKE_FD(file);
	r->off = (uint64_t)st.st_size;
	r->start = 0;
	r->cap = cap;
	r->discard = false;
	*ret_write_end = fds[1];
	return 0;
}

/* Drop what is older than the newest cap bytes. */
static void relay_trim(struct relay *r)
{
	uint64_t to = loader_relay_punch_to(r->start, r->off, r->cap);

	if (to == r->start)
		return;
	if (fallocate(r->file_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)r->start,
		      (off_t)(to - r->start)) < 0) {
		log_warn("Cannot punch out old output (%m): output beyond the log size limit "
			 "is discarded");
		r->discard = true;
		return;
	}
	r->start = to;
}

/* Move what the pipe holds to the file (or drop it, when discarding):
 * bytes taken from the pipe, 0 at EOF, -EAGAIN when it is empty. */
static ssize_t relay_move(struct relay *r)
{
	char buf[65536];
	loff_t off = (loff_t)r->off;
	ssize_t n;

	if (!r->discard) {
		n = splice(r->pipe_fd, NULL, r->file_fd, &off, RELAY_CHUNK, SPLICE_F_NONBLOCK);
		if (n > 0)
			r->off = (uint64_t)off;
		if (n >= 0 || (errno != EINVAL && errno != ENOSYS))
			return n < 0 ? -errno : n;
	}
	n = read(r->pipe_fd, buf, sizeof(buf)); /* no splice here, or discarding */
	if (n <= 0)
		return n < 0 ? -errno : 0;
	if (r->discard)
		return n;
	if (pwrite(r->file_fd, buf, (size_t)n, (off_t)r->off) != n) {
		log_warn("Failed to write a unit's output (%m): the rest is discarded");
		r->discard = true;
		return n;
	}
	r->off += (uint64_t)n;
	return n;
}

int loader_relay_pump(struct relay *r)
{
	for (int i = 0; r->pipe_fd >= 0 && i < RELAY_ROUNDS; i++) {
		ssize_t n = relay_move(r);

		if (n == -EINTR)
			continue;
		if (n == -EAGAIN)
			return 0;
		if (n <= 0) { /* EOF (every writer gone), or an error: no more */
			if (n < 0)
				log_warn("Failed to relay a unit's output: %s", strerror((int)-n));
			closep(&r->pipe_fd);
			return 1;
		}
		relay_trim(r);
	}
	return 0;
}

int loader_relay_write(struct relay *r, const char *text, size_t len)
{
	if (r->file_fd < 0 || r->discard)
		return 0;
	if (pwrite(r->file_fd, text, len, (off_t)r->off) != (ssize_t)len)
		return -EIO;
	r->off += len;
	relay_trim(r);
	return 0;
}
