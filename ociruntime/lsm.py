"""process.apparmorProfile, process.selinuxLabel and linux.mountLabel.

Where the LSM is enabled, the label is applied the way runc applies it: a
write to /proc/self/attr/... before the identity changes, taking effect at
exec (the C core's procfs writes cannot be redirected by mounts the
container controls, see csrc/process.c).

Where it is not enabled (this project's test hosts), we do what runc
does, which is to fail:
  apparmorProfile -> runc: "unable to apply apparmor profile: apparmor
                     failed to apply profile: write /proc/self/attr/exec:
                     invalid argument";
  selinuxLabel    -> runc: "selinux label is specified in config, but
                     selinux is disabled or not supported";
  mountLabel      -> runc: the tmpfs mounts fail with context=...: EINVAL.
We fail the same cases at `create`, before anything is made, with one line
naming the field.  Engines (podman, containerd) set none of them on a host
without the LSM.
"""
import os

from ociruntime.errors import ConfigError


def apparmor_enabled():
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y" and os.path.isdir("/sys/kernel/security/apparmor")
    except OSError:
        return False


def selinux_enabled():
    return os.path.exists("/sys/fs/selinux/enforce")


def check(cfg, source):
    """Refuse labels the host cannot apply (before anything is created)."""
    proc = cfg.get("process") or {}
    if proc.get("apparmorProfile") and not apparmor_enabled():
        raise ConfigError(f"{source}: $.process.apparmorProfile: AppArmor is not enabled on this host, "
                          f"so profile {proc['apparmorProfile']!r} cannot be applied")
    if proc.get("selinuxLabel") and not selinux_enabled():
        raise ConfigError(f"{source}: $.process.selinuxLabel: selinux label is specified in config, "
                          "but selinux is disabled or not supported")
    if (cfg.get("linux") or {}).get("mountLabel"):
        if not selinux_enabled():
            raise ConfigError(f"{source}: $.linux.mountLabel: selinux mount label is specified in config, "
                              "but selinux is disabled or not supported")
        raise ConfigError(f"{source}: $.linux.mountLabel: SELinux mount labels are not supported yet")


def plan_labels(plan, proc):
    """The process's labels, applied at exec.  check() ran before."""
    profile = proc.get("apparmorProfile")
    if profile:
        path = ("/proc/self/attr/apparmor/exec" if os.path.exists("/proc/self/attr/apparmor/exec")
                else "/proc/self/attr/exec")
        plan.add("WRITE_FILE", path, "exec " + profile)
    label = proc.get("selinuxLabel")
    if label:
        plan.add("WRITE_FILE", "/proc/self/attr/exec", label)
