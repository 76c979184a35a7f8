/*
 * hostile: Linux system calls whose third argument (rdx) is what seL4 reads
 * as its own system call number. seL4 on x86_64 takes its number from rdx,
 * Linux from rax; a `syscall` with rdx = -1..-13 is a seL4 call unless the
 * POSIX layer took it first (rdx = -10 is DebugHalt on a debug kernel: the
 * whole machine stops). Every call here must behave as on Linux.
 *
 * Then what a hostile program does to the server: every system call
 * number 0..450 with garbage arguments (each must return), bad pointers
 * (EFAULT), a write to its own code (the child that does it dies of
 * SIGSEGV) and forks until the server refuses (EAGAIN or ENOMEM, and every
 * child is reaped after).
 *
 * The second part runs with the argument `--server` only: garbage system
 * calls would be the host kernel's business when the harness checks this
 * program natively.
 *
 * Prints one line per check, then "hostile: ok" and exits 0; else
 * "hostile: FAILED" and exits 1. A static musl C program.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
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

/* A raw `syscall` with six arguments. */
static long raw6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long ret;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

static uint64_t seed = 0x4b61614c;

/* Garbage that is never a valid descriptor, address or small size. */
static long garbage(void)
{
	seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
	return (long)(seed | 0x0000100000000000ULL);
}

static int failures;

static void expect(const char *what, long got, long want)
{
	int ok = got == want;
	printf("hostile: %s -> %ld (%s %ld)\n", what, got, ok ? "ok, expected" : "WRONG, expected", want);
	if (!ok)
		failures++;
}

int main(int argc, char **argv)
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
	if (argc < 2 || strcmp(argv[1], "--server") != 0)
		goto done;

	/* Every number with garbage, but those that end, replace or stop
	 * this process, or signal others. */
	static const long skip[] = {SYS_exit, SYS_exit_group, SYS_fork, SYS_vfork, SYS_clone,
				    SYS_execve, SYS_execveat, SYS_rt_sigreturn, SYS_pause,
				    SYS_kill, SYS_tkill, SYS_tgkill, SYS_rt_sigsuspend,
				    435 /* clone3 */};
	long answered = 0;
	for (long nr = 0; nr <= 450; nr++) {
		int skipped = 0;
		for (unsigned i = 0; i < sizeof skip / sizeof skip[0]; i++)
			skipped |= skip[i] == nr;
		if (skipped)
			continue;
		raw6(nr, garbage(), garbage(), garbage(), garbage(), garbage(), garbage());
		answered++;
	}
	printf("hostile: %ld system call numbers with garbage arguments returned\n", answered);

	/* Bad pointers: EFAULT, the server goes on. */
	expect("write(1, (void *)8, 10)", raw3(SYS_write, 1, 8, 10), -EFAULT);
	expect("open((char *)8, O_RDONLY)", raw3(SYS_open, 8, O_RDONLY, 0), -EFAULT);
	int zero = open("/dev/zero", O_RDONLY);
	expect("read(/dev/zero, (void *)0x10, 100)", raw3(SYS_read, zero, 0x10, 100), -EFAULT);
	close(zero);

	/* A write to its own code: that process dies of SIGSEGV. */
	pid_t child = fork();
	if (child == 0) {
		volatile unsigned char *code = (volatile unsigned char *)(uintptr_t)&main;
		code[0] = 0xcc;
		_exit(0);
	}
	int status = 0;
	waitpid(child, &status, 0);
	expect("the child that wrote to its code: killed by signal", WIFSIGNALED(status) ? WTERMSIG(status) : -1, 11);

	/* Forks until the server refuses; every child waits on a pipe. */
	int hold[2];
	if (pipe(hold) != 0) {
		printf("hostile: pipe failed\n");
		failures++;
	} else {
		long forked = 0;
		int refusal = 0;
		for (;;) {
			pid_t c = fork();
			if (c == 0) {
				char b;
				close(hold[1]);
				read(hold[0], &b, 1);
				_exit(0);
			}
			if (c < 0) {
				refusal = errno;
				break;
			}
			if (++forked > 100000)
				break;
		}
		printf("hostile: %ld children forked before the server refused\n", forked);
		expect("the refusal is EAGAIN or ENOMEM", refusal == EAGAIN || refusal == ENOMEM, 1);
		close(hold[1]);
		close(hold[0]);
		long reaped = 0;
		while (wait(NULL) > 0)
			reaped++;
		expect("children reaped", reaped, forked);
	}

done:
	if (failures) {
		printf("hostile: FAILED (%d wrong)\n", failures);
		return 1;
	}
	printf("hostile: ok\n");
	return 0;
}
