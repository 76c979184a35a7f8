/*
 * shmfile: writable MAP_SHARED file mappings. A store is read back with
 * read() after msync and a pwrite() is seen in the mapping; a forked
 * child's store through the inherited mapping, a second open+mmap of the
 * same file and an unrelated open+mmap in a child are seen at once;
 * pages a file gains under its mapping appear; munmap and exit write
 * back; a store past the end of the file's last page never extends it; EACCES for PROT_WRITE on a read-only fd (mmap
 * and mprotect); SIGBUS for a page wholly beyond the end, and for pages a
 * truncate takes, in every mapper, until the file grows again (ftruncate
 * and open with O_TRUNC alike).
 *
 * Usage: shmfile [FILE]; FILE (default /root/shmfile.dat) is left holding
 * SIZE bytes of '.' but for the strings of PUTS at their offsets (what
 * the harness checks on the disk after the run). Prints one line per part
 * and `shmfile: ok`, exit 0; on the first failure `shmfile: FAILED ...`
 * and exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGRAM "shmfile"
#include "check.h"

#define PAGE 4096
/* Two pages, the second partial. */
#define SIZE 6000

/* What the file holds at the end (tests/system/tests.toml says the same). */
static const struct {
	long at;
	const char *text;
} PUTS[] = {
	{ 0, "stored and msynced" },
	{ 100, "written by pwrite" },
	{ 4096, "stored by a forked child" },
	{ 4296, "stored through a second open" },
	{ 4596, "stored by an unrelated mapping" },
	{ 5000, "written back at exit" },
	{ 5990, "last bytes" },
};

static const char *path;

/* Waits for child `c`; its wait status. */
static int wait_for(pid_t c)
{
	int status = -1;
	if (c < 0 || waitpid(c, &status, 0) != c)
		return -1;
	return status;
}

/* In a child: opens and maps the file's second page itself, stores `text`
 * at offset `at` and exits without munmap or msync. */
static int unrelated_store(long at, const char *text)
{
	pid_t c = fork();
	if (c == 0) {
		int fd = open(path, O_RDWR);
		char *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PAGE);
		if (fd < 0 || m == MAP_FAILED)
			_exit(1);
		memcpy(m + at - PAGE, text, strlen(text));
		_exit(0);
	}
	int status = wait_for(c);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
	path = argc > 1 ? argv[1] : "/root/shmfile.dat";
	char want[SIZE];
	memset(want, '.', SIZE);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	check(fd >= 0 && write(fd, want, SIZE) == SIZE, "writing the file");

	/* A store, msync, read() through the descriptor. */
	char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	check(m != MAP_FAILED, "mmap MAP_SHARED of a file open O_RDWR");
	if (m == MAP_FAILED)
		return 1;
	check(m[0] == '.' && m[SIZE - 1] == '.' && m[SIZE] == 0, "the mapping reads the file, zeros past it");
	memcpy(m, PUTS[0].text, strlen(PUTS[0].text));
	check(msync(m, 2 * PAGE, MS_SYNC) == 0, "msync");
	char buf[64] = { 0 };
	struct stat st;
	check(pread(fd, buf, strlen(PUTS[0].text), 0) == (ssize_t)strlen(PUTS[0].text) &&
		      strcmp(buf, PUTS[0].text) == 0,
	      "read() after a store and msync");
	errno = 0;
	check(msync(m + 1, PAGE, MS_SYNC) == -1 && errno == EINVAL, "msync of an unaligned address");
	check(msync(m, PAGE, MS_ASYNC) == 0, "msync MS_ASYNC");
	part_ok("msync");

	/* pwrite() is seen in the mapping. */
	check(pwrite(fd, PUTS[1].text, strlen(PUTS[1].text), PUTS[1].at) == (ssize_t)strlen(PUTS[1].text),
	      "pwrite");
	check(memcmp(m + PUTS[1].at, PUTS[1].text, strlen(PUTS[1].text)) == 0, "the mapping sees pwrite()");
	part_ok("write");

	/* A forked child stores through the inherited mapping. */
	pid_t c = fork();
	if (c == 0) {
		memcpy(m + PUTS[2].at, PUTS[2].text, strlen(PUTS[2].text));
		_exit(0);
	}
	int status = wait_for(c);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the forked child");
	check(memcmp(m + PUTS[2].at, PUTS[2].text, strlen(PUTS[2].text)) == 0, "the child's store seen");
	part_ok("fork");

	/* A second open and mapping of the same file shares its pages. */
	int fd2 = open(path, O_RDWR);
	char *m2 = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, PAGE);
	check(fd2 >= 0 && m2 != MAP_FAILED, "a second open and mmap");
	if (m2 == MAP_FAILED)
		return 1;
	close(fd2);
	memcpy(m2 + PUTS[3].at - PAGE, PUTS[3].text, strlen(PUTS[3].text));
	check(memcmp(m + PUTS[3].at, PUTS[3].text, strlen(PUTS[3].text)) == 0, "the second mapping's store seen");
	check(memcmp(m2, PUTS[2].text, strlen(PUTS[2].text)) == 0, "the second mapping sees the first");
	check(unrelated_store(PUTS[4].at, PUTS[4].text), "an unrelated process's mapping");
	check(memcmp(m + PUTS[4].at, PUTS[4].text, strlen(PUTS[4].text)) == 0 &&
		      memcmp(m2 + PUTS[4].at - PAGE, PUTS[4].text, strlen(PUTS[4].text)) == 0,
	      "the unrelated process's store seen");
	part_ok("two mappings");

	/* A file that grows under its mapping: the pages it gained appear. */
	char gpath[256];
	snprintf(gpath, sizeof gpath, "%s.grow", path);
	int g = open(gpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
	char *gm = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0);
	check(g >= 0 && gm != MAP_FAILED, "mapping an empty file");
	if (gm == MAP_FAILED)
		return 1;
	check(ftruncate(g, PAGE + 10) == 0 && pwrite(g, "via pwrite", 10, PAGE) == 10, "growing it");
	memcpy(gm, "grown", 5);
	check(gm[5] == 0, "a page gained reads zeros");
	check(pread(g, gm + PAGE + 100, 10, PAGE) == 10 && memcmp(gm + PAGE + 100, "via pwrite", 10) == 0 &&
		      memcmp(gm + PAGE, "via pwrite", 10) == 0,
	      "read() into a page gained");
	memset(buf, 0, sizeof buf);
	check(pread(g, buf, 5, 0) == 5 && strcmp(buf, "grown") == 0, "read() of a store into a page gained");
	check(munmap(gm, 2 * PAGE) == 0 && fstat(g, &st) == 0 && st.st_size == PAGE + 10,
	      "the grown file keeps its size");
	check(close(g) == 0 && unlink(gpath) == 0, "dropping the grown file");
	part_ok("growth");

	/* A store across the end of the file: the file keeps its size. */
	memcpy(m + PUTS[6].at, "last bytes past the end", 23);

	/* A read-only descriptor maps shared read-only only. */
	int ro = open(path, O_RDONLY);
	errno = 0;
	check(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED && errno == EACCES,
	      "PROT_WRITE MAP_SHARED of a read-only fd is EACCES");
	char *r = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, ro, 0);
	check(r != MAP_FAILED && memcmp(r, PUTS[0].text, strlen(PUTS[0].text)) == 0, "a read-only shared mapping");
	errno = 0;
	check(mprotect(r, PAGE, PROT_READ | PROT_WRITE) == -1 && errno == EACCES,
	      "mprotect PROT_WRITE of it is EACCES");
	char *priv = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro, 0);
	check(priv != MAP_FAILED && memcmp(priv, PUTS[0].text, strlen(PUTS[0].text)) == 0,
	      "a private writable mapping of it");
	munmap(r, PAGE);
	munmap(priv, PAGE);
	close(ro);
	part_ok("read-only");

	/* A page wholly beyond the end is SIGBUS. */
	char *big = mmap(NULL, 3 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	check(big != MAP_FAILED, "mapping past the end");
	c = fork();
	if (c == 0) {
		signal(SIGBUS, SIG_DFL);
		volatile char x = big[2 * PAGE];
		(void)x;
		_exit(0);
	}
	status = wait_for(c);
	check(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS, "SIGBUS beyond the end");
	munmap(big, 3 * PAGE);

	/* Pages a truncate takes are SIGBUS in every mapper (here a child
	 * that touched them before), until the file grows again. */
	char tpath[256];
	snprintf(tpath, sizeof tpath, "%s.shrink", path);
	int t = open(tpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
	check(t >= 0 && ftruncate(t, 3 * PAGE) == 0, "a three-page file");
	char *tm = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, t, 0);
	check(tm != MAP_FAILED, "mapping it");
	if (tm == MAP_FAILED)
		return 1;
	memcpy(tm + PAGE - 4, "tail", 4);
	memcpy(tm + 2 * PAGE, "third", 5);
	int go[2];
	check(pipe(go) == 0, "pipe");
	c = fork();
	if (c == 0) {
		signal(SIGBUS, SIG_DFL);
		char b;
		int ok = tm[2 * PAGE] == 't' && read(go[0], &b, 1) == 1 && memcmp(tm + PAGE - 4, "ta\0\0", 4) == 0;
		if (!ok)
			_exit(1);
		volatile char x = tm[2 * PAGE];
		(void)x;
		_exit(0);
	}
	check(ftruncate(t, PAGE - 2) == 0 && write(go[1], "x", 1) == 1, "shrinking it under the child");
	status = wait_for(c);
	check(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS, "SIGBUS past a truncated end, in another mapper");
	check(ftruncate(t, 3 * PAGE) == 0 && tm[2 * PAGE] == 0 && tm[PAGE] == 0, "grown again: the pages read zeros");
	/* open(O_TRUNC) truncates the mapped pages as ftruncate does. */
	memcpy(tm + 2 * PAGE, "again", 5);
	int t2 = open(tpath, O_RDWR | O_TRUNC);
	check(t2 >= 0 && ftruncate(t2, 3 * PAGE) == 0 && tm[2 * PAGE] == 0,
	      "open(O_TRUNC) drops the mapped pages' bytes");
	close(t2);
	munmap(tm, 3 * PAGE);
	close(go[0]);
	close(go[1]);
	check(close(t) == 0 && unlink(tpath) == 0, "dropping the shrunk file");
	part_ok("sigbus");

	/* munmap of the last mappings writes back (nothing read the file since
	 * the stores), then a child's mapping at its exit. */
	check(munmap(m, 2 * PAGE) == 0 && munmap(m2, PAGE) == 0, "munmap");
	close(fd);
	check(unrelated_store(PUTS[5].at, PUTS[5].text), "a store left at exit");
	for (size_t i = 0; i < sizeof PUTS / sizeof PUTS[0]; i++)
		memcpy(want + PUTS[i].at, PUTS[i].text, strlen(PUTS[i].text));
	char got[SIZE + 100];
	fd = open(path, O_RDONLY);
	check(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == SIZE, "the file kept its size");
	check(read(fd, got, sizeof got) == SIZE && memcmp(got, want, SIZE) == 0, "the file holds every store");
	/* On the disk before the system ends. */
	check(fsync(fd) == 0, "fsync");
	close(fd);
	part_ok("write-back");

	if (failed)
		return 1;
	printf("shmfile: ok\n");
	return 0;
}
