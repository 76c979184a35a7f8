/*
 * check.h: what the test programs share. A program defines PROGRAM (its
 * name, which starts each failure line) before including it; it ends with
 * `failed` as its status.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int failed;

/* Reports the first failed check only: later ones often follow from it. */
static void check(int ok, const char *what)
{
	if (!ok && !failed) {
		printf("%s: FAILED %s (errno %d: %s)\n", PROGRAM, what, errno, strerror(errno));
		failed = 1;
	}
}

/* Reports a part done, only when no check has failed (the system tests
 * expect these lines in order). */
static __attribute__((unused)) void part_ok(const char *part)
{
	if (!failed)
		printf("%s: %s ok\n", PROGRAM, part);
}

static __attribute__((unused)) long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The last signal `on_signal` caught. */
static __attribute__((unused)) volatile sig_atomic_t got;

static __attribute__((unused)) void on_signal(int sig)
{
	got = sig;
}
