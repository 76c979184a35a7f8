/*
 * waits: poll, ppoll, select and pselect6 over pipes, as Linux answers
 * them: nothing ready with a zero timeout, a readable and a writable end,
 * a hang-up, a closed descriptor (POLLNVAL, EBADF), timeouts that really
 * wait, a wait that a child's write ends, the signal mask that ppoll
 * and pselect6 put in force only while they wait, and sigtimedwait.
 *
 * Prints one line per check and `waits: ok`, exit 0; on the first
 * failure `waits: FAILED ...` and exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROGRAM "waits"
#include "check.h"

/* Whether `sig` is blocked now. */
static int blocked(int sig)
{
	sigset_t s;
	sigprocmask(SIG_BLOCK, NULL, &s);
	return sigismember(&s, sig);
}

int main(void)
{
	int p[2];
	check(pipe(p) == 0, "pipe");

	/* Nothing to read yet. */
	struct pollfd pf = { .fd = p[0], .events = POLLIN };
	check(poll(&pf, 1, 0) == 0 && pf.revents == 0, "poll of an empty pipe");
	fd_set r, w;
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	struct timeval tv = { 0, 0 };
	check(select(p[0] + 1, &r, NULL, NULL, &tv) == 0 && !FD_ISSET(p[0], &r),
	      "select of an empty pipe");

	/* Timeouts wait at least as long as asked. */
	long long t0 = now_ms();
	struct timespec ts = { 0, 50 * 1000000 };
	check(ppoll(&pf, 1, &ts, NULL) == 0, "ppoll timing out");
	check(now_ms() - t0 >= 50, "ppoll waited 50 ms");
	t0 = now_ms();
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	ts.tv_nsec = 30 * 1000000;
	check(pselect(p[0] + 1, &r, NULL, NULL, &ts, NULL) == 0, "pselect timing out");
	check(now_ms() - t0 >= 30, "pselect waited 30 ms");
	t0 = now_ms();
	tv.tv_usec = 20 * 1000;
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	check(select(p[0] + 1, &r, NULL, NULL, &tv) == 0, "select timing out");
	check(now_ms() - t0 >= 20, "select waited 20 ms");
	part_ok("timeouts");

	/* A byte makes the read end ready; the write end is ready all along. */
	check(write(p[1], "x", 1) == 1, "write");
	struct pollfd two[2] = { { .fd = p[0], .events = POLLIN }, { .fd = p[1], .events = POLLOUT } };
	check(poll(two, 2, -1) == 2 && two[0].revents == POLLIN && two[1].revents == POLLOUT,
	      "poll of a readable and a writable end");
	FD_ZERO(&r);
	FD_ZERO(&w);
	FD_SET(p[0], &r);
	FD_SET(p[1], &w);
	check(select(p[1] + 1, &r, &w, NULL, NULL) == 2 && FD_ISSET(p[0], &r) && FD_ISSET(p[1], &w),
	      "select of a readable and a writable end");
	char c;
	check(read(p[0], &c, 1) == 1 && c == 'x', "read");
	part_ok("readiness");

	/* A closed descriptor. */
	int spare = dup(p[0]);
	close(spare);
	struct pollfd bad = { .fd = spare, .events = POLLIN };
	check(poll(&bad, 1, 0) == 1 && bad.revents == POLLNVAL, "poll of a closed descriptor");
	FD_ZERO(&r);
	FD_SET(spare, &r);
	errno = 0;
	check(select(spare + 1, &r, NULL, NULL, NULL) == -1 && errno == EBADF,
	      "select of a closed descriptor");
	errno = 0;
	check(poll((struct pollfd *)8, 1, 0) == -1 && errno == EFAULT, "poll of a bad pointer");
	part_ok("bad descriptors");

	/* A wait without timeout that a child's write ends. */
	pid_t child = fork();
	if (child == 0) {
		struct timespec nap = { 0, 30 * 1000000 };
		nanosleep(&nap, NULL);
		_exit(write(p[1], "y", 1) == 1 ? 0 : 1);
	}
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	check(select(p[0] + 1, &r, NULL, NULL, NULL) == 1 && FD_ISSET(p[0], &r),
	      "select woken by a child's write");
	int status;
	check(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the writer child");
	check(read(p[0], &c, 1) == 1 && c == 'y', "read of the child's byte");

	/* The last writer gone: a hang-up. */
	close(p[1]);
	pf.revents = 0;
	check(poll(&pf, 1, -1) == 1 && (pf.revents & POLLHUP), "poll of a hung-up pipe");
	part_ok("wake-ups");

	/* ppoll and pselect6 let a blocked signal through while they wait,
	 * and it is blocked again afterwards. */
	int q[2];
	check(pipe(q) == 0, "pipe");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigset_t block, empty;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigemptyset(&empty);
	sigprocmask(SIG_BLOCK, &block, NULL);
	raise(SIGUSR1);
	check(got == 0, "SIGUSR1 blocked before ppoll");
	struct pollfd qf = { .fd = q[0], .events = POLLIN };
	errno = 0;
	check(ppoll(&qf, 1, NULL, &empty) == -1 && errno == EINTR, "ppoll interrupted");
	check(got == SIGUSR1, "SIGUSR1 handled in ppoll");
	check(blocked(SIGUSR1), "SIGUSR1 blocked again after ppoll");
	got = 0;
	raise(SIGUSR2);
	FD_ZERO(&r);
	FD_SET(q[0], &r);
	errno = 0;
	check(pselect(q[0] + 1, &r, NULL, NULL, NULL, &empty) == -1 && errno == EINTR,
	      "pselect interrupted");
	check(got == SIGUSR2, "SIGUSR2 handled in pselect");
	check(blocked(SIGUSR2), "SIGUSR2 blocked again after pselect");
	/* A mask that keeps the signal blocked: the timeout ends the wait. */
	got = 0;
	raise(SIGUSR1);
	ts.tv_nsec = 10 * 1000000;
	check(ppoll(&qf, 1, &ts, &block) == 0 && got == 0, "ppoll with the signal still blocked");
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	check(got == SIGUSR1, "SIGUSR1 taken once unblocked");
	part_ok("signal masks");

	/* sigtimedwait takes a blocked signal that is pending, times out
	 * with EAGAIN, and waits for one a child sends. */
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);
	got = 0;
	raise(SIGUSR1);
	siginfo_t si;
	check(sigtimedwait(&usr1, &si, NULL) == SIGUSR1 && si.si_signo == SIGUSR1 && got == 0,
	      "sigtimedwait of a pending signal");
	ts.tv_nsec = 20 * 1000000;
	t0 = now_ms();
	errno = 0;
	check(sigtimedwait(&usr1, &si, &ts) == -1 && errno == EAGAIN, "sigtimedwait timing out");
	check(now_ms() - t0 >= 20, "sigtimedwait waited 20 ms");
	pid_t parent = getpid();
	child = fork();
	if (child == 0) {
		struct timespec nap = { 0, 30 * 1000000 };
		nanosleep(&nap, NULL);
		_exit(kill(parent, SIGUSR2) == 0 ? 0 : 1);
	}
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	check(sigwaitinfo(&usr2, &si) == SIGUSR2 && si.si_pid == child && got == 0,
	      "sigwaitinfo of a child's SIGUSR2");
	check(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the signalling child");
	part_ok("sigtimedwait");

	/* A handler with SA_RESTART still ends a poll with EINTR (Linux
	 * restarts reads, never the waits), here while it is parked. */
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	got = 0;
	child = fork();
	if (child == 0) {
		struct timespec nap = { 0, 30 * 1000000 };
		nanosleep(&nap, NULL);
		_exit(kill(parent, SIGUSR1) == 0 ? 0 : 1);
	}
	errno = 0;
	check(poll(&qf, 1, -1) == -1 && errno == EINTR && got == SIGUSR1,
	      "poll interrupted under SA_RESTART");
	check(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the second signalling child");
	part_ok("SA_RESTART");

	/* alarm and the real-time interval timer send SIGALRM. */
	struct sigaction alrm;
	memset(&alrm, 0, sizeof alrm);
	alrm.sa_handler = on_signal;
	sigaction(SIGALRM, &alrm, NULL);
	check(alarm(0) == 0, "alarm(0) with none set");
	check(alarm(10) == 0, "alarm(10)");
	unsigned left = alarm(0);
	check(left >= 9 && left <= 10, "alarm(0) gives the seconds left");
	struct itimerval it = { { 0, 20000 }, { 0, 20000 } };
	check(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer of 20 ms every 20 ms");
	t0 = now_ms();
	for (int i = 0; i < 3; i++) {
		got = 0;
		while (got != SIGALRM)
			pause();
	}
	check(now_ms() - t0 >= 60, "three SIGALRMs took 60 ms");
	struct itimerval cur;
	check(getitimer(ITIMER_REAL, &cur) == 0 && cur.it_interval.tv_usec == 20000,
	      "getitimer gives the interval");
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	check(setitimer(ITIMER_REAL, &off, &cur) == 0 && cur.it_interval.tv_usec == 20000,
	      "setitimer off gives the old one");
	check(getitimer(ITIMER_REAL, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0,
	      "the timer is off");
	errno = 0;
	check(setitimer(ITIMER_REAL, (struct itimerval *)8, NULL) == -1 && errno == EFAULT,
	      "setitimer of a bad pointer");
	part_ok("alarms");

	if (failed)
		return 1;
	printf("waits: ok\n");
	return 0;
}
