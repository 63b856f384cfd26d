/* execve probe for tests/fidelity/test_execve.py.
 *
 * Stage 1 (no arguments, or "ksm"): optionally prctl(PR_SET_MEMORY_MERGE, 1), map and attach
 * things the exec must drop (an anonymous mapping, a SysV segment), turn address
 * randomisation off, then re-execute itself as stage 2.
 * Stage 2 ("stage2"): print its own /proc/self/maps and smaps, mmap three anonymous pages
 * where the kernel chooses, print the address, then maps and smaps again.
 * Sections are separated by lines "@@maps", "@@smaps", "@@addr". Stage 2 allocates nothing
 * between the dumps and the mmap, so its maps change only by that call.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <unistd.h>

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif

static char buf[1 << 20];

static void put(const char *s) { write(1, s, strlen(s)); }

static void dump(const char *tag, const char *path) {
	int fd = open(path, O_RDONLY);
	size_t used = 0;
	ssize_t n;
	put(tag);
	while (fd >= 0 && (n = read(fd, buf + used, sizeof(buf) - used)) > 0)
		used += n;
	write(1, buf, used);
	close(fd);
}

int main(int argc, char **argv) {
	if (argc > 1 && !strcmp(argv[1], "stage2")) {
		char line[64];
		void *p;
		dump("@@maps\n", "/proc/self/maps");
		dump("@@smaps\n", "/proc/self/smaps");
		p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		snprintf(line, sizeof(line), "@@addr\n%lx\n", (unsigned long)p);
		put(line);
		dump("@@maps\n", "/proc/self/maps");
		dump("@@smaps\n", "/proc/self/smaps");
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "ksm") && prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0))
		return 2;
	if (mmap((void *)0x100000000000UL, 8 * 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED)
		return 3;
	int shmid = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	if (shmid < 0 || shmat(shmid, (void *)0x100000100000UL, 0) == (void *)-1)
		return 4;
	shmctl(shmid, IPC_RMID, NULL);
	personality(ADDR_NO_RANDOMIZE);
	char *args[] = {argv[0], "stage2", NULL};
	execv("/proc/self/exe", args);
	return 5;
}
