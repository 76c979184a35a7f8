/*
 * unix: AF_UNIX stream sockets as Linux answers them: a socketpair across
 * fork (1 MiB each way, byte-exact, with read/write, readv/writev,
 * send/recv, sendto/recvfrom, sendmsg/recvmsg), non-blocking EAGAIN,
 * poll and epoll readiness, shutdown (EOF, EPIPE with and without
 * SIGPIPE, POLLRDHUP, POLLHUP), a blocking read woken by the peer's
 * close, a path-named server (parent) and client (child), an abstract
 * name, datagram pairs and named datagram sockets, and the errors ENOENT,
 * ECONNREFUSED, EADDRINUSE, EINVAL, EISCONN, EMSGSIZE, EPROTOTYPE.
 *
 * Prints `unix: ok`, exit 0; on the first failure `unix: FAILED ...` and
 * exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGRAM "unix"
#include "check.h"

#define MIB (1 << 20)

/* The byte at offset i of direction `dir`'s stream. */
static unsigned char pattern(int dir, size_t i)
{
	return (unsigned char)((i * 131 + (i >> 11) * 7 + (size_t)dir * 29) & 0xff);
}

static uint64_t fnv(uint64_t h, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t pattern_sum(int dir)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < MIB; i++) {
		unsigned char c = pattern(dir, i);
		h = fnv(h, &c, 1);
	}
	return h;
}

static unsigned char buf[65536];

/* Sends 1 MiB of direction `dir`, each chunk by another call. */
static int send_mib(int fd, int dir)
{
	size_t done = 0;
	int round = 0;
	while (done < MIB) {
		size_t n = MIB - done < 40000 ? MIB - done : 40000;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(dir, done + i);
		ssize_t k;
		switch (round++ % 4) {
		case 0:
			k = write(fd, buf, n);
			break;
		case 1:
			k = send(fd, buf, n, MSG_NOSIGNAL);
			break;
		case 2: {
			struct iovec v[2] = { { buf, n / 3 }, { buf + n / 3, n - n / 3 } };
			k = writev(fd, v, 2);
			break;
		}
		default: {
			struct iovec v[2] = { { buf, n / 2 }, { buf + n / 2, n - n / 2 } };
			struct msghdr m = { .msg_iov = v, .msg_iovlen = 2 };
			k = sendmsg(fd, &m, 0);
			break;
		}
		}
		if (k <= 0)
			return -1;
		done += (size_t)k;
	}
	return 0;
}

/* Receives 1 MiB of direction `dir`: the bytes that differ, or -1. */
static long recv_mib(int fd, int dir, uint64_t *sum)
{
	size_t done = 0;
	long wrong = 0;
	int round = 0;
	*sum = 0xcbf29ce484222325ull;
	while (done < MIB) {
		size_t want = MIB - done < sizeof buf ? MIB - done : sizeof buf;
		ssize_t k;
		switch (round++ % 4) {
		case 0:
			k = read(fd, buf, want);
			break;
		case 1:
			k = recv(fd, buf, want, 0);
			break;
		case 2: {
			struct iovec v[2] = { { buf, want / 2 }, { buf + want / 2, want - want / 2 } };
			k = readv(fd, v, 2);
			break;
		}
		default: {
			struct iovec v = { buf, want };
			struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
			k = recvmsg(fd, &m, 0);
			break;
		}
		}
		if (k <= 0)
			return -1;
		for (ssize_t i = 0; i < k; i++)
			wrong += buf[i] != pattern(dir, done + (size_t)i);
		*sum = fnv(*sum, buf, (size_t)k);
		done += (size_t)k;
	}
	return wrong;
}

static void pair_across_fork(void)
{
	int sv[2];
	check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	check(fcntl(sv[0], F_GETFD) == FD_CLOEXEC, "SOCK_CLOEXEC");
	pid_t c = fork();
	if (c == 0) {
		close(sv[0]);
		uint64_t sum;
		long wrong = recv_mib(sv[1], 0, &sum);
		int bad = wrong != 0 || sum != pattern_sum(0);
		if (send_mib(sv[1], 1) != 0)
			bad = 1;
		/* Our checksum last, as the parent computed it. */
		if (write(sv[1], &sum, sizeof sum) != sizeof sum)
			bad = 1;
		_exit(bad);
	}
	close(sv[1]);
	check(send_mib(sv[0], 0) == 0, "sending 1 MiB to the child");
	uint64_t sum, theirs = 0;
	check(recv_mib(sv[0], 1, &sum) == 0, "1 MiB from the child byte-exact");
	check(sum == pattern_sum(1), "checksum of the child's MiB");
	check(read(sv[0], &theirs, sizeof theirs) == sizeof theirs && theirs == pattern_sum(0),
	      "the child's checksum of our MiB");
	check(read(sv[0], buf, 1) == 0, "EOF once the child exits");
	int st;
	check(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child saw its MiB");
	close(sv[0]);
}

static void nonblocking(void)
{
	int sv[2];
	check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0, "non-blocking pair");
	check(fcntl(sv[0], F_GETFL) & O_NONBLOCK, "SOCK_NONBLOCK");
	check(read(sv[0], buf, 10) == -1 && errno == EAGAIN, "empty read is EAGAIN");
	size_t total = 0;
	for (;;) {
		ssize_t k = write(sv[0], buf, sizeof buf);
		if (k < 0) {
			check(errno == EAGAIN, "a full buffer is EAGAIN");
			break;
		}
		total += (size_t)k;
		if (total > 64 * MIB)
			break;
	}
	check(total > 0 && total < 64 * MIB, "the buffer fills");
	struct pollfd p = { .fd = sv[0], .events = POLLOUT };
	check(poll(&p, 1, 0) == 0, "full: not POLLOUT");
	size_t got = 0;
	for (;;) {
		ssize_t k = read(sv[1], buf, sizeof buf);
		if (k < 0) {
			check(errno == EAGAIN, "drained: EAGAIN");
			break;
		}
		got += (size_t)k;
	}
	check(got == total, "every byte written is read");
	check(poll(&p, 1, 0) == 1 && (p.revents & POLLOUT), "drained: POLLOUT");
	close(sv[0]);
	close(sv[1]);

	check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "blocking pair");
	check(recv(sv[0], buf, 10, MSG_DONTWAIT) == -1 && errno == EAGAIN, "MSG_DONTWAIT is EAGAIN");
	check(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0, "F_SETFL O_NONBLOCK");
	check(read(sv[0], buf, 10) == -1 && errno == EAGAIN, "O_NONBLOCK by fcntl is EAGAIN");
	close(sv[0]);
	close(sv[1]);
}

static void readiness(void)
{
	int sv[2];
	check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "pair for poll");
	struct pollfd p = { .fd = sv[0], .events = POLLIN | POLLOUT | POLLRDHUP };
	check(poll(&p, 1, 0) == 1 && p.revents == POLLOUT, "fresh: POLLOUT only");
	check(write(sv[1], "x", 1) == 1, "write for poll");
	check(poll(&p, 1, 0) == 1 && p.revents == (POLLIN | POLLOUT), "data: POLLIN | POLLOUT");
	check(read(sv[0], buf, 10) == 1, "read it");

	int ep = epoll_create1(0);
	struct epoll_event e = { .events = EPOLLIN, .data.u32 = 7 };
	check(epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &e) == 0, "epoll_ctl add");
	check(epoll_wait(ep, &e, 1, 0) == 0, "epoll: nothing yet");

	/* A child writes after a while: poll and then epoll wake. */
	pid_t c = fork();
	if (c == 0) {
		usleep(100000);
		if (write(sv[1], "y", 1) != 1)
			_exit(1);
		usleep(100000);
		_exit(write(sv[1], "z", 1) != 1);
	}
	p.events = POLLIN;
	check(poll(&p, 1, 5000) == 1 && p.revents == POLLIN, "poll woken by the child's write");
	check(read(sv[0], buf, 10) == 1 && buf[0] == 'y', "read y");
	check(epoll_wait(ep, &e, 1, 5000) == 1 && e.data.u32 == 7 && e.events == EPOLLIN,
	      "epoll woken by the child's write");
	check(read(sv[0], buf, 10) == 1 && buf[0] == 'z', "read z");
	int st;
	check(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "poll child");
	close(ep);
	close(sv[0]);
	close(sv[1]);
}

static volatile sig_atomic_t pipes;

static void on_sigpipe(int sig)
{
	(void)sig;
	pipes++;
}

static void shutdowns(void)
{
	int sv[2];
	signal(SIGPIPE, on_sigpipe);
	check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "pair for shutdown");
	check(write(sv[0], "abc", 3) == 3, "write before SHUT_WR");
	check(shutdown(sv[0], SHUT_WR) == 0, "SHUT_WR");
	check(read(sv[1], buf, 10) == 3 && memcmp(buf, "abc", 3) == 0, "data before EOF");
	check(read(sv[1], buf, 10) == 0, "EOF after SHUT_WR");
	struct pollfd p = { .fd = sv[1], .events = POLLIN | POLLOUT | POLLRDHUP };
	check(poll(&p, 1, 0) == 1 && p.revents == (POLLIN | POLLOUT | POLLRDHUP),
	      "peer's SHUT_WR: POLLIN | POLLOUT | POLLRDHUP");
	check(send(sv[0], "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE && pipes == 0,
	      "send after SHUT_WR: EPIPE, no signal with MSG_NOSIGNAL");
	check(write(sv[0], "x", 1) == -1 && errno == EPIPE && pipes == 1,
	      "write after SHUT_WR: EPIPE and SIGPIPE");
	check(write(sv[1], "back", 4) == 4, "the other way still works");
	check(read(sv[0], buf, 10) == 4, "read the other way");
	check(shutdown(sv[0], 7) == -1 && errno == EINVAL, "shutdown how 7 is EINVAL");
	close(sv[1]);
	p.fd = sv[0];
	check(poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLIN)) == (POLLHUP | POLLIN),
	      "peer closed: POLLHUP | POLLIN");
	check(read(sv[0], buf, 10) == 0, "EOF after the peer's close");
	close(sv[0]);

	check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "pair for SHUT_RD");
	check(shutdown(sv[0], SHUT_RD) == 0, "SHUT_RD");
	check(read(sv[0], buf, 10) == 0, "read after SHUT_RD is 0");
	check(send(sv[1], "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE,
	      "peer's send after SHUT_RD is EPIPE");
	close(sv[0]);
	close(sv[1]);

	/* A blocking read is woken by the peer's close (its exit). */
	check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "pair for close");
	pid_t c = fork();
	if (c == 0) {
		close(sv[0]);
		usleep(100000);
		if (write(sv[1], "last", 4) != 4)
			_exit(1);
		_exit(0);
	}
	close(sv[1]);
	check(read(sv[0], buf, 10) == 4, "blocking read gets the last bytes");
	check(read(sv[0], buf, 10) == 0, "blocking read woken by the peer's exit: EOF");
	int st;
	check(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "close child");
	close(sv[0]);
	signal(SIGPIPE, SIG_DFL);
}

static socklen_t addr_of(struct sockaddr_un *a, const char *path, int abstract)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	size_t n = strlen(path);
	memcpy(a->sun_path + abstract, path, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + abstract + n + !abstract);
}

/* The child of a named exchange: connects, greets, checks the answer. */
static int client(const struct sockaddr_un *a, socklen_t len)
{
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (const struct sockaddr *)a, len) != 0)
		return 2;
	struct sockaddr_un peer;
	socklen_t pl = sizeof peer;
	if (getpeername(s, (struct sockaddr *)&peer, &pl) != 0 || pl != len ||
	    memcmp(&peer, a, len) != 0)
		return 3;
	if (write(s, "hello from the child", 20) != 20)
		return 4;
	char b[32];
	ssize_t k = read(s, b, sizeof b);
	if (k != 17 || memcmp(b, "hello from parent", 17) != 0)
		return 5;
	return read(s, b, sizeof b) == 0 ? 0 : 6;
}

/* Serves one client on listener `l` bound to `a`. */
static void serve_one(int l, const struct sockaddr_un *a, socklen_t len, const char *what)
{
	pid_t c = fork();
	if (c == 0)
		_exit(client(a, len));
	struct pollfd p = { .fd = l, .events = POLLIN };
	check(poll(&p, 1, 5000) == 1 && p.revents == POLLIN, "listener readable on a connect");
	struct sockaddr_un peer;
	socklen_t pl = sizeof peer;
	int s = accept4(l, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
	check(s >= 0, "accept4");
	check(pl == offsetof(struct sockaddr_un, sun_path) && peer.sun_family == AF_UNIX,
	      "an unbound client's name is the family alone");
	struct sockaddr_un mine;
	socklen_t ml = sizeof mine;
	check(getsockname(s, (struct sockaddr *)&mine, &ml) == 0 && ml == len &&
		      memcmp(&mine, a, len) == 0,
	      "the accepted socket's name is the listener's");
	char b[32];
	check(read(s, b, sizeof b) == 20 && memcmp(b, "hello from the child", 20) == 0,
	      "the client's greeting");
	check(write(s, "hello from parent", 17) == 17, "the answer");
	close(s);
	int st;
	check(waitpid(c, &st, 0) == c && WIFEXITED(st), "client child");
	if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
		printf("unix: %s client failed at step %d\n", what, WEXITSTATUS(st));
		check(0, "the client's checks");
	}
}

static void named(void)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/kaal_unix_%d.sock", (int)getpid());
	unlink(path);
	struct sockaddr_un a;
	socklen_t len = addr_of(&a, path, 0);

	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	check(c >= 0, "socket");
	check(connect(c, (struct sockaddr *)&a, len) == -1 && errno == ENOENT, "connect to no file: ENOENT");
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	check(bind(l, (struct sockaddr *)&a, len) == 0, "bind");
	check(access(path, F_OK) == 0, "bind made the file");
	struct sockaddr_un got;
	socklen_t gl = sizeof got;
	check(getsockname(l, (struct sockaddr *)&got, &gl) == 0 && gl == len &&
		      strcmp(got.sun_path, path) == 0,
	      "getsockname is the path");
	check(bind(l, (struct sockaddr *)&a, len) == -1 && errno == EADDRINUSE,
	      "the same path again: EADDRINUSE");
	struct sockaddr_un ab;
	socklen_t abl = addr_of(&ab, "kaal-unix-rebind", 1);
	check(bind(l, (struct sockaddr *)&ab, abl) == -1 && errno == EINVAL,
	      "a bound socket's second name: EINVAL");
	int o = socket(AF_UNIX, SOCK_STREAM, 0);
	check(bind(o, (struct sockaddr *)&a, len) == -1 && errno == EADDRINUSE, "bound path: EADDRINUSE");
	check(connect(c, (struct sockaddr *)&a, len) == -1 && errno == ECONNREFUSED,
	      "connect before listen: ECONNREFUSED");
	check(accept(l, NULL, NULL) == -1 && errno == EINVAL, "accept before listen: EINVAL");
	check(listen(l, 4) == 0, "listen");
	check(fcntl(l, F_SETFL, O_NONBLOCK) == 0 && accept(l, NULL, NULL) == -1 && errno == EAGAIN,
	      "non-blocking accept with none waiting: EAGAIN");
	check(fcntl(l, F_SETFL, 0) == 0, "blocking again");
	check(getpeername(l, (struct sockaddr *)&got, &gl) == -1 && errno == ENOTCONN,
	      "a listener's peer: ENOTCONN");
	serve_one(l, &a, len, "named");

	/* Connected before accept: data waits, then accept finds it. */
	check(connect(c, (struct sockaddr *)&a, len) == 0, "connect before accept");
	check(connect(c, (struct sockaddr *)&a, len) == -1 && errno == EISCONN, "second connect: EISCONN");
	check(write(c, "early", 5) == 5, "write before accept");
	int s = accept(l, NULL, NULL);
	check(s >= 0 && read(s, buf, 10) == 5, "accepted with the early bytes");
	close(s);
	close(c);

	close(l);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	check(connect(c, (struct sockaddr *)&a, len) == -1 && errno == ECONNREFUSED,
	      "listener closed: ECONNREFUSED");
	check(bind(o, (struct sockaddr *)&a, len) == -1 && errno == EADDRINUSE,
	      "the file stays: EADDRINUSE");
	check(unlink(path) == 0, "unlink the name");
	check(connect(c, (struct sockaddr *)&a, len) == -1 && errno == ENOENT, "unlinked: ENOENT");
	check(bind(o, (struct sockaddr *)&a, len) == 0, "bind again after unlink");
	close(o);
	close(c);
	unlink(path);
}

static void abstract(void)
{
	char name[64];
	snprintf(name, sizeof name, "kaal-unix-%d", (int)getpid());
	struct sockaddr_un a;
	socklen_t len = addr_of(&a, name, 1);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	check(bind(l, (struct sockaddr *)&a, len) == 0, "bind an abstract name");
	int o = socket(AF_UNIX, SOCK_STREAM, 0);
	check(bind(o, (struct sockaddr *)&a, len) == -1 && errno == EADDRINUSE, "abstract name in use");
	check(listen(l, 1) == 0, "listen abstract");
	serve_one(l, &a, len, "abstract");
	close(l);
	check(bind(o, (struct sockaddr *)&a, len) == 0, "abstract name freed by close");
	close(o);

	/* The family alone binds a fresh abstract name. */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un u = { .sun_family = AF_UNIX };
	check(bind(s, (struct sockaddr *)&u, sizeof(sa_family_t)) == 0, "autobind");
	socklen_t ul = sizeof u;
	check(getsockname(s, (struct sockaddr *)&u, &ul) == 0 && ul == 8 && u.sun_path[0] == 0,
	      "autobind: five hex digits");
	close(s);
}

/* A datagram pair: boundaries kept, truncation, a forked sender, no EOF. */
static void datagrams(void)
{
	int sv[2];
	check(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "datagram socketpair");
	int t = -1;
	socklen_t tl = sizeof t;
	check(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &t, &tl) == 0 && t == SOCK_DGRAM,
	      "SO_TYPE SOCK_DGRAM");
	check(send(sv[0], "one", 3, 0) == 3 && send(sv[0], "", 0, 0) == 0 &&
		      send(sv[0], "three", 5, 0) == 5,
	      "three datagrams");
	char b[64];
	check(recv(sv[1], b, sizeof b, 0) == 3 && memcmp(b, "one", 3) == 0, "first datagram whole");
	check(recv(sv[1], b, sizeof b, 0) == 0, "an empty datagram");
	struct iovec v = { b, 4 };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	check(recvmsg(sv[1], &m, 0) == 4 && (m.msg_flags & MSG_TRUNC) && memcmp(b, "thre", 4) == 0,
	      "a long datagram is cut: MSG_TRUNC");
	check(recv(sv[1], b, sizeof b, MSG_DONTWAIT) == -1 && errno == EAGAIN,
	      "the cut rest is gone: EAGAIN");
	check(listen(sv[0], 1) == -1 && errno == EOPNOTSUPP, "listen on a datagram socket: EOPNOTSUPP");

	pid_t c = fork();
	if (c == 0) {
		close(sv[1]);
		for (int i = 0; i < 200; i++) {
			size_t n = (size_t)(i * 37) % 2000;
			for (size_t j = 0; j < n; j++)
				buf[j] = pattern(i, j);
			if (send(sv[0], buf, n, 0) != (ssize_t)n)
				_exit(1);
		}
		_exit(0);
	}
	close(sv[0]);
	int wrong = 0;
	for (int i = 0; i < 200 && !wrong; i++) {
		size_t n = (size_t)(i * 37) % 2000;
		ssize_t k = recv(sv[1], buf, sizeof buf, 0);
		if (k != (ssize_t)n) {
			wrong = 1;
			break;
		}
		for (size_t j = 0; j < n; j++)
			wrong |= buf[j] != pattern(i, j);
	}
	check(!wrong, "200 datagrams from a child, each whole and in order");
	int st;
	check(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "datagram child");
	struct pollfd p = { .fd = sv[1], .events = POLLIN };
	check(poll(&p, 1, 0) == 0, "the peer gone: no end of file for datagrams");
	check(send(sv[1], "x", 1, MSG_NOSIGNAL) == -1 && errno == ECONNREFUSED,
	      "send to a closed peer: ECONNREFUSED");
	check(send(sv[1], "x", 1, MSG_NOSIGNAL) == -1 && errno == ENOTCONN, "then ENOTCONN");
	close(sv[1]);
}

/* Receives one datagram on `r` into `b`: its length, the sender in `from`. */
static ssize_t take(int r, char *b, size_t n, struct sockaddr_un *from, socklen_t *fl)
{
	*fl = sizeof *from;
	memset(from, 0x55, sizeof *from);
	return recvfrom(r, b, n, 0, (struct sockaddr *)from, fl);
}

/* Named datagram sockets: bind to a path and an abstract name, sendto from
 * an unbound socket, connect then send/write, the sender's address,
 * boundaries, a connected receiver's EPERM for others, the bounded queue
 * (EAGAIN, or a blocked sender woken by a read), readiness, EMSGSIZE,
 * ECONNREFUSED once the receiver is closed. */
static void dgram_names(void)
{
	struct sockaddr_un a, from;
	socklen_t len = addr_of(&a, "/tmp/dgram.sock", 0), fl;
	unlink("/tmp/dgram.sock");
	int r = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	check(r >= 0, "socket(AF_UNIX, SOCK_DGRAM)");
	check((fcntl(r, F_GETFD) & FD_CLOEXEC) && (fcntl(r, F_GETFL) & O_NONBLOCK),
	      "SOCK_CLOEXEC and SOCK_NONBLOCK kept");
	int t = -1;
	socklen_t tl = sizeof t;
	check(getsockopt(r, SOL_SOCKET, SO_TYPE, &t, &tl) == 0 && t == SOCK_DGRAM, "SO_TYPE");
	check(bind(r, (struct sockaddr *)&a, len) == 0, "bind a datagram socket to a path");
	check(access("/tmp/dgram.sock", F_OK) == 0, "the socket file exists");
	int d = socket(AF_UNIX, SOCK_DGRAM, 0);
	check(bind(d, (struct sockaddr *)&a, len) == -1 && errno == EADDRINUSE, "bind again: EADDRINUSE");
	char b[64];
	check(recv(r, b, sizeof b, 0) == -1 && errno == EAGAIN, "nothing sent: EAGAIN");
	struct pollfd p = { .fd = r, .events = POLLIN };
	check(poll(&p, 1, 0) == 0, "nothing sent: not readable");
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = r };
	check(epoll_ctl(ep, EPOLL_CTL_ADD, r, &ev) == 0, "epoll_ctl");

	/* An unbound sender: boundaries kept, no source address. */
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	check(sendto(s, "one", 3, 0, (struct sockaddr *)&a, len) == 3 &&
		      sendto(s, "", 0, 0, (struct sockaddr *)&a, len) == 0 &&
		      sendto(s, "three", 5, 0, (struct sockaddr *)&a, len) == 5,
	      "sendto a named socket");
	check(poll(&p, 1, 0) == 1 && (p.revents & POLLIN), "readable with datagrams waiting");
	check(epoll_wait(ep, &ev, 1, 0) == 1 && ev.data.fd == r, "epoll: EPOLLIN");
	check(epoll_wait(ep, &ev, 1, 0) == 0, "epoll: edge reported once");
	check(take(r, b, sizeof b, &from, &fl) == 3 && memcmp(b, "one", 3) == 0 && fl == 0,
	      "first datagram whole; an unbound sender has no address (length 0, as Linux)");
	check(take(r, b, sizeof b, &from, &fl) == 0, "an empty datagram");
	struct iovec v = { b, 4 };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	check(recvmsg(r, &m, 0) == 4 && (m.msg_flags & MSG_TRUNC) && memcmp(b, "thre", 4) == 0,
	      "a long datagram is cut: MSG_TRUNC");
	check(recv(r, b, sizeof b, 0) == -1 && errno == EAGAIN, "all read: EAGAIN");

	/* A named sender: recvfrom reports its abstract name. */
	struct sockaddr_un ca;
	socklen_t cl = addr_of(&ca, "kaal-dgram-client", 1);
	int c = socket(AF_UNIX, SOCK_DGRAM, 0);
	check(bind(c, (struct sockaddr *)&ca, cl) == 0, "bind a sender to an abstract name");
	check(sendto(c, "hi", 2, 0, (struct sockaddr *)&a, len) == 2, "sendto from a named sender");
	check(take(r, b, sizeof b, &from, &fl) == 2 && fl == cl && memcmp(&from, &ca, cl) == 0,
	      "recvfrom gives the sender's name");
	/* ...and receives in turn: the path-named one answers. */
	check(sendto(r, "back", 4, 0, (struct sockaddr *)&ca, cl) == 4, "sendto an abstract name");
	check(take(c, b, sizeof b, &from, &fl) == 4 && fl == len && memcmp(&from, &a, len) == 0,
	      "the answer names its path");
	check(sendto(r, "me", 2, 0, (struct sockaddr *)&a, len) == 2 &&
		      recv(r, b, sizeof b, 0) == 2 && memcmp(b, "me", 2) == 0,
	      "a datagram to itself");

	/* A connected receiver takes its peer's datagrams only. */
	struct sockaddr_un ra;
	socklen_t rl = addr_of(&ra, "kaal-dgram-peer", 1);
	int r2 = socket(AF_UNIX, SOCK_DGRAM, 0);
	check(bind(r2, (struct sockaddr *)&ra, rl) == 0 &&
		      connect(r2, (struct sockaddr *)&ca, cl) == 0,
	      "a receiver connected to the named sender");
	check(sendto(s, "no", 2, 0, (struct sockaddr *)&ra, rl) == -1 && errno == EPERM,
	      "another sender: EPERM");
	check(sendto(c, "ok", 2, 0, (struct sockaddr *)&ra, rl) == 2 &&
		      recv(r2, b, sizeof b, MSG_DONTWAIT) == 2 && memcmp(b, "ok", 2) == 0,
	      "its peer's datagram taken");
	close(r2);

	/* connect, then send and write. */
	check(connect(s, (struct sockaddr *)&a, len) == 0, "connect a datagram socket");
	struct sockaddr_un peer;
	socklen_t pl = sizeof peer;
	check(getpeername(s, (struct sockaddr *)&peer, &pl) == 0 && pl == len &&
		      memcmp(&peer, &a, len) == 0,
	      "getpeername: the path connected to");
	check(write(s, "w", 1) == 1 && send(s, "sent", 4, 0) == 4, "write and send when connected");
	check(recv(r, b, sizeof b, 0) == 1 && b[0] == 'w', "written datagram");
	check(recv(r, b, sizeof b, 0) == 4 && memcmp(b, "sent", 4) == 0, "sent datagram");

	/* The queue is bounded (Linux: max_dgram_qlen 10, so 11 wait). */
	fcntl(s, F_SETFL, O_NONBLOCK);
	int n = 0;
	while (n < 1000 && send(s, "q", 1, 0) == 1)
		n++;
	check(n == 11 && errno == EAGAIN, "a full queue: EAGAIN after 11");
	struct pollfd ps = { .fd = s, .events = POLLOUT };
	check(poll(&ps, 1, 0) == 0, "a full peer: not writable");
	pid_t k = fork();
	if (k == 0) {
		int w = socket(AF_UNIX, SOCK_DGRAM, 0);
		_exit(sendto(w, "late", 4, 0, (struct sockaddr *)&a, len) == 4 ? 0 : 1);
	}
	usleep(200 * 1000);
	int st;
	check(waitpid(k, &st, WNOHANG) == 0, "a blocking sender waits on a full queue");
	for (int i = 0; i < n; i++)
		check(recv(r, b, sizeof b, 0) == 1 && b[0] == 'q', "queued datagram");
	check(poll(&ps, 1, 0) == 1, "room again: writable");
	check(waitpid(k, &st, 0) == k && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the blocked sender went on");
	p.fd = r;
	check(poll(&p, 1, 1000) == 1 && recv(r, b, sizeof b, 0) == 4 && memcmp(b, "late", 4) == 0,
	      "its datagram arrived");

	static char big[300000];
	check(send(s, big, sizeof big, 0) == -1 && errno == EMSGSIZE, "too big: EMSGSIZE");

	/* The receiver closed: sends are refused. */
	close(r);
	check(send(s, "x", 1, 0) == -1 && errno == ECONNREFUSED, "receiver closed: ECONNREFUSED");
	check(send(s, "x", 1, 0) == -1 && errno == ENOTCONN, "then ENOTCONN");
	check(sendto(d, "x", 1, 0, (struct sockaddr *)&a, len) == -1 && errno == ECONNREFUSED,
	      "the file left, no socket: ECONNREFUSED");
	check(unlink("/tmp/dgram.sock") == 0, "unlink the socket file");
	check(sendto(d, "x", 1, 0, (struct sockaddr *)&a, len) == -1 && errno == ENOENT,
	      "no file: ENOENT");
	close(c);
	check(sendto(d, "x", 1, 0, (struct sockaddr *)&ca, cl) == -1 && errno == ECONNREFUSED,
	      "an abstract name gone: ECONNREFUSED");
	check(send(d, "x", 1, 0) == -1 && errno == ENOTCONN, "send unconnected: ENOTCONN");

	/* Stream and datagram names do not mix. */
	check(bind(d, (struct sockaddr *)&a, len) == 0, "bind for the mix");
	int st2 = socket(AF_UNIX, SOCK_STREAM, 0);
	check(connect(st2, (struct sockaddr *)&a, len) == -1 && errno == EPROTOTYPE,
	      "a stream connect to a datagram name: EPROTOTYPE");
	check(sendto(st2, "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&a, len) == -1 &&
		      errno == EOPNOTSUPP,
	      "sendto on an unconnected stream: EOPNOTSUPP");
	struct sockaddr_un sa;
	socklen_t sl = addr_of(&sa, "kaal-stream-name", 1);
	check(bind(st2, (struct sockaddr *)&sa, sl) == 0, "bind a stream socket (no listen)");
	check(sendto(d, "x", 1, 0, (struct sockaddr *)&sa, sl) == -1 && errno == ECONNREFUSED,
	      "an abstract stream name is no datagram socket's: ECONNREFUSED");
	int live = socket(AF_UNIX, SOCK_DGRAM, 0);
	check(bind(live, (struct sockaddr *)&ca, cl) == 0, "bind an abstract datagram name again");
	int st3 = socket(AF_UNIX, SOCK_STREAM, 0);
	check(connect(st3, (struct sockaddr *)&ca, cl) == -1 && errno == ECONNREFUSED,
	      "nor is an abstract datagram name a stream's");
	close(st3);
	close(live);
	close(st2);
	close(d);
	unlink("/tmp/dgram.sock");
	close(s);
	close(ep);
}

static void errors(void)
{
	int sv[2];
	check(socketpair(AF_INET, SOCK_STREAM, 0, sv) == -1 && errno == EOPNOTSUPP,
	      "AF_INET socketpair: EOPNOTSUPP");
	check(socketpair(AF_UNIX, SOCK_STREAM, 6, sv) == -1 && errno == EPROTONOSUPPORT,
	      "protocol 6: EPROTONOSUPPORT");
	check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "pair for errors");
	check(lseek(sv[0], 0, SEEK_SET) == -1 && errno == ESPIPE, "lseek: ESPIPE");
	struct sockaddr_un a;
	socklen_t len = addr_of(&a, "/tmp/nowhere", 0);
	check(sendto(sv[0], "x", 1, 0, (struct sockaddr *)&a, len) == -1 && errno == EISCONN,
	      "sendto with an address on a connected socket: EISCONN");
	struct sockaddr_un got;
	socklen_t gl = sizeof got;
	check(getpeername(sv[0], (struct sockaddr *)&got, &gl) == 0 && gl == sizeof(sa_family_t),
	      "a socketpair's peer is unnamed");
	int fd = 0;
	char cbuf[CMSG_SPACE(sizeof fd)];
	memset(cbuf, 0, sizeof cbuf);
	struct iovec v = { "r", 1 };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof cbuf };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof fd);
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	/* Linux passes the descriptor; KaaL refuses ancillary data. */
	ssize_t k = sendmsg(sv[0], &m, 0);
	check(k == 1 || (k == -1 && errno == EOPNOTSUPP), "SCM_RIGHTS: sent, or EOPNOTSUPP");
	printf("unix: SCM_RIGHTS %s\n", k == 1 ? "passed" : "refused (EOPNOTSUPP)");
	int t = -1;
	socklen_t tl = sizeof t;
	check(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &t, &tl) == 0 && t == SOCK_STREAM, "SO_TYPE");
	close(sv[0]);
	close(sv[1]);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	check(read(s, buf, 1) == -1 && errno == EINVAL, "read unconnected: EINVAL");
	check(send(s, "x", 1, MSG_NOSIGNAL) == -1 && errno == ENOTCONN, "send unconnected: ENOTCONN");
	check(shutdown(s, SHUT_RDWR) == 0, "shutdown unconnected: 0, as Linux");
	check(listen(s, 1) == -1 && errno == EINVAL, "listen unbound: EINVAL");
	close(s);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	pair_across_fork();
	part_ok("socketpair");
	nonblocking();
	part_ok("nonblock");
	readiness();
	part_ok("poll");
	shutdowns();
	part_ok("shutdown");
	named();
	part_ok("named");
	abstract();
	part_ok("abstract");
	datagrams();
	part_ok("datagrams");
	dgram_names();
	part_ok("dgram names");
	errors();
	part_ok("errors");
	if (failed)
		return 1;
	printf("unix: ok\n");
	return 0;
}
