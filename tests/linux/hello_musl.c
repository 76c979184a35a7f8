/*
 * hello_musl: the first unmodified Linux program of KaaL's POSIX layer, a
 * static musl C program (musl-gcc -static -O2). It shows what a process
 * receives (argv, the environment) and does a file round trip through the
 * VFS, then changes the file's mode, times and size by path and by
 * descriptor and reads them back through stat. It exits with status 3, so
 * that a harness can tell a real exit status from a default 0.
 *
 * Usage: hello_musl [PATH [ARG...]]; PATH defaults to /tmp/hello.txt.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char TEXT[] = "hello_musl wrote this line\n";

static int fail(const char *what, const char *path)
{
	printf("hello_musl: %s %s failed: %s\n", what, path, strerror(errno));
	return 1;
}

/* Whether a call failed with the errno Linux gives. */
static int refused(int ret, int want, const char *what)
{
	if (ret == -1 && errno == want)
		return 1;
	printf("hello_musl: %s gave %d (%s), not %s\n", what, ret, strerror(errno), strerror(want));
	return 0;
}

/* chmod, utimensat, truncate and their descriptor forms on `path`, each
 * read back through stat; 0 when all held. */
static int attributes(const char *path)
{
	struct stat st;
	/* Just written: stamped with the wall clock, which KaaL starts at
	 * 2026-01-01 00:00 UTC (1767225600) and Linux hosts are past. */
	if (stat(path, &st) != 0)
		return fail("stat", path);
	if (st.st_mtime < 1767225600) {
		printf("hello_musl: a new file's mtime %lld is before 2026\n", (long long)st.st_mtime);
		return 1;
	}
	if (chmod(path, 0640) != 0 || stat(path, &st) != 0)
		return fail("chmod", path);
	if ((st.st_mode & 07777) != 0640 || !S_ISREG(st.st_mode)) {
		printf("hello_musl: mode %o after chmod 640\n", (unsigned)st.st_mode);
		return 1;
	}
	struct timespec times[2] = {{1000, 0}, {1577934245, 999999999}};
	if (utimensat(AT_FDCWD, path, times, 0) != 0 || stat(path, &st) != 0)
		return fail("utimensat", path);
	if (st.st_atime != 1000 || st.st_mtime != 1577934245) {
		printf("hello_musl: times %lld %lld\n", (long long)st.st_atime, (long long)st.st_mtime);
		return 1;
	}
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return fail("open", path);
	/* By descriptor, opened for reading only; the access time omitted. */
	struct timespec mtime_only[2] = {{0, UTIME_OMIT}, {86400, 0}};
	if (fchmod(fd, 0604) != 0 || futimens(fd, mtime_only) != 0 || fstat(fd, &st) != 0)
		return fail("fchmod and futimens", path);
	if ((st.st_mode & 07777) != 0604 || st.st_atime != 1000 || st.st_mtime != 86400) {
		printf("hello_musl: mode %o times %lld %lld by descriptor\n", (unsigned)st.st_mode,
		       (long long)st.st_atime, (long long)st.st_mtime);
		return 1;
	}
	close(fd);
	if (truncate(path, 5) != 0 || stat(path, &st) != 0 || st.st_size != 5)
		return fail("truncate", path);
	struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
	char below[4200];
	snprintf(below, sizeof below, "%s/x", path);
	if (!refused(utimensat(AT_FDCWD, path, bad, 0), EINVAL, "utimensat bad nsec") ||
	    !refused(utimensat(AT_FDCWD, path, times, 0x8000), EINVAL, "utimensat bad flags") ||
	    !refused(truncate(path, -1), EINVAL, "truncate -1") ||
	    !refused(chmod("/no/such/file", 0600), ENOENT, "chmod missing") ||
	    !refused(chmod(below, 0600), ENOTDIR, "chmod below a file") ||
	    !refused(truncate(below, 1), ENOTDIR, "truncate below a file") ||
	    !refused(fchmod(-1, 0600), EBADF, "fchmod -1") ||
	    !refused(futimens(99, times), EBADF, "futimens 99") ||
	    !refused(chmod((const char *)8, 0600), EFAULT, "chmod of a bad pointer"))
		return 1;
	/* A symbolic link's own times, not its target's. */
	char link[4200];
	snprintf(link, sizeof link, "%s.link", path);
	unlink(link);
	if (symlink(path, link) != 0)
		return fail("symlink", link);
	struct timespec link_times[2] = {{7, 0}, {77, 0}};
	if (utimensat(AT_FDCWD, link, link_times, AT_SYMLINK_NOFOLLOW) != 0 || lstat(link, &st) != 0)
		return fail("utimensat of a link", link);
	struct stat target;
	if (st.st_mtime != 77 || stat(path, &target) != 0 || stat(link, &st) != 0 ||
	    st.st_mtime != target.st_mtime || st.st_ino != target.st_ino) {
		printf("hello_musl: a link's time reached its target\n");
		return 1;
	}
	unlink(link);
	printf("hello_musl: attributes ok\n");
	return 0;
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
	if (attributes(path) != 0)
		return 1;

	/* The thread's name: the program's file name at first (cut to 15
	 * bytes), then what PR_SET_NAME gives, cut likewise. */
	char name[16] = { 0 };
	const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (prctl(PR_GET_NAME, name) != 0 || strncmp(name, base, 15) != 0) {
		printf("hello_musl: PR_GET_NAME gave \"%s\", not \"%.15s\"\n", name, base);
		return 1;
	}
	if (prctl(PR_SET_NAME, "a-name-longer-than-15") != 0 || prctl(PR_GET_NAME, name) != 0 ||
	    strcmp(name, "a-name-longer-t") != 0) {
		printf("hello_musl: PR_SET_NAME then PR_GET_NAME gave \"%s\"\n", name);
		return 1;
	}
	printf("hello_musl: thread name ok\n");
	fflush(stdout);
	return 3;
}
