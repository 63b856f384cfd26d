/*
 * The placement runner: a tiny process whose address space changes only by the calls it is
 * asked to make, so that kernel-placed addresses can be compared with the model's.
 *
 * Usage: runner PERSONALITY STACK_LIMIT
 *   PERSONALITY  hex flags OR-ed into personality(2) before the process re-executes itself
 *                (0x0040000 = ADDR_NO_RANDOMIZE, 0x0200000 = ADDR_COMPAT_LAYOUT);
 *   STACK_LIMIT  RLIMIT_STACK soft limit in bytes for the re-executed image, "inf" for
 *                unlimited, "-" to keep the inherited one.
 * The layout (mmap_base, the legacy or top-down allocator) is chosen at exec time from the
 * personality and the stack limit, hence the re-exec.
 *
 * Protocol on stdin/stdout, little-endian, one request at a time:
 *   request:  u64 op, u64 args[6], u64 payload_len, then payload_len bytes;
 *   response: i64 result (a negative errno on failure), u64 payload_len, payload bytes.
 * Nothing here allocates memory after start: every buffer is static (in .bss, mapped at exec),
 * no stdio, and the binary is linked with -z now so no lazy binding runs later. The stack
 * stays far inside the pages the kernel mapped at exec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

enum {
	OP_EXIT = 0,
	OP_MMAP = 1,
	OP_MUNMAP = 2,
	OP_MREMAP = 3,
	OP_MPROTECT = 4,
	OP_MADVISE = 5,
	OP_READ_FILE = 6,
	OP_OPEN = 7,
	OP_MEMFD = 8,
	OP_FTRUNCATE = 9,
	OP_CLOSE = 10,
	OP_FSTAT = 11,
	OP_PERSONALITY = 12,
	OP_BRK = 13,
};

#define PAYLOAD_MAX (1u << 16)
#define OUT_MAX (8u << 20)

struct request {
	uint64_t op;
	uint64_t args[6];
	uint64_t payload_len;
};

static struct request req;
static char payload[PAYLOAD_MAX + 1];
static char out[OUT_MAX];

/* Move len bytes over stdin (reading) or stdout (writing), riding out short transfers. */
static int transfer(int writing, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = writing ? write(1, p, len) : read(0, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_exact(void *buf, size_t len)
{
	return transfer(0, buf, len);
}

static int write_exact(const void *buf, size_t len)
{
	return transfer(1, (void *)buf, len);
}

static int reply(int64_t result, const void *data, uint64_t len)
{
	if (write_exact(&result, sizeof(result)) || write_exact(&len, sizeof(len)))
		return -1;
	return len ? write_exact(data, len) : 0;
}

/* A raw syscall result: the value, or minus the errno. */
static int64_t raw(long result)
{
	return result == -1 ? -(int64_t)errno : (int64_t)result;
}

static int64_t read_file(uint64_t *len)
{
	int fd = open(payload, O_RDONLY | O_CLOEXEC);
	size_t used = 0;

	if (fd < 0)
		return -(int64_t)errno;
	for (;;) {
		ssize_t n = read(fd, out + used, OUT_MAX - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;

			close(fd);
			return -(int64_t)err;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used == OUT_MAX) {
			close(fd);
			return -(int64_t)EFBIG;
		}
	}
	close(fd);
	*len = used;
	return 0;
}

static int64_t file_identity(int fd, uint64_t *len)
{
	struct stat st;
	uint64_t fields[3];

	if (fstat(fd, &st))
		return -(int64_t)errno;
	fields[0] = major(st.st_dev);
	fields[1] = minor(st.st_dev);
	fields[2] = st.st_ino;
	memcpy(out, fields, sizeof(fields));
	*len = sizeof(fields);
	return 0;
}

static int64_t handle(uint64_t *len)
{
	const uint64_t *a = req.args;

	*len = 0;
	switch (req.op) {
	case OP_MMAP:
		return raw(syscall(SYS_mmap, a[0], a[1], a[2], a[3], a[4], a[5]));
	case OP_MUNMAP:
		return raw(syscall(SYS_munmap, a[0], a[1]));
	case OP_MREMAP:
		return raw(syscall(SYS_mremap, a[0], a[1], a[2], a[3], a[4]));
	case OP_MPROTECT:
		return raw(syscall(SYS_mprotect, a[0], a[1], a[2]));
	case OP_MADVISE:
		return raw(syscall(SYS_madvise, a[0], a[1], a[2]));
	case OP_READ_FILE:
		return read_file(len);
	case OP_OPEN:
		return raw(syscall(SYS_open, payload, a[0] | O_CLOEXEC, 0600));
	case OP_MEMFD:
		return raw(syscall(SYS_memfd_create, payload, a[0]));
	case OP_FTRUNCATE:
		return raw(syscall(SYS_ftruncate, a[0], a[1]));
	case OP_CLOSE:
		return raw(syscall(SYS_close, a[0]));
	case OP_FSTAT:
		return file_identity((int)a[0], len);
	case OP_PERSONALITY:
		return raw(syscall(SYS_personality, a[0]));
	case OP_BRK:
		/* The raw syscall answers with the break, old or new, and never fails. */
		return (int64_t)syscall(SYS_brk, a[0]);
	default:
		return -(int64_t)ENOSYS;
	}
}

static void serve(void)
{
	for (;;) {
		uint64_t len;
		int64_t result;

		if (read_exact(&req, sizeof(req)) || req.payload_len > PAYLOAD_MAX)
			return;
		if (read_exact(payload, req.payload_len))
			return;
		payload[req.payload_len] = 0;
		if (req.op == OP_EXIT) {
			reply(0, 0, 0);
			return;
		}
		result = handle(&len);
		if (reply(result, out, len))
			return;
	}
}

/* Set the personality and stack limit, then exec this binary again so they take effect. */
static void reexec(char **argv)
{
	unsigned long wanted = strtoul(argv[1], 0, 16);
	int current = personality(0xffffffff);
	struct rlimit rl;

	if (current < 0)
		_exit(120);
	if (strcmp(argv[2], "-") != 0) {
		if (getrlimit(RLIMIT_STACK, &rl))
			_exit(121);
		rl.rlim_cur = strcmp(argv[2], "inf") == 0 ? RLIM_INFINITY : strtoull(argv[2], 0, 10);
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
			rl.rlim_max = rl.rlim_cur;
		if (setrlimit(RLIMIT_STACK, &rl))
			_exit(122);
	}
	if (personality((unsigned long)current | wanted) < 0)
		_exit(123);
	argv[3] = "serve";
	execv("/proc/self/exe", argv);
	_exit(124);
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[3], "serve") == 0) {
		serve();
		return 0;
	}
	if (argc != 4)
		return 2;
	reexec(argv);
	return 3;
}
