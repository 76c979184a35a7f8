/*
 * hostile: Linux system calls whose third argument (rdx) is what seL4 reads
 * as its own system call number. seL4 on x86_64 takes its number from rdx,
 * Linux from rax; a `syscall` with rdx = -1..-13 is a seL4 call unless the
 * POSIX layer took it first (rdx = -10 is DebugHalt on a debug kernel: the
 * whole machine stops). Every call here must behave as on Linux.
 *
 * Prints one line per check, then "hostile: ok" and exits 0; else
 * "hostile: FAILED" and exits 1. A static musl C program.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A raw `syscall` with every register set here: libc cannot change rdx. */
static long raw3(long nr, long a1, long a2, long a3)
{
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3)
			 : "rcx", "r11", "memory");
	return ret;
}

static int failures;

static void expect(const char *what, long got, long want)
{
	int ok = got == want;
	printf("hostile: %s -> %ld (%s %ld)\n", what, got, ok ? "ok, expected" : "WRONG, expected", want);
	if (!ok)
		failures++;
}

int main(void)
{
	long pid = getpid();
	char what[64];

	/* getpid ignores its arguments: every seL4 number in rdx. */
	for (long rdx = -1; rdx >= -13; rdx--) {
		snprintf(what, sizeof what, "getpid with rdx=%ld", rdx);
		expect(what, raw3(SYS_getpid, 0, 0, rdx), pid);
	}
	/* What musl really does: poll(fds, 1, -1) waits forever, rdx = -1. */
	int fds[2];
	if (pipe(fds) != 0 || write(fds[1], "x", 1) != 1) {
		printf("hostile: pipe failed\n");
		failures++;
	} else {
		struct pollfd p = {.fd = fds[0], .events = POLLIN};
		expect("poll(readable pipe, 1, -1)", raw3(SYS_poll, (long)&p, 1, -1), 1);
		expect("its revents & POLLIN", p.revents & POLLIN, POLLIN);
		close(fds[0]);
		close(fds[1]);
	}
	/* lseek's whence is rdx: an invalid one is EINVAL, never a halt. */
	int fd = open("/bin/hostile", O_RDONLY);
	if (fd < 0)
		fd = open("/proc/self/exe", O_RDONLY);
	if (fd >= 0) {
		expect("lseek(file, 0, -1)", raw3(SYS_lseek, fd, 0, -1), -22);
		expect("lseek(file, 0, -10)", raw3(SYS_lseek, fd, 0, -10), -22);
		close(fd);
	}
	if (failures) {
		printf("hostile: FAILED (%d wrong)\n", failures);
		return 1;
	}
	printf("hostile: ok\n");
	return 0;
}
