/*
 * hello_musl: the first unmodified Linux program of KaaL's POSIX layer, a
 * static musl C program (musl-gcc -static -O2). It shows what a process
 * receives (argv, the environment) and does a file round trip through the
 * VFS. It exits with status 3, so that a harness can tell a real exit
 * status from a default 0.
 *
 * Usage: hello_musl [PATH [ARG...]]; PATH defaults to /tmp/hello.txt.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char TEXT[] = "hello_musl wrote this line\n";

static int fail(const char *what, const char *path)
{
	printf("hello_musl: %s %s failed: %s\n", what, path, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	const char *greeting = getenv("KAAL_GREETING");
	printf("KAAL_GREETING=%s\n", greeting ? greeting : "(unset)");

	const char *path = argc > 1 ? argv[1] : "/tmp/hello.txt";
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return fail("open for writing", path);
	if (write(fd, TEXT, sizeof TEXT - 1) != (ssize_t)(sizeof TEXT - 1))
		return fail("write", path);
	if (close(fd) != 0)
		return fail("close", path);

	char back[sizeof TEXT + 16];
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return fail("open for reading", path);
	ssize_t got = read(fd, back, sizeof back);
	if (got < 0)
		return fail("read", path);
	/* The same bytes through a private file mapping. */
	char *m = mmap(NULL, sizeof TEXT - 1, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return fail("mmap", path);
	if (memcmp(m, TEXT, sizeof TEXT - 1) != 0) {
		printf("hello_musl: %s mapped differs\n", path);
		return 1;
	}
	munmap(m, sizeof TEXT - 1);
	printf("hello_musl: mmap of the file ok\n");
	close(fd);
	if ((size_t)got != sizeof TEXT - 1 || memcmp(back, TEXT, sizeof TEXT - 1) != 0) {
		printf("hello_musl: %s read back %zd bytes that differ\n", path, got);
		return 1;
	}
	printf("hello_musl: file round trip ok\n");
	fflush(stdout);
	return 3;
}
