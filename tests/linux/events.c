/*
 * events: Linux's event-loop objects as Linux answers them: eventfd
 * (counter and semaphore modes, EAGAIN, EINVAL, a blocking read a forked
 * child's write ends), timerfd (one-shot and interval expirations on
 * CLOCK_MONOTONIC, each at least its time, gettime, blocking reads), and
 * epoll (level-triggered, edge-triggered and one-shot reports on a pipe,
 * counted exactly; an eventfd and a timerfd together; a nested epoll; a
 * timeout; epoll_pwait letting a blocked signal in; EEXIST, ENOENT,
 * EBADF, EPERM, EINVAL; a closed watched descriptor).
 *
 * Prints `events: ok`, exit 0; on the first failure `events: FAILED ...`
 * and exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROGRAM "events"
#include "check.h"

/* Events one epoll_wait reports with a zero timeout. */
static int ready(int ep)
{
	struct epoll_event e[8];
	return epoll_wait(ep, e, 8, 0);
}

static void eventfds(void)
{
	uint64_t v;
	int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	check(e >= 0, "eventfd");
	check(fcntl(e, F_GETFD) == FD_CLOEXEC, "EFD_CLOEXEC");
	check(read(e, &v, 8) == -1 && errno == EAGAIN, "empty eventfd is EAGAIN");
	v = 3;
	check(write(e, &v, 8) == 8, "eventfd write 3");
	v = 4;
	check(write(e, &v, 8) == 8, "eventfd write 4");
	check(read(e, &v, 4) == -1 && errno == EINVAL, "short eventfd read is EINVAL");
	check(lseek(e, 0, SEEK_CUR) == 0, "lseek of an eventfd does nothing");
	check(write(e, &v, 4) == -1 && errno == EINVAL, "short eventfd write is EINVAL");
	v = 0;
	check(read(e, &v, 8) == 8 && v == 7, "eventfd reads the sum");
	v = UINT64_MAX;
	check(write(e, &v, 8) == -1 && errno == EINVAL, "writing 2^64-1 is EINVAL");
	v = UINT64_MAX - 1;
	check(write(e, &v, 8) == 8, "eventfd filled");
	v = 1;
	check(write(e, &v, 8) == -1 && errno == EAGAIN, "eventfd overflow is EAGAIN");
	struct pollfd pf = { .fd = e, .events = POLLIN | POLLOUT };
	check(poll(&pf, 1, 0) == 1 && pf.revents == POLLIN, "full eventfd is readable only");
	close(e);

	int s = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
	check(s >= 0, "semaphore eventfd");
	check(read(s, &v, 8) == 8 && v == 1, "semaphore read 1");
	check(read(s, &v, 8) == 8 && v == 1, "semaphore read 1 again");
	check(read(s, &v, 8) == -1 && errno == EAGAIN, "semaphore empty");
	close(s);

	check(eventfd(0, 0x4) == -1 && errno == EINVAL, "eventfd bad flags");

	/* A blocking read a child's write ends. */
	int b = eventfd(0, 0);
	long long t0 = now_ms();
	pid_t child = fork();
	if (child == 0) {
		struct timespec d = { 0, 50 * 1000000 };
		nanosleep(&d, NULL);
		uint64_t one = 5;
		_exit(write(b, &one, 8) == 8 ? 0 : 1);
	}
	v = 0;
	check(read(b, &v, 8) == 8 && v == 5, "blocking eventfd read woken by a child");
	check(now_ms() - t0 >= 40, "the read waited for the child");
	int st;
	check(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "eventfd child");
	close(b);
}

static void timerfds(void)
{
	uint64_t n;
	int t = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	check(t >= 0, "timerfd_create");
	check(timerfd_create(12345, 0) == -1 && errno == EINVAL, "timerfd bad clock");
	check(timerfd_create(CLOCK_MONOTONIC, 0x1) == -1 && errno == EINVAL, "timerfd bad flags");
	struct itimerspec cur;
	check(timerfd_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0,
	      "a new timer is disarmed");

	/* One-shot, 60 ms: the read blocks until it expires, once. */
	struct itimerspec one = { .it_value = { 0, 60 * 1000000 } };
	long long t0 = now_ms();
	check(timerfd_settime(t, 0, &one, NULL) == 0, "timerfd_settime one-shot");
	check(timerfd_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 &&
		      cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 60 * 1000000,
	      "gettime of an armed one-shot");
	check(read(t, &n, 8) == 8 && n == 1, "one-shot expires once");
	check(now_ms() - t0 >= 60, "one-shot waited 60 ms");
	struct pollfd pf = { .fd = t, .events = POLLIN };
	check(poll(&pf, 1, 30) == 0, "an expired one-shot stays quiet");

	/* Interval: 20 ms first, then every 20 ms; after 110 ms, 5 expirations. */
	struct itimerspec iv = { .it_interval = { 0, 20 * 1000000 }, .it_value = { 0, 20 * 1000000 } };
	struct itimerspec old;
	t0 = now_ms();
	check(timerfd_settime(t, 0, &iv, &old) == 0 && old.it_value.tv_sec == 0 &&
		      old.it_value.tv_nsec == 0,
	      "timerfd_settime interval, old value disarmed");
	struct timespec d = { 0, 110 * 1000000 };
	nanosleep(&d, NULL);
	long long waited = now_ms() - t0;
	check(read(t, &n, 8) == 8 && n >= 5 && (long long)n <= waited / 20 + 1, "interval count");
	check(read(t, &n, 4) == -1 && errno == EINVAL, "short timerfd read is EINVAL");
	t0 = now_ms();
	check(read(t, &n, 8) == 8 && n >= 1, "next interval expiration");
	check(now_ms() - t0 <= 500, "next expiration within the interval");
	struct itimerspec off = { 0 };
	check(timerfd_settime(t, 0, &off, &old) == 0 && old.it_interval.tv_nsec == 20 * 1000000,
	      "disarm returns the interval");

	/* Absolute: 30 ms from now on CLOCK_MONOTONIC. */
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	struct itimerspec abs = { .it_value = now };
	abs.it_value.tv_nsec += 30 * 1000000;
	if (abs.it_value.tv_nsec >= 1000000000) {
		abs.it_value.tv_sec++;
		abs.it_value.tv_nsec -= 1000000000;
	}
	t0 = now_ms();
	check(timerfd_settime(t, TFD_TIMER_ABSTIME, &abs, NULL) == 0, "absolute timer");
	check(read(t, &n, 8) == 8 && n == 1 && now_ms() - t0 >= 25, "absolute timer expires");
	struct itimerspec bad = { .it_value = { 0, 1000000000 } };
	check(timerfd_settime(t, 0, &bad, NULL) == -1 && errno == EINVAL, "bad nanoseconds");
	close(t);

	int nb = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	check(nb >= 0 && read(nb, &n, 8) == -1 && errno == EAGAIN, "non-blocking timerfd");
	close(nb);
}

static void epolls(void)
{
	int p[2];
	check(pipe(p) == 0, "pipe");
	char c = 'x';
	struct epoll_event ev = { 0 };

	/* Level-triggered: reported at every wait while there is data. */
	int lt = epoll_create1(EPOLL_CLOEXEC);
	check(lt >= 0 && fcntl(lt, F_GETFD) == FD_CLOEXEC, "epoll_create1");
	ev.events = EPOLLIN;
	ev.data.u64 = 0x1122334455667788ULL;
	check(epoll_ctl(lt, EPOLL_CTL_ADD, p[0], &ev) == 0, "add LT");
	check(ready(lt) == 0, "LT: empty pipe not ready");
	write(p[1], &c, 1);
	struct epoll_event out[4];
	check(epoll_wait(lt, out, 4, 0) == 1 && out[0].events == EPOLLIN &&
		      out[0].data.u64 == 0x1122334455667788ULL,
	      "LT reports with the user data");
	check(ready(lt) == 1 && ready(lt) == 1, "LT reports again");

	/* Edge-triggered: once per new data. */
	int et = epoll_create(1);
	ev.events = EPOLLIN | EPOLLET;
	check(epoll_ctl(et, EPOLL_CTL_ADD, p[0], &ev) == 0, "add ET");
	check(ready(et) == 1, "ET reports data already there");
	check(ready(et) == 0, "ET quiet after");
	write(p[1], &c, 1);
	check(ready(et) == 1, "ET reports new data");
	check(ready(et) == 0, "ET quiet again");
	check(read(p[0], &c, 1) == 1 && ready(et) == 0, "ET: a partial read is no new data");

	/* One-shot: once, until EPOLL_CTL_MOD arms it again. */
	int os = epoll_create1(0);
	ev.events = EPOLLIN | EPOLLONESHOT;
	check(epoll_ctl(os, EPOLL_CTL_ADD, p[0], &ev) == 0, "add ONESHOT");
	check(ready(os) == 1, "ONESHOT reports");
	write(p[1], &c, 1);
	check(ready(os) == 0, "ONESHOT disabled");
	check(epoll_ctl(os, EPOLL_CTL_MOD, p[0], &ev) == 0 && ready(os) == 1, "ONESHOT re-armed");

	/* Errors. */
	check(epoll_ctl(lt, EPOLL_CTL_ADD, p[0], &ev) == -1 && errno == EEXIST, "EEXIST");
	check(epoll_ctl(lt, EPOLL_CTL_MOD, p[1], &ev) == -1 && errno == ENOENT, "ENOENT on MOD");
	check(epoll_ctl(lt, EPOLL_CTL_DEL, p[1], &ev) == -1 && errno == ENOENT, "ENOENT on DEL");
	check(epoll_ctl(lt, EPOLL_CTL_ADD, 999, &ev) == -1 && errno == EBADF, "EBADF");
	check(epoll_ctl(p[0], EPOLL_CTL_ADD, p[1], &ev) == -1 && errno == EINVAL, "not an epoll");
	check(epoll_ctl(lt, EPOLL_CTL_ADD, lt, &ev) == -1 && errno == EINVAL, "epoll in itself");
	check(epoll_ctl(lt, 99, p[0], &ev) == -1 && errno == EINVAL, "bad op");
	check(epoll_wait(lt, out, 0, 0) == -1 && errno == EINVAL, "maxevents 0");
	check(epoll_wait(p[0], out, 4, 0) == -1 && errno == EINVAL, "wait on a pipe");
	/* musl may not pass epoll_create's size on: ask the kernel. */
	check(syscall(SYS_epoll_create, 0) == -1 && errno == EINVAL, "epoll_create(0)");
	int f = open("/proc/self/exe", O_RDONLY);
	check(f >= 0, "open a regular file");
	check(epoll_ctl(lt, EPOLL_CTL_ADD, f, &ev) == -1 && errno == EPERM, "EPERM for a file");
	close(f);

	/* The write end is writable (and below, with the reader gone,
	 * reports EPOLLERR unasked). */
	int w = epoll_create1(0);
	ev.events = EPOLLOUT;
	check(epoll_ctl(w, EPOLL_CTL_ADD, p[1], &ev) == 0, "add the write end");
	check(epoll_wait(w, out, 4, 0) == 1 && out[0].events == EPOLLOUT, "write end writable");

	/* Nested: an epoll watching `lt` is readable while lt has events. */
	int outer = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.u32 = 77;
	check(epoll_ctl(outer, EPOLL_CTL_ADD, lt, &ev) == 0, "nest an epoll");
	check(epoll_ctl(lt, EPOLL_CTL_ADD, outer, &ev) == -1 && errno == ELOOP, "ELOOP");
	check(epoll_wait(outer, out, 4, 0) == 1 && out[0].data.u32 == 77, "nested readiness");
	char drain[16];
	check(read(p[0], drain, sizeof drain) == 2, "drain the pipe");
	check(ready(outer) == 0 && ready(lt) == 0, "nothing after draining");

	/* Closing the only descriptor of a watched pipe end removes it. */
	int p2[2];
	check(pipe(p2) == 0, "second pipe");
	ev.events = EPOLLIN;
	check(epoll_ctl(lt, EPOLL_CTL_ADD, p2[0], &ev) == 0, "add second pipe");
	write(p2[1], &c, 1);
	check(ready(lt) == 1, "second pipe ready");
	close(p2[0]);
	check(ready(lt) == 0, "closed descriptor removed");
	close(p2[1]);

	/* A hang-up: the writer gone, EPOLLHUP unasked. */
	int hp[2];
	check(pipe(hp) == 0, "third pipe");
	ev.events = EPOLLIN;
	check(epoll_ctl(lt, EPOLL_CTL_ADD, hp[0], &ev) == 0, "add third pipe");
	close(hp[1]);
	check(epoll_wait(lt, out, 4, 0) == 1 && out[0].events == EPOLLHUP, "EPOLLHUP");
	check(epoll_ctl(lt, EPOLL_CTL_DEL, hp[0], NULL) == 0, "DEL");
	check(ready(lt) == 0, "nothing after DEL");
	close(hp[0]);

	/* Timeout. */
	long long t0 = now_ms();
	check(epoll_wait(lt, out, 4, 50) == 0, "epoll_wait times out");
	check(now_ms() - t0 >= 50, "epoll_wait waited 50 ms");

	/* An eventfd and a timerfd together: the timer wakes the wait first,
	 * then a child's eventfd write. */
	int both = epoll_create1(0);
	int e = eventfd(0, EFD_NONBLOCK);
	int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	ev.events = EPOLLIN;
	ev.data.u32 = 1;
	check(epoll_ctl(both, EPOLL_CTL_ADD, e, &ev) == 0, "add eventfd");
	ev.data.u32 = 2;
	check(epoll_ctl(both, EPOLL_CTL_ADD, t, &ev) == 0, "add timerfd");
	struct itimerspec one = { .it_value = { 0, 40 * 1000000 } };
	t0 = now_ms();
	timerfd_settime(t, 0, &one, NULL);
	check(epoll_wait(both, out, 4, 5000) == 1 && out[0].data.u32 == 2, "timerfd wakes epoll");
	check(now_ms() - t0 >= 40, "after the timer's time");
	uint64_t n;
	check(read(t, &n, 8) == 8 && n == 1, "timerfd read after epoll");
	pid_t child = fork();
	if (child == 0) {
		struct timespec d = { 0, 30 * 1000000 };
		nanosleep(&d, NULL);
		uint64_t v = 9;
		_exit(write(e, &v, 8) == 8 ? 0 : 1);
	}
	check(epoll_wait(both, out, 4, -1) == 1 && out[0].data.u32 == 1, "eventfd wakes epoll");
	check(read(e, &n, 8) == 8 && n == 9, "eventfd read after epoll");
	int st;
	waitpid(child, &st, 0);
	check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "epoll child");

	/* epoll_pwait lets a blocked signal in: EINTR, the handler ran, the
	 * signal blocked again after. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t block, empty, now_set;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigemptyset(&empty);
	sigprocmask(SIG_BLOCK, &block, NULL);
	raise(SIGUSR1);
	check(got == 0, "SIGUSR1 blocked");
	check(epoll_pwait(both, out, 4, -1, &empty) == -1 && errno == EINTR, "epoll_pwait EINTR");
	check(got == SIGUSR1, "handler ran in epoll_pwait");
	sigprocmask(SIG_BLOCK, NULL, &now_set);
	check(sigismember(&now_set, SIGUSR1), "SIGUSR1 blocked again");
	got = 0;
	check(epoll_pwait(both, out, 4, 20, &block) == 0 && got == 0, "epoll_pwait timeout with mask");

	/* The write end with its reader gone: EPOLLERR unasked. */
	close(p[0]);
	check(epoll_wait(w, out, 4, 0) == 1 && out[0].events == (EPOLLOUT | EPOLLERR),
	      "EPOLLERR without a reader");

	close(both);
	close(e);
	close(t);
	close(outer);
	close(w);
	close(os);
	close(et);
	close(lt);
	close(p[1]);
}

int main(void)
{
	eventfds();
	part_ok("eventfd");
	timerfds();
	part_ok("timerfd");
	epolls();
	part_ok("epoll");
	if (failed)
		return 1;
	printf("events: ok\n");
	return 0;
}
