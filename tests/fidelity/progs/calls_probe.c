/* A real program that makes the calls of issue 13 where the kernel chooses the addresses,
 * for tests/fidelity/test_replay_probe.py. It re-executes itself without address
 * randomisation, then for each step prints "@@step NAME RESULT" (the return value, or
 * -errno) followed by its /proc/self/maps and smaps. It allocates nothing after start, so
 * its mappings change only by these calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif
#define P 4096UL

static char buf[1 << 20];

static void put(const char *s) { write(1, s, strlen(s)); }

static void dump(const char *path) {
	int fd = open(path, O_RDONLY);
	size_t used = 0;
	ssize_t n;
	while (fd >= 0 && (n = read(fd, buf + used, sizeof(buf) - used)) > 0)
		used += n;
	write(1, buf, used);
	close(fd);
}

static long step(const char *name, long result) {
	char line[128];
	snprintf(line, sizeof(line), "@@step %s %ld\n", name, result == -1 ? -errno : result);
	put(line);
	dump("/proc/self/maps");
	put("@@smaps\n");
	dump("/proc/self/smaps");
	return result;
}

static long ptr(void *p) { return p == MAP_FAILED ? -1 : (long)p; }

int main(int argc, char **argv) {
	if (argc < 2) {
		char *args[] = {argv[0], "run", NULL};
		personality(ADDR_NO_RANDOMIZE);
		execv("/proc/self/exe", args);
		return 5;
	}
	step("start", 0);
	long a = step("mmap", ptr(mmap(NULL, 3 * P, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
	step("madvise_mergeable", madvise((void *)(a + P), P, MADV_MERGEABLE));
	step("prctl_merge_any", prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0));
	step("mmap2", ptr(mmap(NULL, 2 * P, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
	unsigned long node0 = 1;
	step("mbind", syscall(SYS_mbind, a, P, 2 /* MPOL_BIND */, &node0, 64, 0));
	int shmid = shmget(IPC_PRIVATE, 3 * P, IPC_CREAT | 0600);
	long s = step("shmat", ptr(shmat(shmid, NULL, 0)));
	shmctl(shmid, IPC_RMID, NULL);
	int zero = open("/dev/zero", O_RDWR);
	step("zero_private", ptr(mmap(NULL, 4UL << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE,
				      zero, 0)));
	step("zero_shared", ptr(mmap(NULL, 2 * P, PROT_READ | PROT_WRITE, MAP_SHARED, zero, 0)));
	unsigned long ctx = 0;
	long r = syscall(SYS_io_setup, 1, &ctx);
	step("io_setup", r ? r : (long)ctx);
	int uffd = syscall(SYS_userfaultfd, 0);
	struct uffdio_api api = {.api = UFFD_API};
	ioctl(uffd, UFFDIO_API, &api);
	struct uffdio_register reg = {.range = {.start = a + 2 * P, .len = P},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};
	r = ioctl(uffd, UFFDIO_REGISTER, &reg);
	step("uffd_register", r ? r : (long)reg.ioctls);
	step("hugetlb", ptr(mmap(NULL, 2UL << 20, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE, -1, 0)));
	step("shmdt", shmdt((void *)s));
	step("io_destroy", syscall(SYS_io_destroy, ctx));
	close(uffd);
	step("uffd_close", 0);
	return 0;
}
