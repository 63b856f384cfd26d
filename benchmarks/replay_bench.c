#define _GNU_SOURCE
/* replay_bench: many memory-management calls of the kinds allocators make (mmap, mprotect
 * guards, madvise, mremap moves, munmap), in one thread, touching a page now and then; a
 * ring of 64 live allocations keeps the process at a few hundred VMAs. */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5000;
    long page = sysconf(_SC_PAGESIZE);
    char *keep[64][2] = {{0}};
    for (int i = 0; i < rounds; i++) {
        char *p = mmap(NULL, 8 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (i % 4 == 0)
            p[0] = 1;
        mprotect(p + 7 * page, page, PROT_NONE);
        madvise(p, 4 * page, MADV_DONTNEED);
        char *q = mremap(p, 4 * page, 6 * page, MREMAP_MAYMOVE);
        int k = i % 64;
        if (keep[k][0]) {
            munmap(keep[k][0], 8 * page);
            munmap(keep[k][1], 6 * page);
        }
        keep[k][0] = p;
        keep[k][1] = q;
    }
    return 0;
}
