/* The `ociruntime` command: a small C front end for the Python CLI.
 *
 * Engines call the runtime several times per container, and a Python
 * start-up alone costs more than `runc state` in all.  So this program
 * answers the four commands that only look at (or end) a container that
 * create has set up -- state, start, kill, delete -- from a file Python
 * wrote for it at create (<root>/<id>/fast, see ociruntime/state.py), and
 * hands everything else to Python: bin/ociruntime-py, run by the python3
 * beside this program (the environment it was installed into).
 *
 * It never prints an error of its own: whenever a case is not the plain
 * one (no fast file, a hook to run, a container in the wrong state, an
 * unknown flag, any failure before a change was made), it execs Python
 * with the same arguments, which does the whole command and says what is
 * wrong.  OCIRUNTIME_NO_FAST=1 sends every call to Python (the tests
 * compare both).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* exec the Python CLI with our arguments; only returns on failure. */
static void run_python(int argc, char **argv)
{
    char self[PATH_MAX], py[PATH_MAX + 16], script[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        perror("ociruntime: readlink /proc/self/exe");
        exit(1);
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0';
    snprintf(script, sizeof script, "%s/ociruntime-py", self);
    snprintf(py, sizeof py, "%s/python3", self);
    if (access(py, X_OK) != 0)
        strcpy(py, "/usr/bin/python3");
    char **args = calloc((size_t)argc + 3, sizeof *args);
    if (!args) {
        perror("ociruntime");
        exit(1);
    }
    args[0] = py;
    args[1] = "-S";
    args[2] = script;
    for (int i = 1; i < argc; i++)
        args[i + 2] = argv[i];
    execv(py, args);
    fprintf(stderr, "ociruntime: cannot run %s %s: %s\n", py, script, strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    run_python(argc, argv);
    return 1;
}
