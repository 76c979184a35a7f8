/*
 * isolation: processes do not see each other's memory, and a killed
 * process's memory goes back. A static musl C program.
 *
 * 1. After fork, the parent changes a variable; the child, told by a pipe,
 *    still reads the value from before the fork (its own copy).
 * 2. A page the parent maps after the fork is not in the child: the child
 *    that touches that address dies of SIGSEGV.
 * 3. With `--server` (on KaaL's process server, whose free memory is the
 *    machine's in sysinfo): a child that touched 4 MiB is killed with
 *    SIGKILL; the free memory after it is reaped is what it was before it
 *    was forked, within 64 KiB (the server's page tables for its own view
 *    of the 4 MiB stay).
 *
 * Prints "isolation: ok" and exits 0, else "isolation: FAILED" and 1.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile long secret = 1;
static int failures;

static void expect(const char *what, long got, long want)
{
	int ok = got == want;
	printf("isolation: %s -> %ld (%s %ld)\n", what, got, ok ? "ok, expected" : "WRONG, expected", want);
	if (!ok)
		failures++;
}

static long free_kib(void)
{
	struct sysinfo si;
	if (sysinfo(&si) != 0)
		return -1;
	return (long)(si.freeram * si.mem_unit / 1024);
}

int main(int argc, char **argv)
{
	int p[2];
	int status = 0;
	if (pipe(p) != 0)
		return 1;
	pid_t c = fork();
	if (c == 0) {
		char b;
		read(p[0], &b, 1);
		_exit(secret == 1 ? 0 : 1);
	}
	secret = 42;
	write(p[1], "x", 1);
	waitpid(c, &status, 0);
	expect("the child's copy after the parent wrote 42 (exit 0: it read 1)",
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);

	volatile long *mine = NULL;
	c = fork();
	if (c == 0) {
		char b;
		read(p[0], &b, 1);
		/* The address the parent mapped after the fork, sent down the pipe. */
		long addr = 0;
		read(p[0], &addr, sizeof addr);
		mine = (volatile long *)addr;
		_exit((int)*mine);
	}
	mine = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	*mine = 7;
	long addr = (long)mine;
	write(p[1], "x", 1);
	write(p[1], &addr, sizeof addr);
	waitpid(c, &status, 0);
	expect("the child reading the parent's new page: killed by signal",
	       WIFSIGNALED(status) ? WTERMSIG(status) : -1, SIGSEGV);

	if (argc > 1 && strcmp(argv[1], "--server") == 0) {
		long before = free_kib();
		c = fork();
		if (c == 0) {
			size_t n = 4 << 20;
			char *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m != MAP_FAILED)
				memset(m, 1, n);
			write(p[1], "y", 1);
			for (;;)
				pause();
		}
		char b;
		read(p[0], &b, 1);
		long during = free_kib();
		kill(c, SIGKILL);
		waitpid(c, &status, 0);
		long after = free_kib();
		printf("isolation: free KiB before %ld, while the child held 4 MiB %ld, after it was killed %ld\n",
		       before, during, after);
		expect("the child held at least 4 MiB", before - during >= 4096, 1);
		expect("its memory came back (within 64 KiB)", after - before <= 64 && before - after <= 64, 1);
		expect("it was killed by signal", WIFSIGNALED(status) ? WTERMSIG(status) : -1, SIGKILL);
	}

	if (failures) {
		printf("isolation: FAILED (%d wrong)\n", failures);
		return 1;
	}
	printf("isolation: ok\n");
	return 0;
}
