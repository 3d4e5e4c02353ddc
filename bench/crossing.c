/*
 * bench/crossing.c: what a trip into the kernel costs on this machine, and
 * what io_uring would save of it (issue 13, "Where the time goes").
 *
 *   crossing [-n OPS]          run by "make bench-crossing"
 *
 * egressd makes about nineteen system calls per allowed connection, as
 * HAProxy does, and on a virtual machine that enters its kernel through
 * the hypervisor each call's entry and exit is a large part of the cost.
 * io_uring is the one interface that does the same work with fewer
 * entries: many operations queued in shared memory, one io_uring_enter()
 * for all of them. This program measures the two sides of that trade on
 * the machine it runs on, one pinned thread, nothing else:
 *
 *   getppid                 one system call that does nothing: the entry
 *                           and exit alone;
 *   recv, 1 byte ready      a socket read that completes at once, as a
 *                           relay's read mostly does;
 *   io_uring NOP, B/enter   the same entry shared by B operations;
 *   io_uring RECV, B/enter  B reads of ready sockets in one entry;
 *   splice / io_uring SPLICE  a socket to pipe splice, direct and queued.
 *
 * It prints nanoseconds per operation. It opens only a socketpair and pipes
 * of its own, makes no network traffic, and every loop is bounded by -n.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define XC_PAIRS 32     /* socketpairs for the batched reads */

struct xc_ring {
	int fd;
	unsigned *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static double
xc_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int
xc_ring_open(struct xc_ring *r, unsigned entries)
{
	struct io_uring_params p;
	size_t sq_len, cq_len;
	char *sq, *cq;

	memset(&p, 0, sizeof(p));
	r->fd = (int)syscall(SYS_io_uring_setup, entries, &p);
	if (r->fd < 0)
		return -1;
	sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		sq_len = cq_len = sq_len > cq_len ? sq_len : cq_len;
	sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
	    r->fd, IORING_OFF_SQ_RING);
	if (sq == MAP_FAILED)
		return -1;
	cq = sq;
	if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
		cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
		if (cq == MAP_FAILED)
			return -1;
	}
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe),
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
	    IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		return -1;
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return 0;
}

static struct io_uring_sqe *
xc_sqe(struct xc_ring *r, unsigned i)
{
	unsigned idx = (*r->sq_tail + i) & *r->sq_mask;

	r->sq_array[idx] = idx;
	memset(&r->sqes[idx], 0, sizeof(r->sqes[idx]));
	return &r->sqes[idx];
}

/* Submits the n queued entries, waits for n completions and reaps them;
 * returns the number of completions with a negative result. */
static int
xc_submit(struct xc_ring *r, unsigned n)
{
	unsigned head, tail, failed = 0;

	atomic_store_explicit((_Atomic unsigned *)r->sq_tail, *r->sq_tail + n,
	    memory_order_release);
	if (syscall(SYS_io_uring_enter, r->fd, n, n, IORING_ENTER_GETEVENTS,
	    NULL, 0) != (long)n)
		return -1;
	head = *r->cq_head;
	tail = atomic_load_explicit((_Atomic unsigned *)r->cq_tail,
	    memory_order_acquire);
	for (; head != tail; head++)
		if (r->cqes[head & *r->cq_mask].res < 0)
			failed++;
	atomic_store_explicit((_Atomic unsigned *)r->cq_head, tail,
	    memory_order_release);
	return (int)failed;
}

static void
xc_report(const char *what, double secs, long ops)
{
	printf("%-34s %7.0f ns per operation\n", what, secs / ops * 1e9);
}

/* One byte written to each pair's far end, so a read completes at once. */
static void
xc_fill(int pairs[][2], int n)
{
	for (int i = 0; i < n; i++)
		if (write(pairs[i][1], "x", 1) != 1)
			exit(1);
}

static void
xc_syscalls(long n, int pairs[][2])
{
	char b;
	double t;

	t = xc_now();
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	xc_report("getppid", xc_now() - t, n);

	t = xc_now();
	for (long i = 0; i < n; i++) {
		xc_fill(pairs, 1);
		if (recv(pairs[0][0], &b, 1, 0) != 1)
			exit(1);
	}
	xc_report("recv, 1 byte ready (+write)", xc_now() - t, n);
}

static void
xc_uring(struct xc_ring *r, long n, int pairs[][2])
{
	char buf[XC_PAIRS];
	char label[64];

	for (unsigned b = 1; b <= XC_PAIRS; b *= 2) {
		long rounds = n / b;
		double t = xc_now();

		for (long k = 0; k < rounds; k++) {
			for (unsigned i = 0; i < b; i++)
				xc_sqe(r, i)->opcode = IORING_OP_NOP;
			if (xc_submit(r, b) != 0)
				exit(1);
		}
		snprintf(label, sizeof(label), "io_uring NOP, %u per enter", b);
		xc_report(label, xc_now() - t, rounds * (long)b);
	}
	for (unsigned b = 1; b <= XC_PAIRS; b *= 4) {
		long rounds = n / b;
		double t = xc_now();

		for (long k = 0; k < rounds; k++) {
			xc_fill(pairs, (int)b);
			for (unsigned i = 0; i < b; i++) {
				struct io_uring_sqe *s = xc_sqe(r, i);

				s->opcode = IORING_OP_RECV;
				s->fd = pairs[i][0];
				s->addr = (unsigned long)&buf[i];
				s->len = 1;
			}
			if (xc_submit(r, b) != 0)
				exit(1);
		}
		snprintf(label, sizeof(label), "io_uring RECV, %u per enter (+write)",
		    b);
		xc_report(label, xc_now() - t, rounds * (long)b);
	}
}

static void
xc_splice(struct xc_ring *r, long n, int pairs[][2])
{
	int p[2];
	char b[1];
	double t;

	if (pipe2(p, O_NONBLOCK) != 0)
		exit(1);
	n /= 4;
	t = xc_now();
	for (long i = 0; i < n; i++) {
		xc_fill(pairs, 1);
		if (splice(pairs[0][0], NULL, p[1], NULL, 1,
		    SPLICE_F_NONBLOCK) != 1 || read(p[0], b, 1) != 1)
			exit(1);
	}
	xc_report("splice, 1 byte (+write, +read)", xc_now() - t, n);
	t = xc_now();
	for (long i = 0; i < n; i++) {
		struct io_uring_sqe *s;

		xc_fill(pairs, 1);
		s = xc_sqe(r, 0);
		s->opcode = IORING_OP_SPLICE;
		s->splice_fd_in = pairs[0][0];
		s->splice_off_in = (unsigned long long)-1;
		s->fd = p[1];
		s->off = (unsigned long long)-1;
		s->len = 1;
		if (xc_submit(r, 1) != 0 || read(p[0], b, 1) != 1)
			exit(1);
	}
	xc_report("io_uring SPLICE, 1 (+write, +read)", xc_now() - t, n);
	close(p[0]);
	close(p[1]);
}

int
main(int argc, char **argv)
{
	static int pairs[XC_PAIRS][2];
	struct xc_ring ring;
	long n = 200000;
	int c;

	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c != 'n' || (n = atol(optarg)) < XC_PAIRS || n > 100000000) {
			fprintf(stderr, "usage: crossing [-n OPS]\n");
			return 2;
		}
	}
	for (int i = 0; i < XC_PAIRS; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[i]) != 0) {
			perror("socketpair");
			return 1;
		}
	xc_syscalls(n, pairs);
	if (xc_ring_open(&ring, 64) != 0) {
		printf("io_uring: %s (not measured)\n", strerror(errno));
		return 0;
	}
	xc_uring(&ring, n, pairs);
	xc_splice(&ring, n, pairs);
	return 0;
}
