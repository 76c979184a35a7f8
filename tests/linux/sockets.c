/*
 * sockets: AF_INET sockets as Linux answers them, against a peer on the
 * host. The program listens on TCP port 9000 (CONTROL_PORT); the peer
 * (xtask/src/peer/sockets.rs) connects there and sends one line, "P U C":
 * a TCP port that echoes each connection until its end of file and then
 * closes, a UDP port that echoes datagrams, and a closed TCP port. The
 * host's address is the control connection's peer (10.0.2.2 under QEMU's
 * user networking). Checked: the accepted control connection's
 * getsockname (the address the peer reached, not the listener's 0.0.0.0)
 * and getpeername; a blocking connect; a non-blocking one (EINPROGRESS,
 * POLLOUT, SO_ERROR 0, EISCONN); ECONNREFUSED blocking and through
 * POLLERR and SO_ERROR; UDP sendto/recvfrom and a connected UDP socket;
 * sendmsg/recvmsg with iovecs on TCP and UDP; shutdown(SHUT_WR) seen by
 * the peer as end of file, and EPIPE after it; the options SO_REUSEADDR,
 * SO_KEEPALIVE, TCP_NODELAY, SO_RCVBUF, SO_SNDBUF, SO_TYPE; and Linux's
 * errno for bad calls (EBADF, ENOTSOCK, EAFNOSUPPORT, EPROTONOSUPPORT,
 * EINVAL for bad lengths, ENOTCONN, EOPNOTSUPP, EADDRINUSE). At the end it
 * sends "done" on the control connection.
 *
 * `sockets native` (the harness's run on the host) listens on 127.0.0.1
 * port 0 and forks a child that plays the peer.
 *
 * Prints `sockets: ok`, exit 0; each failed check prints
 * `sockets: FAILED ...`, and the exit status is then 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONTROL_PORT 9000
/* Poll timeouts: QEMU's TCG and slirp are slow. */
#define WAIT_MS 30000

#define PROGRAM "sockets"
#include "check.h"

/* The call failed with errno `e`. */
static int fails(long r, int e)
{
	return r == -1 && errno == e;
}

static struct sockaddr_in at(struct in_addr a, int port)
{
	struct sockaddr_in s;
	memset(&s, 0, sizeof s);
	s.sin_family = AF_INET;
	s.sin_addr = a;
	s.sin_port = htons(port);
	return s;
}

static const char *show(struct sockaddr_in a)
{
	static char b[2][32];
	static int i;
	i ^= 1;
	snprintf(b[i], sizeof b[i], "%s:%d", inet_ntoa(a.sin_addr), ntohs(a.sin_port));
	return b[i];
}

static int same(struct sockaddr_in a, struct sockaddr_in b)
{
	return a.sin_family == b.sin_family && a.sin_addr.s_addr == b.sin_addr.s_addr &&
	       a.sin_port == b.sin_port;
}

/* Reads until `want` bytes or end of file; the bytes read. */
static int read_full(int fd, char *buf, int want)
{
	int got = 0;
	while (got < want) {
		int n = read(fd, buf + got, want - got);
		if (n <= 0)
			break;
		got += n;
	}
	return got;
}

/* One line (without its newline) into buf; its length, -1 on failure. */
static int read_line(int fd, char *buf, int room)
{
	int n = 0;
	while (n < room - 1) {
		char c;
		if (read(fd, &c, 1) != 1)
			return -1;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = 0;
	return n;
}

static int write_all(int fd, const char *s, int len)
{
	int done = 0;
	while (done < len) {
		int n = write(fd, s + done, len - done);
		if (n <= 0)
			return -1;
		done += n;
	}
	return done;
}

static struct sockaddr_in name_of(int fd, int peer)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	memset(&a, 0, sizeof a);
	int r = peer ? getpeername(fd, (struct sockaddr *)&a, &len)
		     : getsockname(fd, (struct sockaddr *)&a, &len);
	check(r == 0 && len == sizeof a, peer ? "getpeername" : "getsockname");
	return a;
}

/* An int option's value, -1 if the call failed. */
static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof v;
	if (getsockopt(fd, level, name, &v, &len) != 0 || len != sizeof v)
		return -1;
	return v;
}

/* ---- The peer of the native run (what xtask/src/peer/sockets.rs does) ---- */

static int listener_on(struct in_addr a, int port)
{
	struct sockaddr_in s = at(a, port);
	int one = 1;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(l, (struct sockaddr *)&s, sizeof s) != 0 || listen(l, 8) != 0)
		return -1;
	return l;
}

static int port_of(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	getsockname(fd, (struct sockaddr *)&a, &len);
	return ntohs(a.sin_port);
}

static void native_peer(int control_port)
{
	struct in_addr lo = {htonl(INADDR_LOOPBACK)};
	int tcp = listener_on(lo, 0);
	int closed = listener_on(lo, 0);
	int udp = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in u = at(lo, 0);
	bind(udp, (struct sockaddr *)&u, sizeof u);
	int closed_port = port_of(closed);
	close(closed);
	struct sockaddr_in c = at(lo, control_port);
	int ctl = socket(AF_INET, SOCK_STREAM, 0);
	if (tcp < 0 || connect(ctl, (struct sockaddr *)&c, sizeof c) != 0)
		_exit(2);
	char line[64];
	int n = snprintf(line, sizeof line, "%d %d %d\n", port_of(tcp), port_of(udp), closed_port);
	write_all(ctl, line, n);
	for (;;) {
		struct pollfd p[3] = {{tcp, POLLIN, 0}, {udp, POLLIN, 0}, {ctl, POLLIN, 0}};
		if (poll(p, 3, WAIT_MS) <= 0)
			_exit(3);
		if (p[0].revents) {
			int s = accept(tcp, NULL, NULL);
			if (s >= 0 && fork() == 0) {
				char b[4096];
				int k;
				while ((k = read(s, b, sizeof b)) > 0)
					write_all(s, b, k);
				_exit(0);
			}
			close(s);
		}
		if (p[1].revents) {
			char b[2048];
			struct sockaddr_in from;
			socklen_t len = sizeof from;
			int k = recvfrom(udp, b, sizeof b, 0, (struct sockaddr *)&from, &len);
			if (k >= 0)
				sendto(udp, b, k, 0, (struct sockaddr *)&from, len);
		}
		if (p[2].revents) {
			/* "done", then the program's end of file. */
			if (read_line(ctl, line, sizeof line) < 0 || strcmp(line, "done") == 0)
				_exit(0);
		}
	}
}

/* ---- The checks ---- */

/* A blocking connect, names, an echoed line. */
static void blocking_connect(struct sockaddr_in to, struct in_addr here)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	check(s >= 0, "socket");
	check(getpeername(s, (struct sockaddr *)&to, &(socklen_t){sizeof to}) == -1 &&
		      errno == ENOTCONN,
	      "getpeername before connect is ENOTCONN");
	check(connect(s, (struct sockaddr *)&to, sizeof to) == 0, "blocking connect");
	struct sockaddr_in me = name_of(s, 0), them = name_of(s, 1);
	printf("sockets: connected %s -> %s\n", show(me), show(them));
	check(me.sin_family == AF_INET && me.sin_addr.s_addr == here.s_addr && me.sin_port != 0,
	      "getsockname of a connected socket is this machine's address and a port");
	check(same(them, to), "getpeername of a connected socket is its peer");
	check(fails(connect(s, (struct sockaddr *)&to, sizeof to), EISCONN),
	      "connect again is EISCONN");
	char b[16] = {0};
	check(write_all(s, "hello\n", 6) == 6, "write on a connection");
	check(read_full(s, b, 6) == 6 && memcmp(b, "hello\n", 6) == 0, "the line echoed");
	close(s);
	part_ok("blocking connect");
}

static void nonblocking_connect(struct sockaddr_in to)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	check(s >= 0, "socket non-blocking");
	check(fails(connect(s, (struct sockaddr *)&to, sizeof to), EINPROGRESS),
	      "non-blocking connect is EINPROGRESS");
	struct pollfd p = {s, POLLOUT, 0};
	check(poll(&p, 1, WAIT_MS) == 1 && (p.revents & POLLOUT) && !(p.revents & POLLERR),
	      "poll says POLLOUT once connected");
	check(opt(s, SOL_SOCKET, SO_ERROR) == 0, "SO_ERROR is 0 once connected");
	check(connect(s, (struct sockaddr *)&to, sizeof to) == 0,
	      "connect again once it completed returns 0");
	check(fails(connect(s, (struct sockaddr *)&to, sizeof to), EISCONN),
	      "connect once more is EISCONN");
	char b[16] = {0};
	check(write_all(s, "quick\n", 6) == 6, "write non-blocking");
	p.events = POLLIN;
	check(poll(&p, 1, WAIT_MS) == 1 && (p.revents & POLLIN), "poll says POLLIN for the echo");
	check(read(s, b, sizeof b) == 6 && memcmp(b, "quick\n", 6) == 0,
	      "the echo on a non-blocking socket");
	check(fails(read(s, b, sizeof b), EAGAIN), "nothing more is EAGAIN");
	close(s);
	part_ok("non-blocking connect");
}

static void refused(struct sockaddr_in closed)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	check(fails(connect(s, (struct sockaddr *)&closed, sizeof closed), ECONNREFUSED),
	      "blocking connect to a closed port is ECONNREFUSED");
	close(s);
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	check(fails(connect(s, (struct sockaddr *)&closed, sizeof closed), EINPROGRESS),
	      "non-blocking connect to a closed port is EINPROGRESS");
	struct pollfd p = {s, POLLOUT, 0};
	check(poll(&p, 1, WAIT_MS) == 1 && (p.revents & POLLERR), "poll says POLLERR when refused");
	check(opt(s, SOL_SOCKET, SO_ERROR) == ECONNREFUSED, "SO_ERROR is ECONNREFUSED");
	check(opt(s, SOL_SOCKET, SO_ERROR) == 0, "SO_ERROR is cleared once read");
	close(s);
	part_ok("refused");
}

static void datagrams(struct sockaddr_in echo)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	check(s >= 0, "socket UDP");
	check(opt(s, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM, "SO_TYPE is SOCK_DGRAM");
	const char *msg = "datagram one";
	check(sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&echo, sizeof echo) ==
		      (long)strlen(msg),
	      "sendto");
	char b[64] = {0};
	struct sockaddr_in from;
	socklen_t len = sizeof from;
	struct pollfd p = {s, POLLIN, 0};
	check(poll(&p, 1, WAIT_MS) == 1, "the echo arrives");
	check(recvfrom(s, b, sizeof b, 0, (struct sockaddr *)&from, &len) == (long)strlen(msg) &&
		      memcmp(b, msg, strlen(msg)) == 0,
	      "recvfrom gets the echo");
	check(len == sizeof from && same(from, echo), "recvfrom says the echo's source");
	check(name_of(s, 0).sin_port != 0, "a UDP socket that sent is bound to a port");

	/* sendmsg to an address, three pieces; recvmsg into two. */
	char a1[] = "io", a2[] = "vec", a3[] = "tors";
	struct iovec out[3] = {{a1, 2}, {a2, 3}, {a3, 4}};
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_name = &echo;
	m.msg_namelen = sizeof echo;
	m.msg_iov = out;
	m.msg_iovlen = 3;
	check(sendmsg(s, &m, 0) == 9, "sendmsg of three iovecs");
	char r1[4] = {0}, r2[16] = {0};
	struct iovec in[2] = {{r1, 4}, {r2, 16}};
	memset(&m, 0, sizeof m);
	memset(&from, 0, sizeof from);
	m.msg_name = &from;
	m.msg_namelen = sizeof from;
	m.msg_iov = in;
	m.msg_iovlen = 2;
	check(poll(&p, 1, WAIT_MS) == 1, "the sendmsg echo arrives");
	check(recvmsg(s, &m, 0) == 9 && memcmp(r1, "iove", 4) == 0 && memcmp(r2, "ctors", 5) == 0,
	      "recvmsg scatters the echo");
	check(m.msg_namelen == sizeof from && same(from, echo), "recvmsg says the source");

	/* Connected: send and recv without addresses. */
	check(connect(s, (struct sockaddr *)&echo, sizeof echo) == 0, "UDP connect");
	check(same(name_of(s, 1), echo), "getpeername of a connected UDP socket");
	check(send(s, "two", 3, 0) == 3, "send on a connected UDP socket");
	check(poll(&p, 1, WAIT_MS) == 1, "the second echo arrives");
	memset(b, 0, sizeof b);
	check(recv(s, b, sizeof b, 0) == 3 && memcmp(b, "two", 3) == 0, "recv the second echo");
	close(s);
	part_ok("udp");
}

/* sendmsg/recvmsg with iovecs on a connection, then the half-close. */
static void stream_io(struct sockaddr_in to)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	check(connect(s, (struct sockaddr *)&to, sizeof to) == 0, "connect for sendmsg");
	char a1[] = "gather", a2[] = "ed ", a3[] = "line\n";
	struct iovec out[3] = {{a1, 6}, {a2, 3}, {a3, 5}};
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = out;
	m.msg_iovlen = 3;
	check(sendmsg(s, &m, 0) == 14, "sendmsg of three iovecs on TCP");
	char r1[5] = {0}, r2[32] = {0};
	int got = 0;
	/* The echo may come in pieces: read until all 14 bytes are in. */
	char all[32] = {0};
	while (got < 14) {
		struct iovec in[2] = {{r1, 5}, {r2, sizeof r2}};
		memset(&m, 0, sizeof m);
		m.msg_iov = in;
		m.msg_iovlen = 2;
		long n = recvmsg(s, &m, 0);
		if (n <= 0)
			break;
		int first = n < 5 ? n : 5;
		memcpy(all + got, r1, first);
		if (got + n <= (long)sizeof all)
			memcpy(all + got + first, r2, n - first);
		check(m.msg_flags == 0 && m.msg_controllen == 0, "recvmsg flags and no control data");
		got += n;
	}
	check(got == 14 && memcmp(all, "gathered line\n", 14) == 0, "recvmsg scatters the echo");

	/* Half-close: the peer sees end of file, echoes, and closes. */
	check(write_all(s, "half\n", 5) == 5, "write before shutdown");
	check(shutdown(s, SHUT_WR) == 0, "shutdown(SHUT_WR)");
	check(fails(send(s, "x", 1, MSG_NOSIGNAL), EPIPE), "send after SHUT_WR is EPIPE");
	char b[16] = {0};
	check(read_full(s, b, sizeof b) == 5 && memcmp(b, "half\n", 5) == 0,
	      "the echo then end of file: the peer saw ours");
	check(read(s, b, sizeof b) == 0, "end of file stays");
	close(s);
	part_ok("sendmsg, recvmsg, shutdown");
}

static void options(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1, v;
	check(opt(s, SOL_SOCKET, SO_TYPE) == SOCK_STREAM, "SO_TYPE is SOCK_STREAM");
	check(opt(s, SOL_SOCKET, SO_REUSEADDR) == 0, "SO_REUSEADDR starts off");
	check(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, "set SO_REUSEADDR");
	check(opt(s, SOL_SOCKET, SO_REUSEADDR) == 1, "SO_REUSEADDR on");
	check(opt(s, SOL_SOCKET, SO_KEEPALIVE) == 0, "SO_KEEPALIVE starts off");
	check(setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) == 0, "set SO_KEEPALIVE");
	check(opt(s, SOL_SOCKET, SO_KEEPALIVE) == 1, "SO_KEEPALIVE on");
	check(opt(s, IPPROTO_TCP, TCP_NODELAY) == 0, "TCP_NODELAY starts off");
	check(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0, "set TCP_NODELAY");
	check(opt(s, IPPROTO_TCP, TCP_NODELAY) == 1, "TCP_NODELAY on");
	v = 0;
	check(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) == 0, "clear TCP_NODELAY");
	check(opt(s, IPPROTO_TCP, TCP_NODELAY) == 0, "TCP_NODELAY off");
	/* Linux keeps twice what it is given. */
	v = 32768;
	check(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) == 0, "set SO_RCVBUF");
	check(opt(s, SOL_SOCKET, SO_RCVBUF) == 65536, "SO_RCVBUF reads back doubled");
	v = 16384;
	check(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) == 0, "set SO_SNDBUF");
	check(opt(s, SOL_SOCKET, SO_SNDBUF) == 32768, "SO_SNDBUF reads back doubled");
	check(opt(s, SOL_SOCKET, SO_RCVBUF) > 0 && opt(s, SOL_SOCKET, SO_SNDBUF) > 0,
	      "buffer sizes are positive");
	/* A short option buffer gets what fits. */
	char c = 7;
	socklen_t len = 1;
	check(getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &c, &len) == 0 && len == 1 && c == 1,
	      "getsockopt into one byte");
	check(fails(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, 2), EINVAL),
	      "setsockopt with a 2-byte int is EINVAL");
	len = (socklen_t)-1;
	check(fails(getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, &len), EINVAL),
	      "getsockopt with a negative length is EINVAL");
	check(fails(setsockopt(s, SOL_SOCKET, 9999, &one, sizeof one), ENOPROTOOPT),
	      "an unknown option is ENOPROTOOPT");
	close(s);
	part_ok("options");
}

static void errors(struct sockaddr_in to)
{
	struct sockaddr_in a = to;
	socklen_t len = sizeof a;
	int p[2];
	check(pipe(p) == 0, "pipe");
	check(fails(connect(999, (struct sockaddr *)&to, sizeof to), EBADF), "connect on a bad fd is EBADF");
	check(fails(getsockname(999, (struct sockaddr *)&a, &len), EBADF),
	      "getsockname of a bad fd is EBADF");
	check(fails(send(-1, "x", 1, 0), EBADF), "send on fd -1 is EBADF");
	check(fails(getsockname(p[0], (struct sockaddr *)&a, &len), ENOTSOCK),
	      "getsockname of a pipe is ENOTSOCK");
	check(fails(connect(p[1], (struct sockaddr *)&to, sizeof to), ENOTSOCK),
	      "connect on a pipe is ENOTSOCK");
	int one = 1;
	check(fails(setsockopt(p[0], SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), ENOTSOCK),
	      "setsockopt on a pipe is ENOTSOCK");
	check(fails(socket(1000, SOCK_STREAM, 0), EAFNOSUPPORT),
	      "an unknown family is EAFNOSUPPORT");
	check(fails(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP), EPROTONOSUPPORT),
	      "TCP with IPPROTO_UDP is EPROTONOSUPPORT");
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in any = at((struct in_addr){htonl(INADDR_ANY)}, 0);
	check(fails(bind(s, (struct sockaddr *)&any, 8), EINVAL), "bind with 8 bytes is EINVAL");
	check(fails(bind(s, (struct sockaddr *)&any, 200), EINVAL), "bind with 200 bytes is EINVAL");
	check(fails(connect(s, (struct sockaddr *)&to, 0), EINVAL), "connect with 0 bytes is EINVAL");
	struct sockaddr_in6 six;
	memset(&six, 0, sizeof six);
	six.sin6_family = AF_INET6;
	check(fails(bind(s, (struct sockaddr *)&six, sizeof six), EAFNOSUPPORT),
	      "binding an AF_INET socket to AF_INET6 is EAFNOSUPPORT");
	check(fails(accept(s, NULL, NULL), EINVAL), "accept on a socket not listening is EINVAL");
	char b[4];
	check(fails(read(s, b, sizeof b), ENOTCONN), "read of an unconnected socket is ENOTCONN");
	check(fails(shutdown(s, SHUT_WR), ENOTCONN), "shutdown of an unconnected socket is ENOTCONN");
	check(fails(shutdown(s, 7), EINVAL), "shutdown with how 7 is EINVAL");
	check(bind(s, (struct sockaddr *)&any, sizeof any) == 0, "bind to port 0");
	struct sockaddr_in bound = name_of(s, 0);
	check(bound.sin_addr.s_addr == htonl(INADDR_ANY) && bound.sin_port != 0,
	      "bound to any address and a port");
	check(fails(bind(s, (struct sockaddr *)&any, sizeof any), EINVAL), "a second bind is EINVAL");
	int t = socket(AF_INET, SOCK_STREAM, 0);
	check(listen(s, 4) == 0, "listen");
	check(fails(bind(t, (struct sockaddr *)&bound, sizeof bound), EADDRINUSE),
	      "binding a listener's port is EADDRINUSE");
	close(t);
	close(s);
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	check(fails(listen(u, 1), EOPNOTSUPP), "listen on UDP is EOPNOTSUPP");
	check(fails(send(u, "x", 1, 0), EDESTADDRREQ), "send on an unconnected UDP socket is EDESTADDRREQ");
	close(u);
	close(p[0]);
	close(p[1]);
	part_ok("errors");
}

int main(int argc, char **argv)
{
	int native = argc > 1 && strcmp(argv[1], "native") == 0;
	/* Ours, not the peer's fate: a failed check must not end the run. */
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IONBF, 0);

	struct in_addr any = {htonl(native ? INADDR_LOOPBACK : INADDR_ANY)};
	int l = listener_on(any, native ? 0 : CONTROL_PORT);
	check(l >= 0, "listening for the control connection");
	if (l < 0)
		return 1;
	int port = port_of(l);
	pid_t peer = -1;
	if (native) {
		peer = fork();
		if (peer == 0) {
			close(l);
			native_peer(port);
		}
	}
	printf("sockets: listening on port %d\n", port);
	struct sockaddr_in from;
	socklen_t flen = sizeof from;
	int c = accept(l, (struct sockaddr *)&from, &flen);
	check(c >= 0, "accepting the peer's control connection");
	if (c < 0)
		return 1;
	struct sockaddr_in here = name_of(c, 0), host = name_of(c, 1);
	printf("sockets: accepted %s -> %s\n", show(host), show(here));
	check(flen == sizeof from && same(from, host), "accept's address is getpeername's");
	check(here.sin_addr.s_addr != htonl(INADDR_ANY) && ntohs(here.sin_port) == port,
	      "getsockname of an accepted socket is the address the peer reached");
	check(same(name_of(l, 0), at(any, port)), "getsockname of the listener is its own");
	char line[64];
	int tcp = 0, udp = 0, closed = 0;
	check(read_line(c, line, sizeof line) > 0 && sscanf(line, "%d %d %d", &tcp, &udp, &closed) == 3,
	      "the peer's line");
	printf("sockets: peer at %s: echo %d, udp %d, closed %d\n", inet_ntoa(host.sin_addr), tcp, udp,
	       closed);

	blocking_connect(at(host.sin_addr, tcp), here.sin_addr);
	nonblocking_connect(at(host.sin_addr, tcp));
	refused(at(host.sin_addr, closed));
	datagrams(at(host.sin_addr, udp));
	stream_io(at(host.sin_addr, tcp));
	options();
	errors(at(host.sin_addr, tcp));

	check(write_all(c, "done\n", 5) == 5, "telling the peer");
	close(c);
	close(l);
	if (peer > 0) {
		int st = 0;
		check(waitpid(peer, &st, 0) == peer && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "the native peer passed");
	}
	if (failed)
		return 1;
	printf("sockets: ok\n");
	return 0;
}
