// sync_file_range (glibc, Linux): Swift's Glibc module does not export this GNU extension.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>

/// Starts writing a file range to the disk and returns without waiting. Not durability: an
/// fdatasync must still follow. The audit writer uses it so that a batch's data is on its way
/// while the checkpoint over it is being signed.
static inline int custos_start_writeback(int fd, long long offset, long long count) {
    return sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE);
}
