/* A call the model does not have yet: remap_file_pages on a shared mapping. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>

int main(void)
{
    char *p = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int done = remap_file_pages(p, 4096, 0, 1, 0);
    printf("%p %d\n", (void *)p, done);
    return 0;
}
