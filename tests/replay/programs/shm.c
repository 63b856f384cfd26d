/* SysV shared memory: shmget, shmat, shmctl(IPC_RMID) (the segment stays attached). */
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

int main(void)
{
    mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    void *at = shmat(id, NULL, 0);
    shmctl(id, IPC_RMID, NULL);
    printf("%p\n", at);
    return 0;
}
