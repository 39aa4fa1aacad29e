/* OP_HOOK: a hook of the container namespace (createContainer,
 * startContainer), run by the init with oci_run_hook (hooks.c). */
#include "internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* args: kind, index, path, timeout, state head, state tail, argc, argv...,
 * envc (-1: the init's environment), env...  The state's pid is ours, as
 * the container sees it (runtime.md: "For hooks executed in the container
 * namespace, it is the pid as seen by the container"). */
void do_hook(struct init_ctx *c, struct step *s)
{
    const char *kind = s->args[0].str, *path = s->args[2].str;
    int index = (int)s->args[1].num, timeout = (int)s->args[3].num;
    uint32_t argc = (uint32_t)s->args[6].num;
    if (7 + (uint64_t)argc + 1 > s->argc)
        die_errno(c, EINVAL, "plan: bad hook step");
    int64_t envc = s->args[7 + argc].num;
    if ((envc >= 0 && 8 + (uint64_t)argc + (uint64_t)envc != s->argc)
        || (envc < 0 && 8 + (uint64_t)argc != s->argc))
        die_errno(c, EINVAL, "plan: bad hook step");
    char **argv = calloc(argc + 2, sizeof *argv);
    char **envp = envc >= 0 ? calloc((size_t)envc + 1, sizeof *envp) : NULL;
    if (!argv || (envc >= 0 && !envp))
        die(c, "%s hook: allocate", kind);
    for (uint32_t i = 0; i < argc; i++)
        argv[i] = (char *)s->args[7 + i].str;
    if (argc == 0)   /* like Go's exec.Cmd, which runc uses: argv = {path} */
        argv[0] = (char *)path;
    for (int64_t i = 0; i < envc; i++)
        envp[i] = (char *)s->args[8 + argc + i].str;
    const char *head = s->args[4].str, *tail = s->args[5].str;
    size_t len = strlen(head) + strlen(tail) + 24;
    char *state = malloc(len);
    if (!state)
        die(c, "%s hook: allocate", kind);
    int n = snprintf(state, len, "%s%d%s", head, (int)getpid(), tail);
    char out[256];
    int status;
    int r = oci_run_hook(path, argv, envp, state, (size_t)n, timeout, c->root_fd, out, sizeof out, &status);
    free(state);
    free(argv);
    free(envp);
    if (r == 0)
        return;
    if (r == OCI_HOOK_TIMEOUT)
        die_errno(c, 0, "error running %s hook #%d (%s): hook ran past specified timeout of %ds",
                  kind, index, path, timeout);
    if (r < 0)
        die_errno(c, -r, "error running %s hook #%d: exec %s", kind, index, path);
    if (WIFSIGNALED(status))
        die_errno(c, 0, "error running %s hook #%d (%s): signal: %s, output: %.200s", kind, index,
                  path, strsignal(WTERMSIG(status)), out);
    die_errno(c, 0, "error running %s hook #%d (%s): exit status %d, output: %.200s", kind, index,
              path, WEXITSTATUS(status), out);
}
