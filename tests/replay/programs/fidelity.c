/* The calls of the model's fidelity features a replay runs: KSM (prctl PR_SET/GET_MEMORY_MERGE,
 * MADV_UNMERGEABLE), mbind, set_mempolicy_home_node, io_setup/io_destroy, map_shadow_stack
 * (raw numbers: older headers lack some of them). */
#define _GNU_SOURCE
#include <linux/aio_abi.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void)
{
    syscall(SYS_prctl, 67, 1, 0, 0, 0);
    syscall(SYS_prctl, 68, 0, 0, 0, 0);
    char *p = mmap(NULL, 16 << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned long mask = 1;
    syscall(SYS_mbind, p + 4096, 4096, 2, &mask, 64, 0);
    syscall(450, p + 8192, 8192, 0, 0);
    aio_context_t ctx = 0;
    syscall(SYS_io_setup, 32, &ctx);
    syscall(SYS_io_destroy, ctx);
    syscall(453, 0, 1 << 16, 0);
    madvise(p, 4096, MADV_UNMERGEABLE);
    syscall(SYS_prctl, 67, 0, 0, 0, 0);
    return 0;
}
