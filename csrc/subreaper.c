/* For `run` (through cffi): become the subreaper of what we start, so that
 * an init whose parent (an intermediate) exited is still ours to wait for. */
#include "core.h"
#include <errno.h>
#include <sys/prctl.h>

int oci_set_child_subreaper(void)
{
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ? -errno : 0;
}
