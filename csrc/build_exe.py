"""The C executables of ociruntime, built by setup.py's build_ext.

FRONT_END (csrc/frontend.c) is the `ociruntime` command: InstallScripts
puts it into the environment's bin/ beside the Python script.
PACKAGE_EXES are built into the package directory (beside _core), where
the Python side finds them.
"""
import os

from setuptools.command.build_ext import build_ext
from setuptools.command.install_scripts import install_scripts

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FRONT_END = "build/native/ociruntime"   # relative to setup.py
# The front end: state/start/kill/delete (frontend.c), exec (exec_fast.c),
# its process.json parsed with json-c (exec_json.c).
FRONT_END_SOURCES = ["frontend.c", "exec_fast.c", "exec_json.c"]
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"]

# name -> (sources in csrc/, libraries); built into the package directory.
PACKAGE_EXES = {
    # The container init (spawn.c): the runtime posix_spawns it with the
    # plan; it clones the init, which runs the plan (plan.c and the steps).
    "ociruntime-init": (["spawn.c", "plan.c", "sync.c", "mounts.c", "mount_attrs.c", "mount_fds.c", "process.c",
                         "process_attrs.c", "terminal.c", "seccomp.c", "keyring.c", "hooks.c",
                         "hook_step.c", "sealed_exe.c", "seccomp_cache.c"], ["seccomp"]),
}


class BuildExt(build_ext):
    """build_ext, then the executables with the same compiler."""

    def run(self):
        super().run()
        self._front_end()
        pkg_dir = os.path.dirname(self.get_ext_fullpath("ociruntime._core"))
        for name, (sources, libraries) in PACKAGE_EXES.items():
            # Stripped (-s): the runtime copies it into a sealed memfd for
            # every create and exec (core.py), and debug info would be
            # two thirds of what it copies.
            self._executable([os.path.join(HERE, s) for s in sources], libraries,
                             os.path.join(pkg_dir, name), ["-s"])

    def _front_end(self):
        """Linked statically where libc.a and libjson-c.a are there (Debian's
        libc6-dev and libjson-c-dev): every `state`, `start`, `kill`,
        `delete` and `exec` then starts without the dynamic loader, about
        0.3 ms of each ~1 ms call (issue 16).  It uses nothing of glibc that
        needs shared objects at run time (no NSS, no iconv, no dlopen).
        The cost: glibc's and json-c's fixes reach it by a rebuild (a
        reinstall), as for runc's static binary.  Elsewhere, dynamic."""
        from setuptools.errors import CompileError, LinkError
        sources = [os.path.join(HERE, s) for s in FRONT_END_SOURCES]
        target = os.path.join(ROOT, FRONT_END)
        try:
            self._executable(sources, ["json-c"], target, ["-static"])
        except (CompileError, LinkError):
            self._executable(sources, ["json-c"], target)

    def _executable(self, sources, libraries, target, link_args=()):
        # Relative source paths keep the objects inside build_temp.
        sources = [os.path.relpath(s) for s in sources]
        objects = self.compiler.compile(sources, output_dir=self.build_temp,
                                        include_dirs=[os.path.relpath(HERE)],
                                        extra_postargs=CFLAGS)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        self.compiler.link_executable(objects, os.path.basename(target),
                                      output_dir=os.path.dirname(target),
                                      libraries=libraries, extra_postargs=["-O2", *link_args])


class InstallScripts(install_scripts):
    """The scripts, then the front end as bin/ociruntime.  Not data_files:
    setuptools' editable install skips those, and scripts must be text."""

    def run(self):
        super().run()
        target = os.path.join(self.install_dir, "ociruntime")
        self.copy_file(os.path.join(ROOT, FRONT_END), target)
        self.outfiles.append(target)
        self._launcher_bytecode()

    def _launcher_bytecode(self):
        """bin/__pycache__/ociruntime-py.pyc, the launcher's bytecode that
        the front end runs (bin/ociruntime-py writes it when missing or
        stale).  Made here so that it is one of the installed files
        (RECORD) and `pip uninstall` removes it; pip's copy of the script
        is newer than this, so the first call rewrites it in place."""
        import py_compile
        src = os.path.join(self.install_dir, "ociruntime-py")
        pyc = os.path.join(self.install_dir, "__pycache__", "ociruntime-py.pyc")
        if not self.dry_run:
            py_compile.compile(src, cfile=pyc, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
        self.outfiles.append(pyc)
        # The module bundle (ociruntime/bundle.py) goes beside it.  Empty
        # here, which the launcher does not trust: the first call writes
        # it in place for the package where it was installed (the paths
        # and times it records are known only there), and it is recorded.
        bundle = os.path.join(self.install_dir, "__pycache__", "ociruntime.bundle")
        if not self.dry_run:
            with open(bundle, "wb"):
                pass
        self.outfiles.append(bundle)
