/*
 * bench: the POSIX layer's benchmarks. A static musl C program.
 *
 *   bench FILE [quick]
 *
 * Prints `KAAL-BENCH <name> <value> <unit>` lines, read by `cargo xtask
 * bench` (rdtsc ticks; under QEMU's -icount they repeat exactly):
 * - linux.boot_ticks: the TSC when the program starts: the ticks from the
 *   machine's reset (where the TSC starts at 0, and neither seL4 nor Linux
 *   moves it) to the first program from the disk running, firmware and
 *   kernel and services included;
 * - linux.getpid: one getpid's round trip;
 * - linux.pipe_pingpong: one byte to a forked child over one pipe and back
 *   over another, per round trip;
 * - linux.fork_exec_wait: fork, execve of /bin/true, wait4, per run;
 * - linux.futex_pingpong: a turn handed to a second thread and back through
 *   a futex word (FUTEX_WAKE, FUTEX_WAIT), per round trip;
 * - linux.thread_create_join: pthread_create of a thread that returns at
 *   once, and pthread_join, per thread;
 * - linux.epoll_wait_ready: one epoll_wait that finds one ready eventfd
 *   (level-triggered), per call;
 * - linux.read_mib_per_sec: FILE read whole in 64 KiB reads, cold (open to
 *   close, as the VFS's fs.read_mib_per_sec is), the rate from
 *   CLOCK_MONOTONIC since the program cannot know the TSC's frequency.
 * - linux.read_cached_mib_per_sec: FILE read whole again (what the first
 *   read left in the system's caches), checked against the pattern after
 *   the timing;
 * - linux.write_fsync_mib_per_sec: as many bytes as FILE holds written to
 *   a new file beside it in 64 KiB writes, then fsync and close; checked
 *   by reading it back, then removed;
 * - linux.create_stat_unlink: per file, creating, stat'ing and removing
 *   FILES small files in a new directory (ticks).
 * Each figure is the mean over its loop, after warm-up rounds. FILE must
 * hold the test disks' pattern of seed 0x5001 (kaal_test_patterns); it is
 * read a second time and checked, untimed, so that a fast wrong read
 * fails. `quick`: few rounds, for the native check on the host.
 *
 * Any failing call prints "bench: FAILED: ..." and exits 1; else
 * "bench: ok" and 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
/* Linux's futex operations (musl-gcc has no kernel headers). */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
#define SEED 0x5001u

static unsigned char buf[CHUNK];

static void fail(const char *what)
{
	printf("bench: FAILED: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void fail_msg(const char *what)
{
	printf("bench: FAILED: %s\n", what);
	exit(1);
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static void report(const char *name, uint64_t value, const char *unit)
{
	printf("KAAL-BENCH %s %llu %s\n", name, (unsigned long long)value, unit);
	fflush(stdout);
}

/* kaal_test_patterns' disk::pattern: splitmix64's finaliser. */
static uint64_t mix(uint64_t x)
{
	uint64_t z = x + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void bench_getpid(long rounds)
{
	pid_t me = getpid();
	for (long i = 0; i < rounds / 10; i++)
		if (getpid() != me)
			fail_msg("getpid changed");
	uint64_t t0 = rdtsc();
	for (long i = 0; i < rounds; i++)
		if (getpid() != me)
			fail_msg("getpid changed");
	report("linux.getpid", (rdtsc() - t0) / rounds, "ticks");
}

static void full_read(int fd, char *b)
{
	ssize_t n = read(fd, b, 1);
	if (n != 1) {
		if (n == 0)
			errno = EPIPE;
		fail("pipe read");
	}
}

static void full_write(int fd, const char *b)
{
	if (write(fd, b, 1) != 1)
		fail("pipe write");
}

static void reap(pid_t pid, const char *who)
{
	int status;
	if (waitpid(pid, &status, 0) != pid)
		fail("wait4");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("bench: FAILED: %s ended with wait status %#x\n", who, status);
		exit(1);
	}
}

static void bench_pipe(long rounds)
{
	int down[2], up[2];
	long warm = rounds / 10;
	if (pipe(down) != 0 || pipe(up) != 0)
		fail("pipe");
	fflush(stdout);
	pid_t c = fork();
	if (c < 0)
		fail("fork");
	if (c == 0) {
		char b;
		close(down[1]);
		close(up[0]);
		for (long i = 0; i < warm + rounds; i++) {
			full_read(down[0], &b);
			full_write(up[1], &b);
		}
		_exit(0);
	}
	close(down[0]);
	close(up[1]);
	char b = 'x';
	for (long i = 0; i < warm; i++) {
		full_write(down[1], &b);
		full_read(up[0], &b);
	}
	uint64_t t0 = rdtsc();
	for (long i = 0; i < rounds; i++) {
		full_write(down[1], &b);
		full_read(up[0], &b);
	}
	uint64_t t = rdtsc() - t0;
	close(down[1]);
	close(up[0]);
	reap(c, "the pipe child");
	report("linux.pipe_pingpong", t / rounds, "ticks");
}

/* The futex word of the ping-pong: 1 is the second thread's turn, 0 the
 * main thread's; each side waits while the word says the other's turn. */
static volatile int turn;
static long futex_rounds;

static void futex_wait_while(int value)
{
	while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) == value)
		if (syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, value, NULL) != 0 &&
		    errno != EAGAIN && errno != EINTR)
			fail("futex wait");
}

static void futex_hand(int value)
{
	__atomic_store_n(&turn, value, __ATOMIC_RELEASE);
	if (syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1) < 0)
		fail("futex wake");
}

static void *futex_partner(void *arg)
{
	(void)arg;
	for (long i = 0; i < futex_rounds; i++) {
		futex_wait_while(0);
		futex_hand(0);
	}
	return NULL;
}

static void bench_futex(long rounds)
{
	long warm = rounds / 10;
	pthread_t t;
	futex_rounds = warm + rounds;
	turn = 0;
	if ((errno = pthread_create(&t, NULL, futex_partner, NULL)) != 0)
		fail("pthread_create");
	for (long i = 0; i < warm; i++) {
		futex_hand(1);
		futex_wait_while(1);
	}
	uint64_t t0 = rdtsc();
	for (long i = 0; i < rounds; i++) {
		futex_hand(1);
		futex_wait_while(1);
	}
	uint64_t ticks = rdtsc() - t0;
	if ((errno = pthread_join(t, NULL)) != 0)
		fail("pthread_join");
	report("linux.futex_pingpong", ticks / rounds, "ticks");
}

static void *nothing(void *arg)
{
	return arg;
}

static void create_join(void)
{
	pthread_t t;
	void *back = NULL;
	if ((errno = pthread_create(&t, NULL, nothing, buf)) != 0)
		fail("pthread_create");
	if ((errno = pthread_join(t, &back)) != 0)
		fail("pthread_join");
	if (back != buf)
		fail_msg("a joined thread returned another value");
}

static void bench_threads(long rounds)
{
	for (long i = 0; i < rounds / 10; i++)
		create_join();
	uint64_t t0 = rdtsc();
	for (long i = 0; i < rounds; i++)
		create_join();
	report("linux.thread_create_join", (rdtsc() - t0) / rounds, "ticks");
}

/* One epoll_wait of `ep`, which must report its one ready eventfd. */
static void epoll_one(int ep)
{
	struct epoll_event got;
	if (epoll_wait(ep, &got, 1, 0) != 1 || got.data.u64 != 7 || !(got.events & EPOLLIN))
		fail("epoll_wait of a ready eventfd");
}

static void bench_epoll(long rounds)
{
	int efd = eventfd(1, EFD_CLOEXEC);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (efd < 0 || ep < 0)
		fail("eventfd or epoll_create1");
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) != 0)
		fail("epoll_ctl");
	for (long i = 0; i < rounds / 10; i++)
		epoll_one(ep);
	uint64_t t0 = rdtsc();
	for (long i = 0; i < rounds; i++)
		epoll_one(ep);
	report("linux.epoll_wait_ready", (rdtsc() - t0) / rounds, "ticks");
	close(ep);
	close(efd);
}

static void run_true(void)
{
	fflush(stdout);
	pid_t c = fork();
	if (c < 0)
		fail("fork");
	if (c == 0) {
		char *argv[] = {"true", NULL};
		char *envp[] = {NULL};
		execve("/bin/true", argv, envp);
		printf("bench: FAILED: execve /bin/true: %s\n", strerror(errno));
		_exit(127);
	}
	reap(c, "/bin/true");
}

static void bench_fork_exec(long rounds)
{
	/* Warm: the program's pages are read and kept by then. */
	for (int i = 0; i < 2; i++)
		run_true();
	uint64_t t0 = rdtsc();
	for (long i = 0; i < rounds; i++)
		run_true();
	report("linux.fork_exec_wait", (rdtsc() - t0) / rounds, "ticks");
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		fail("clock_gettime");
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whether buf[..n] holds the pattern from `at` on (a multiple of 8):
 * word by word, as the pattern is made. */
static void check_chunk(const char *path, uint64_t at, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t want = mix(SEED ^ mix((at + i) / 8));
		uint64_t got = 0;
		size_t len = n - i < 8 ? n - i : 8;
		memcpy(&got, buf + i, len);
		if (len < 8)
			want &= (1ull << (8 * len)) - 1;
		if (got != want) {
			printf("bench: FAILED: %s: the 8 bytes at %llu differ from the pattern\n", path,
			       (unsigned long long)(at + i));
			exit(1);
		}
	}
}

/* Reads `path` whole in CHUNK reads, checking each chunk if `check`; its bytes. */
static uint64_t read_file(const char *path, int check)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		fail(path);
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read(fd, buf, CHUNK);
		if (n < 0)
			fail("read");
		if (check)
			check_chunk(path, total, (size_t)n);
		total += (uint64_t)n;
		if (n < CHUNK)
			break;
	}
	if (close(fd) != 0)
		fail("close");
	return total;
}

static void bench_read(const char *path)
{
	uint64_t t0 = now_ns();
	uint64_t got = read_file(path, 0);
	uint64_t ns = now_ns() - t0;
	struct stat st;
	if (stat(path, &st) != 0)
		fail(path);
	if (got != (uint64_t)st.st_size || got == 0) {
		printf("bench: FAILED: %s: read %llu bytes of %llu\n", path, (unsigned long long)got,
		       (unsigned long long)st.st_size);
		exit(1);
	}
	if (ns == 0)
		ns = 1;
	report("linux.read_mib_per_sec", got * 1000000000u / ns / (1u << 20), "MiB/s");
	t0 = now_ns();
	if (read_file(path, 0) != got)
		fail_msg("the second read's length differs");
	ns = now_ns() - t0;
	if (read_file(path, 1) != got)
		fail_msg("the third read's length differs");
	if (ns == 0)
		ns = 1;
	report("linux.read_cached_mib_per_sec", got * 1000000000u / ns / (1u << 20), "MiB/s");
}

/* `path` with its last component replaced by `name`. */
static void beside(char *out, size_t len, const char *path, const char *name)
{
	const char *slash = strrchr(path, '/');
	int dir = slash ? (int)(slash - path) : 0;
	if (snprintf(out, len, "%.*s/%s", dir, slash ? path : ".", name) >= (int)len)
		fail_msg("path too long");
}

static void bench_write(const char *path, uint64_t bytes)
{
	char out[512];
	beside(out, sizeof out, path, "bench-write.bin");
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		fail(out);
	uint64_t t0 = now_ns();
	for (uint64_t at = 0; at < bytes; at += CHUNK) {
		for (size_t i = 0; i < CHUNK; i += 8) {
			uint64_t w = mix(SEED ^ mix((at + i) / 8));
			memcpy(buf + i, &w, 8);
		}
		if (write(fd, buf, CHUNK) != CHUNK)
			fail("write");
	}
	if (fsync(fd) != 0)
		fail("fsync");
	if (close(fd) != 0)
		fail("close");
	uint64_t ns = now_ns() - t0;
	if (read_file(out, 1) != bytes)
		fail_msg("the written file's length differs");
	if (unlink(out) != 0)
		fail("unlink");
	if (ns == 0)
		ns = 1;
	report("linux.write_fsync_mib_per_sec", bytes * 1000000000u / ns / (1u << 20), "MiB/s");
}

static void bench_files(const char *path, long files)
{
	char dir[512], name[600];
	beside(dir, sizeof dir, path, "bench-files");
	if (mkdir(dir, 0755) != 0)
		fail(dir);
	uint64_t t0 = rdtsc();
	for (long i = 0; i < files; i++) {
		snprintf(name, sizeof name, "%s/f%ld", dir, i);
		int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			fail(name);
		if (close(fd) != 0)
			fail("close");
	}
	for (long i = 0; i < files; i++) {
		struct stat st;
		snprintf(name, sizeof name, "%s/f%ld", dir, i);
		if (stat(name, &st) != 0)
			fail(name);
		if (st.st_size != 0 || !S_ISREG(st.st_mode))
			fail_msg("a new file is not an empty regular file");
	}
	for (long i = 0; i < files; i++) {
		snprintf(name, sizeof name, "%s/f%ld", dir, i);
		if (unlink(name) != 0)
			fail(name);
	}
	uint64_t t = rdtsc() - t0;
	if (rmdir(dir) != 0)
		fail("rmdir (is every file gone?)");
	report("linux.create_stat_unlink", t / (uint64_t)files, "ticks");
}

int main(int argc, char **argv)
{
	if (argc < 2 || (argc == 3 && strcmp(argv[2], "quick") != 0) || argc > 3) {
		printf("usage: bench FILE [quick]\n");
		return 2;
	}
	report("linux.boot_ticks", rdtsc(), "ticks");
	int quick = argc == 3;
	/* The deterministic figures first: the read's disk I/O runs outside
	 * QEMU's instruction count. */
	bench_getpid(quick ? 1000 : 10000);
	bench_pipe(quick ? 100 : 1000);
	bench_fork_exec(quick ? 5 : 20);
	bench_epoll(quick ? 1000 : 10000);
	bench_futex(quick ? 100 : 1000);
	bench_threads(quick ? 20 : 200);
	bench_read(argv[1]);
	bench_write(argv[1], quick ? (1u << 20) : (16u << 20));
	bench_files(argv[1], quick ? 100 : 1000);
	printf("bench: ok\n");
	return 0;
}
