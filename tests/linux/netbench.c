/*
 * netbench: the network benchmarks through the POSIX layer's sockets, the
 * protocol of the native `sock_bench` (tests/components/src/bin/
 * sock_bench.rs) that xtask's host side drives (xtask/src/peer/bench.rs).
 * A static musl C program.
 *
 *   netbench serve   TCP 9 sink, 19 source, 7 one-byte echo, for ever
 *   netbench         the native check: the three on ports of 127.0.0.1,
 *                    driven by a forked child; prints `netbench: ok`
 *
 * One connection at a time, blocking calls, as sock_bench serves them:
 * - sink: reads until the peer closes; `linux.tcp_rx_mib_per_sec` from the
 *   first byte to the end;
 * - source: reads an 8-byte little-endian length, sends that many bytes
 *   and closes; `linux.tcp_tx_mib_per_sec` from the length to the close;
 * - echo: one byte back for each; `linux.tcp_rr_per_sec` over the round
 *   trips after the first RR_WARMUP.
 * Rates by CLOCK_MONOTONIC (the program cannot know the TSC's frequency;
 * the server's clock is the TSC), so virtual time under -icount.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define RR_WARMUP 100
#define CHECK_BYTES (1u << 20)
#define CHECK_TRIPS 150

static unsigned char buf[CHUNK];

static void fail(const char *what)
{
	printf("netbench: FAILED: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		fail("clock_gettime");
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void report(int quiet, const char *name, uint64_t value, const char *unit)
{
	if (!quiet)
		printf("KAAL-BENCH %s %llu %s\n", name, (unsigned long long)value, unit);
	fflush(stdout);
}

static uint64_t per_sec(uint64_t count, uint64_t ns)
{
	return ns ? (uint64_t)((unsigned __int128)count * 1000000000u / ns) : 0;
}

/* A listener on `addr`:`port` (0: any); its port. */
static int listener(uint32_t addr, uint16_t *port)
{
	/* Non-blocking: a readiness that poll reported may be gone by the
	 * accept (EAGAIN: back to poll), and a blocking accept would then
	 * wait for that port while the others' connections wait. */
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l < 0)
		fail("socket");
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(*port)};
	a.sin_addr.s_addr = htonl(addr);
	socklen_t len = sizeof a;
	if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 4) != 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) != 0)
		fail("bind or listen");
	*port = ntohs(a.sin_port);
	return l;
}

/* Sink: 0, or -1 after a failed read (reported). */
static int sink(int s, int quiet)
{
	ssize_t n = read(s, buf, CHUNK);
	uint64_t t0 = now_ns(), bytes = 0;
	while (n > 0) {
		bytes += (uint64_t)n;
		n = read(s, buf, CHUNK);
	}
	uint64_t ns = now_ns() - t0;
	if (n < 0) {
		printf("netbench: sink: read after %llu bytes: %s\n", (unsigned long long)bytes,
		       strerror(errno));
		return -1;
	}
	if (!quiet)
		printf("netbench: received %llu bytes in %llu ns\n", (unsigned long long)bytes,
		       (unsigned long long)ns);
	report(quiet, "linux.tcp_rx_mib_per_sec", per_sec(bytes, ns) >> 20, "MiB/s");
	return 0;
}

static int source(int s, int quiet)
{
	uint64_t total = 0;
	size_t got = 0;
	while (got < sizeof total) {
		ssize_t n = read(s, (char *)&total + got, sizeof total - got);
		if (n <= 0) {
			printf("netbench: source: the peer closed inside the length\n");
			return -1;
		}
		got += (size_t)n;
	}
	memset(buf, 0x5a, CHUNK);
	uint64_t t0 = now_ns(), sent = 0;
	while (sent < total) {
		size_t want = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
		ssize_t n = write(s, buf, want);
		if (n <= 0) {
			printf("netbench: source: write after %llu bytes: %s\n",
			       (unsigned long long)sent, strerror(errno));
			return -1;
		}
		sent += (uint64_t)n;
	}
	shutdown(s, SHUT_WR);
	uint64_t ns = now_ns() - t0;
	report(quiet, "linux.tcp_tx_mib_per_sec", per_sec(sent, ns) >> 20, "MiB/s");
	return 0;
}

static int echo(int s, int quiet)
{
	unsigned char b;
	uint64_t trips = 0, t0 = now_ns();
	ssize_t n;
	while ((n = read(s, &b, 1)) == 1) {
		if (write(s, &b, 1) != 1) {
			printf("netbench: echo: write: %s\n", strerror(errno));
			return -1;
		}
		if (++trips == RR_WARMUP)
			t0 = now_ns();
	}
	uint64_t ns = now_ns() - t0;
	shutdown(s, SHUT_WR);
	if (n < 0) {
		printf("netbench: echo: read: %s\n", strerror(errno));
		return -1;
	}
	uint64_t timed = trips > RR_WARMUP ? trips - RR_WARMUP : 0;
	if (!quiet)
		printf("netbench: %llu round trips, the last %llu in %llu ns\n",
		       (unsigned long long)trips, (unsigned long long)timed, (unsigned long long)ns);
	if (timed > 0)
		report(quiet, "linux.tcp_rr_per_sec", per_sec(timed, ns), "round_trips/s");
	return 0;
}

typedef int (*serve_fn)(int, int);
static const serve_fn SERVE[3] = {sink, source, echo};

/* Accepts one connection of listener `which` and serves it: 0 when
 * served, -1 when that failed, 1 when none was waiting. */
static int serve_one(int l, int which, int quiet)
{
	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0) {
		if (errno == EAGAIN || errno == ECONNABORTED || errno == EINTR)
			return 1;
		fail("accept4");
	}
	int one = 1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	int r = SERVE[which](s, quiet);
	close(s);
	return r;
}

static void serve(void)
{
	uint16_t ports[3] = {9, 19, 7};
	struct pollfd fds[3];
	for (int i = 0; i < 3; i++)
		fds[i] = (struct pollfd){.fd = listener(INADDR_ANY, &ports[i]), .events = POLLIN};
	printf("netbench: ready\n");
	fflush(stdout);
	for (;;) {
		if (poll(fds, 3, -1) < 0 && errno != EINTR)
			fail("poll");
		for (int i = 0; i < 3; i++)
			if (fds[i].revents & POLLIN)
				serve_one(fds[i].fd, i, 0);
	}
}

/* The native check's client: each phase, short, against `ports`. */
static void drive(const uint16_t ports[3])
{
	for (int i = 0; i < 3; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(ports[i])};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0)
			fail("connect");
		uint64_t got = 0;
		if (i == 0) {
			for (uint64_t sent = 0; sent < CHECK_BYTES; sent += CHUNK)
				if (write(s, buf, CHUNK) != CHUNK)
					fail("write to the sink");
		} else if (i == 1) {
			uint64_t len = CHECK_BYTES;
			if (write(s, &len, sizeof len) != sizeof len)
				fail("write the length");
			ssize_t n;
			while ((n = read(s, buf, CHUNK)) > 0)
				got += (uint64_t)n;
			if (got != CHECK_BYTES)
				fail("the source's length");
		} else {
			for (int k = 0; k < CHECK_TRIPS; k++) {
				unsigned char b = (unsigned char)k, back = 0;
				if (write(s, &b, 1) != 1 || read(s, &back, 1) != 1 || back != b)
					fail("a round trip");
			}
		}
		shutdown(s, SHUT_WR);
		while (read(s, buf, CHUNK) > 0) {
		}
		close(s);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "serve") == 0)
		serve();
	if (argc != 1) {
		printf("usage: netbench [serve]\n");
		return 2;
	}
	uint16_t ports[3] = {0, 0, 0};
	int ls[3];
	for (int i = 0; i < 3; i++)
		ls[i] = listener(INADDR_LOOPBACK, &ports[i]);
	fflush(stdout);
	pid_t c = fork();
	if (c < 0)
		fail("fork");
	if (c == 0)
		drive(ports);
	for (int i = 0; i < 3; i++) {
		int r;
		do {
			struct pollfd one = {.fd = ls[i], .events = POLLIN};
			if (poll(&one, 1, -1) < 0 && errno != EINTR)
				fail("poll");
			r = serve_one(ls[i], i, 1);
		} while (r == 1);
		if (r != 0)
			return 1;
	}
	int status;
	if (waitpid(c, &status, 0) != c || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("netbench: FAILED: the client ended with status %#x\n", status);
		return 1;
	}
	printf("netbench: ok\n");
	return 0;
}
