/* A multithreaded program that fragments its memory: malloc/free churn in several threads
 * (glibc arenas: mmap, mprotect growth, madvise trimming), pthread stacks with guard pages,
 * mprotect guards inside a mapping, mremap growth and moves, madvise(DONTNEED/DONTFORK).
 * Deterministic in what it asks for; the kernel decides the addresses. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS 400

static void *churn(void *arg)
{
    uintptr_t seed = (uintptr_t)arg * 2654435761u + 1;
    void *slots[64] = {0};
    for (int i = 0; i < ROUNDS; i++) {
        seed = seed * 1103515245 + 12345;
        int k = (seed >> 8) % 64;
        free(slots[k]);
        size_t size = 16 + (seed >> 12) % (i % 7 == 0 ? 300000 : 4000);
        slots[k] = malloc(size);
        memset(slots[k], 1, size < 64 ? size : 64);
    }
    for (int k = 0; k < 64; k++)
        free(slots[k]);
    return NULL;
}

int main(void)
{
    long page = sysconf(_SC_PAGESIZE);
    pthread_t threads[THREADS];
    for (long t = 0; t < THREADS; t++)
        pthread_create(&threads[t], NULL, churn, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);

    /* guard pages inside one anonymous mapping: 16 rw- runs split by PROT_NONE pages */
    char *area = mmap(NULL, 64 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    for (int i = 0; i < 64; i += 4) {
        area[i * page] = 1;
        mprotect(area + (i + 3) * page, page, PROT_NONE);
    }
    /* mremap: grow in place where possible, then force a move */
    char *grown = mremap(area + 60 * page, 3 * page, 8 * page, MREMAP_MAYMOVE);
    char *moved = mremap(grown, 8 * page, 16 * page, MREMAP_MAYMOVE | MREMAP_FIXED,
                         area - 256 * page);
    madvise(moved, 16 * page, MADV_DONTNEED);
    madvise(area, 8 * page, MADV_DONTFORK);
    char *big = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(big, 4 << 20, MADV_HUGEPAGE);
    munmap(big + (1 << 20), 1 << 20);
    printf("%p %p\n", (void *)moved, (void *)big);
    return 0;
}
