/*
 * memory: shared anonymous memory across fork (MAP_SHARED stays shared
 * through mprotect, MAP_PRIVATE does not), mremap growing, moving,
 * shrinking and to a fixed address with the contents kept, its refusals,
 * and a read-only MAP_SHARED file mapping.
 *
 * Usage: memory [FILE]; FILE (default /tmp/memory.txt) is written and
 * mapped. Prints one line per part and `memory: ok`, exit 0; on the
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

/* Runs `body` in a forked child; true if it exited 0. */
static int in_child(void (*body)(char *), char *arg)
{
	pid_t c = fork();
	if (c == 0) {
		body(arg);
		_exit(0);
	}
	int status;
	return c > 0 && waitpid(c, &status, 0) == c && WIFEXITED(status) && WEXITSTATUS(status) == 0;
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

	if (failed)
		return 1;
	printf("memory: ok\n");
	return 0;
}
