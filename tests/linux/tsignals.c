/*
 * tsignals: signals aimed at one thread, as Linux does them. pthread_kill
 * runs the handler on its thread; a process-directed signal goes to a
 * thread that does not block it; sigwait in a thread; rt_sigpending of a
 * thread shows its own pending signals, not another's; tgkill's ESRCH;
 * a thread blocked in read() is interrupted (EINTR) by a signal aimed at
 * it. Prints a line per check and "tsignals: ok"; exits nonzero on a
 * failure. Built static with musl; runs the same natively.
 */
#define PROGRAM "tsignals"
#include "check.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int tid(void)
{
	return (int)syscall(SYS_gettid);
}

static void set_flag(int *f, int v)
{
	__atomic_store_n(f, v, __ATOMIC_SEQ_CST);
}

static int flag(int *f)
{
	return __atomic_load_n(f, __ATOMIC_SEQ_CST);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* Waits up to 5 s for *f to become nonzero; nanosleep ends early when a
 * handler runs on this thread. */
static int wait_flag(int *f)
{
	for (int i = 0; i < 5000 && !flag(f); i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return flag(f);
}

/* The thread a handler ran on. */
static int handled_on;

static void on_usr(int sig)
{
	(void)sig;
	set_flag(&handled_on, tid());
}

static void handle(int sig, int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static void mask(int how, int sig)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	pthread_sigmask(how, &s, NULL);
}

static int worker_tid, ready, go, result, result_errno;
static int fds[2];

/* (1), (2): waits for a handler to run on this thread. */
static void *waiter(void *arg)
{
	if (arg)
		mask(SIG_UNBLOCK, SIGUSR2);
	set_flag(&worker_tid, tid());
	set_flag(&ready, 1);
	wait_flag(&handled_on);
	return NULL;
}

/* (3): sigwait for SIGTERM, blocked since main blocked it. */
static void *sigwaiter(void *arg)
{
	(void)arg;
	sigset_t s;
	int sig = 0;
	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	set_flag(&ready, 1);
	int r = sigwait(&s, &sig);
	set_flag(&result, r == 0 ? sig : -1);
	return NULL;
}

/* (4): its pending set, after main sent it a blocked SIGUSR1. */
static void *pender(void *arg)
{
	(void)arg;
	sigset_t s;
	int sig;
	mask(SIG_BLOCK, SIGUSR1);
	set_flag(&ready, 1);
	wait_flag(&go);
	sigemptyset(&s);
	sigpending(&s);
	set_flag(&result, sigismember(&s, SIGUSR1));
	/* Takes it, so nothing is left pending. */
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigwait(&s, &sig);
	return NULL;
}

/* (6): blocked in read() on an empty pipe. */
static void *reader(void *arg)
{
	(void)arg;
	char c;
	set_flag(&worker_tid, tid());
	set_flag(&ready, 1);
	long n = read(fds[0], &c, 1);
	result_errno = errno;
	set_flag(&result, n < 0 ? -1 : 1);
	set_flag(&go, 1);
	return NULL;
}

static void reset(void)
{
	set_flag(&worker_tid, 0);
	set_flag(&ready, 0);
	set_flag(&go, 0);
	set_flag(&result, 0);
	set_flag(&handled_on, 0);
}

int main(void)
{
	pthread_t t;
	setvbuf(stdout, NULL, _IONBF, 0);
	handle(SIGUSR1, SA_RESTART);
	handle(SIGUSR2, SA_RESTART);

	/* (1) pthread_kill runs the handler on the thread aimed at. */
	reset();
	pthread_create(&t, NULL, waiter, NULL);
	check(wait_flag(&ready), "thread ready");
	check(pthread_kill(t, SIGUSR1) == 0, "pthread_kill");
	check(wait_flag(&handled_on), "handler ran");
	check(flag(&handled_on) == flag(&worker_tid), "handler ran on the target thread");
	pthread_join(t, NULL);
	part_ok("pthread_kill handler on its thread");

	/* (2) kill() of the process: the thread not blocking it takes it. */
	reset();
	mask(SIG_BLOCK, SIGUSR2);
	pthread_create(&t, NULL, waiter, (void *)1);
	check(wait_flag(&ready), "thread ready");
	check(kill(getpid(), SIGUSR2) == 0, "kill");
	check(wait_flag(&handled_on), "process signal handled");
	check(flag(&handled_on) == flag(&worker_tid), "process signal on the unblocking thread");
	pthread_join(t, NULL);
	part_ok("process signal to the thread not blocking it");

	/* (3) sigwait in a thread for a pthread_kill. */
	reset();
	mask(SIG_BLOCK, SIGTERM);
	pthread_create(&t, NULL, sigwaiter, NULL);
	check(wait_flag(&ready), "thread ready");
	check(pthread_kill(t, SIGTERM) == 0, "pthread_kill SIGTERM");
	pthread_join(t, NULL);
	check(flag(&result) == SIGTERM, "sigwait took SIGTERM");
	part_ok("sigwait in a thread");

	/* (4) a thread's pending signal is its own. */
	reset();
	pthread_create(&t, NULL, pender, NULL);
	check(wait_flag(&ready), "thread ready");
	check(pthread_kill(t, SIGUSR1) == 0, "pthread_kill blocked");
	sigset_t mine;
	sigemptyset(&mine);
	mask(SIG_BLOCK, SIGUSR1);
	sigpending(&mine);
	check(!sigismember(&mine, SIGUSR1), "not pending in main");
	mask(SIG_UNBLOCK, SIGUSR1);
	set_flag(&go, 1);
	pthread_join(t, NULL);
	check(flag(&result) == 1, "pending in its thread");
	part_ok("rt_sigpending per thread");

	/* (5) tgkill: no such thread, another process's thread, signal 0. */
	errno = 0;
	check(syscall(SYS_tgkill, getpid(), 0x3fffffff, SIGUSR1) == -1 && errno == ESRCH,
	      "tgkill of no thread is ESRCH");
	check(syscall(SYS_tgkill, getpid(), tid(), 0) == 0, "tgkill signal 0 of itself");
	errno = 0;
	check(syscall(SYS_tgkill, getpid(), 0, SIGUSR1) == -1 && errno == EINVAL,
	      "tgkill of tid 0 is EINVAL");
	pid_t child = fork();
	if (child == 0) {
		for (;;)
			pause();
	}
	errno = 0;
	check(syscall(SYS_tgkill, child, tid(), 0) == -1 && errno == ESRCH,
	      "tgkill with another process's tgid is ESRCH");
	check(syscall(SYS_tgkill, child, child, 0) == 0, "tgkill signal 0 of the child");
	kill(child, SIGKILL);
	int status = 0;
	check(waitpid(child, &status, 0) == child && WIFSIGNALED(status), "child killed");
	part_ok("tgkill errors");

	/* (6) a thread blocked in read() gets EINTR (no SA_RESTART). */
	reset();
	handle(SIGUSR1, 0);
	check(pipe(fds) == 0, "pipe");
	pthread_create(&t, NULL, reader, NULL);
	check(wait_flag(&ready), "thread ready");
	sleep_ms(100);
	check(pthread_kill(t, SIGUSR1) == 0, "pthread_kill reader");
	if (!wait_flag(&go)) {
		check(0, "read interrupted");
		/* Lets it go, so the join ends. */
		write(fds[1], "x", 1);
	}
	pthread_join(t, NULL);
	check(flag(&result) == -1 && result_errno == EINTR, "read ended with EINTR");
	check(flag(&handled_on) == flag(&worker_tid), "handler on the reader");
	part_ok("read interrupted in its thread");

	if (!failed)
		printf("tsignals: ok\n");
	return failed;
}
