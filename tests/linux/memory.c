/*
 * memory: shared anonymous memory across fork (MAP_SHARED stays shared
 * through mprotect, MAP_PRIVATE does not), mremap growing, moving,
 * shrinking and to a fixed address with the contents kept, its refusals,
 * a read-only MAP_SHARED file mapping, and copy-on-write after fork (a
 * data-segment word and bss written by either side after the fork, the
 * server's own writes into a shared page, a grandchild, mprotect while
 * shared, a raw `syscall` the server patches in the child only, and the
 * program's pristine pages for its next run).
 *
 * Usage: memory [FILE]; FILE (default /tmp/memory.txt) is written and
 * mapped. `memory --pristine` only checks that its data and bss start as
 * the program has them (exit 0). Prints one line per part and `memory: ok`, exit 0; on the
 * first failure `memory: FAILED ...` and exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGRAM "memory"
#include "check.h"

/* Whether child `c` exited 0 (waited for). */
static int exited_ok(pid_t c)
{
	int status;
	return c > 0 && waitpid(c, &status, 0) == c && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Runs `body` in a forked child; true if it exited 0. */
static int in_child(void (*body)(char *), char *arg)
{
	pid_t c = fork();
	if (c == 0) {
		body(arg);
		_exit(0);
	}
	return exited_ok(c);
}

static void child_writes(char *p)
{
	strcpy(p, "from the child");
	strcpy(p + 4096, "second page");
}

static void child_checks(char *p)
{
	_exit(strcmp(p, "from the parent") == 0 ? 0 : 1);
}

/* Program pages that fork shares until one side writes. */
static int data_word = 42;
static char bss_buf[3 * 4096];

/* The child's side of `copy_on_write`: what it sees, what it writes. */
static int cow_child(int from_parent)
{
	char b;
	int ok = read(from_parent, &b, 1) == 1;
	/* The parent wrote both after the fork: the child keeps the old. */
	ok = ok && data_word == 7 && bss_buf[0] == 'p' && bss_buf[4096] == 'P';
	data_word = 100;
	/* The server writes into the child's page, not into the shared one. */
	ok = ok && read(from_parent, bss_buf + 4096, 5) == 5 && memcmp(bss_buf + 4096, "hello", 5) == 0;
	pid_t g = fork();
	if (g == 0)
		_exit(data_word == 100 && bss_buf[4096] == 'h' && (data_word = 200, bss_buf[4096] = 'g', 1) ? 0 : 1);
	ok = ok && exited_ok(g) && data_word == 100 && bss_buf[4096] == 'h';
	return ok;
}

static void copy_on_write(const char *self)
{
	int p[2];
	check(pipe(p) == 0, "pipe");
	data_word = 7;
	bss_buf[0] = 'p';
	bss_buf[4096] = 'P';
	pid_t c = fork();
	if (c == 0)
		_exit(cow_child(p[0]) ? 0 : 1);
	data_word = 9;
	bss_buf[0] = 'q';
	check(write(p[1], "x", 1) == 1 && write(p[1], "hello", 5) == 5, "writing to the child");
	check(exited_ok(c), "the child saw its own copies (data, bss, a grandchild)");
	check(data_word == 9 && bss_buf[0] == 'q' && bss_buf[4096] == 'P', "the parent kept its own");
	data_word = 11;
	bss_buf[4097] = 'r';
	check(data_word == 11 && bss_buf[4097] == 'r', "the parent writes once the child is gone");

	/* mprotect of a page both sides hold: still copied on the first store. */
	char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check(m != MAP_FAILED, "mmap for mprotect");
	strcpy(m, "before");
	c = fork();
	if (c == 0) {
		char b;
		_exit(read(p[0], &b, 1) == 1 && strcmp(m, "before") == 0 ? 0 : 1);
	}
	check(mprotect(m, 4096, PROT_READ) == 0 && mprotect(m, 4096, PROT_READ | PROT_WRITE) == 0,
	      "mprotect while shared");
	strcpy(m, "after");
	check(write(p[1], "x", 1) == 1 && exited_ok(c), "the child kept the page from before mprotect");
	check(strcmp(m, "after") == 0, "the parent's store after mprotect");
	munmap(m, 4096);
	close(p[0]);
	close(p[1]);

	/* A raw `syscall` written at run time: on KaaL, rdx -1 names seL4's
	 * Call and rdi a capability the process lacks, so the server gets a
	 * capability fault and patches the site, in the child's own copy of
	 * the page; the parent's stays as it was. The call is exit_group, whose
	 * status is rdi's low byte: seL4's `syscall` entry keeps no stack
	 * pointer, so nothing may run after it on the stack. */
	unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check(code != MAP_FAILED, "mmap of a code page");
	memcpy(code, "\x0f\x05", 2); /* syscall */
	check(mprotect(code, 4096, PROT_READ | PROT_EXEC) == 0, "mprotect of the code page");
	c = fork();
	if (c == 0) {
		__asm__ volatile("jmp *%0" : : "r"(code), "a"(231L), "d"(-1L), "D"(0x1234L) : "memory");
		_exit(1);
	}
	int status;
	check(c > 0 && waitpid(c, &status, 0) == c && WIFEXITED(status) && WEXITSTATUS(status) == 0x34,
	      "the child's raw exit_group(0x1234)");
	check(code[0] == 0x0f && code[1] == 0x05, "the parent's copy of the page unpatched");
	munmap(code, 4096);

	/* The program's own pages are untouched: its next run starts afresh. */
	c = fork();
	if (c == 0) {
		char *args[] = {(char *)self, "--pristine", NULL};
		char *env[] = {NULL};
		execve(self, args, env);
		_exit(127);
	}
	check(exited_ok(c), "a new run of the program sees its data as loaded");
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7 + seed);
}

static int same(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(i * 7 + seed))
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	const size_t page = 4096;
	if (argc == 2 && strcmp(argv[1], "--pristine") == 0)
		return data_word == 42 && bss_buf[0] == 0 && bss_buf[4096] == 0 ? 0 : 1;

	/* Shared anonymous memory: each side sees the other's writes. */
	char *s = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	check(s != MAP_FAILED, "mmap MAP_SHARED|MAP_ANONYMOUS");
	check(in_child(child_writes, s), "the writing child");
	check(strcmp(s, "from the child") == 0 && strcmp(s + page, "second page") == 0,
	      "the child's writes seen by the parent");
	check(mprotect(s, 2 * page, PROT_READ) == 0 && mprotect(s, 2 * page, PROT_READ | PROT_WRITE) == 0,
	      "mprotect of shared memory");
	strcpy(s, "from the parent");
	check(in_child(child_checks, s), "the parent's write seen by a child");
	check(munmap(s, 2 * page) == 0, "munmap of shared memory");

	/* Private memory: a child's writes stay its own. */
	char *q = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check(q != MAP_FAILED, "mmap MAP_PRIVATE");
	strcpy(q, "parent's");
	check(in_child(child_writes, q), "the private child");
	check(strcmp(q, "parent's") == 0, "a private page kept from the child");
	munmap(q, 2 * page);
	part_ok("shared");

	/* mremap: grow (in place or moved), shrink, fixed, contents kept. */
	unsigned char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check(m != MAP_FAILED, "mmap for mremap");
	fill(m, 2 * page, 3);
	unsigned char *g = mremap(m, 2 * page, 16 * page, MREMAP_MAYMOVE);
	check(g != MAP_FAILED && same(g, 2 * page, 3), "mremap grown keeps its bytes");
	/* The grown part is new anonymous memory: it reads zeros. */
	int zeros = 1;
	for (size_t i = 2 * page; i < 16 * page; i++)
		zeros &= g[i] == 0;
	check(zeros, "the grown tail reads zeros");
	/* Writable: a store there would otherwise end the program. */
	g[16 * page - 1] = 0x5a;
	unsigned char *h = mremap(g, 16 * page, page, 0);
	check(h == g && same(h, page, 3), "mremap shrunk in place");
	/* A free address to move to: mapped, then unmapped. */
	unsigned char *spot = mmap(NULL, 4 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check(spot != MAP_FAILED && munmap(spot, 4 * page) == 0, "a free spot");
	unsigned char *f = mremap(h, page, 2 * page, MREMAP_MAYMOVE | MREMAP_FIXED, spot);
	check(f == spot && same(f, page, 3), "mremap to a fixed address");
	errno = 0;
	check(mremap(f, page, page, 0x40) == MAP_FAILED && errno == EINVAL, "mremap with unknown flags");
	errno = 0;
	check(mremap(f + 1, page, page, 0) == MAP_FAILED && errno == EINVAL, "mremap of an unaligned address");
	munmap(f, 2 * page);
	errno = 0;
	check(mremap(f, page, 2 * page, MREMAP_MAYMOVE) == MAP_FAILED && errno == EFAULT,
	      "mremap of unmapped memory");
	part_ok("mremap");

	/* A read-only shared file mapping reads the file. */
	const char *path = argc > 1 ? argv[1] : "/tmp/memory.txt";
	static const char TEXT[] = "a file mapped shared and read-only\n";
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	check(fd >= 0 && write(fd, TEXT, sizeof TEXT - 1) == (ssize_t)(sizeof TEXT - 1), "writing the file");
	char *fm = mmap(NULL, sizeof TEXT - 1, PROT_READ, MAP_SHARED, fd, 0);
	check(fm != MAP_FAILED && memcmp(fm, TEXT, sizeof TEXT - 1) == 0, "a shared read-only file mapping");
	if (fm != MAP_FAILED)
		munmap(fm, sizeof TEXT - 1);
	close(fd);
	part_ok("shared file");

	copy_on_write(argv[0]);
	part_ok("copy on write");

	if (failed)
		return 1;
	printf("memory: ok\n");
	return 0;
}
