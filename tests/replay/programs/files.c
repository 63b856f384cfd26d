/* File identity and file operations as the kernel sees them: two opens of one file never
 * merge, a dup'ed descriptor does; a 4 MiB file mapping placed by the filesystem
 * (thp_get_unmapped_area on ext4) and moved by mremap; memfd with ftruncate; F_DUPFD,
 * close_range; MREMAP_DONTUNMAP (the fifth argument); a fork child that exits. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long page = sysconf(_SC_PAGESIZE);
    const char *path = argc > 1 ? argv[1] : "/tmp/vmamodel-files.dat";
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 8 << 20) != 0)
        return 1;
    int again = open(path, O_RDWR);
    int dupped = fcntl(fd, F_DUPFD_CLOEXEC, 20);
    char *a = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    /* the same file through another open: stays a separate VMA */
    mmap(a + 2 * page, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, again,
         2 * page);
    /* through a dup of the first open: merges */
    char *b = mmap(NULL, 2 * page, PROT_READ, MAP_PRIVATE, fd, 0);
    munmap(b + page, page);
    mmap(b + page, page, PROT_READ, MAP_PRIVATE | MAP_FIXED, dupped, page);
    /* a big file mapping: placed by the filesystem, then grown and moved */
    char *big = mmap(NULL, 3 << 20, PROT_READ, MAP_PRIVATE, again, 0);
    mmap(big + (3 << 20), page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    big = mremap(big, 3 << 20, 6 << 20, MREMAP_MAYMOVE);
    /* memfd: shmem placement, size from ftruncate */
    int mfd = memfd_create("replay-test", MFD_CLOEXEC);
    ftruncate(mfd, 4 << 20);
    char *m = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    m[0] = 1;
    /* MREMAP_DONTUNMAP: the kernel reads the fifth argument */
    char *anon = mmap(NULL, 8 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    memset(anon, 7, 8 * page);
    char *target = mmap(NULL, 8 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mremap(anon, 8 * page, 8 * page, MREMAP_MAYMOVE | MREMAP_DONTUNMAP | MREMAP_FIXED, target);
    /* a fork child: another address space, but the fork changes this one (anon_vma chains) */
    pid_t child = fork();
    if (child == 0) {
        mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    mprotect(anon, 4 * page, PROT_READ);
    close_range(3, ~0U, 0);
    unlink(path);
    printf("%p %p %p %p\n", (void *)a, (void *)big, (void *)m, (void *)target);
    return 0;
}
