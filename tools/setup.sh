#!/bin/bash
# Set-up on a fresh Debian 12 machine, as root: system packages, .venv with
# ociruntime installed (C core built), the busybox rootfs of bundles/.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    build-essential python3-dev python3-venv libseccomp-dev  # the cffi-built C core
    libjson-c-dev                                            # the front end's exec -p (csrc/exec_json.c)
    busybox-static                                           # test rootfs
    iproute2 runc crun podman containerd criu                # reference runtimes, engines
    conmon catatonit netavark aardvark-dns containernetworking-plugins \
    slirp4netns uidmap fuse-overlayfs iptables               # podman offline (tests/test_podman.py)
    docker.io                                                # tests/test_docker.py (a private dockerd)
    strace procps util-linux time                            # test and benchmark tools
    qemu-system-x86 kmod                                     # the test VM (tests/vm/run)
)
missing=()
for p in "${packages[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
        missing+=("$p")
    fi
done
# Reruns skip apt's network round trip when nothing is missing.
if [ ${#missing[@]} -gt 0 ]; then
    # docker.io's postinst would start the host's default dockerd, which
    # makes docker0 and iptables rules: policy-rc.d's 101 tells invoke-rc.d
    # to start nothing. Ours only for the install (a container image may
    # ship its own, which stays).
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"
fi

# Debian's python, not a pyenv one that may come first on PATH: it starts
# several times faster, and the runtime's start-up time is measured.
if [ "$(readlink -f .venv/bin/python 2>/dev/null)" != "$(readlink -f /usr/bin/python3)" ]; then
    rm -rf .venv
    /usr/bin/python3 -m venv .venv
fi
# jsonschema and pyroute2 are the extras [validate] and [netdev], which the
# tests use; build (and wheel) for tests/test_package.py.
.venv/bin/pip install -q cffi jsonschema pyroute2 pytest hypothesis build wheel
# compat mode: a plain path in a .pth file, which bin/ociruntime-py reads
# without running site (the default mode installs an import hook).
.venv/bin/pip install -q -e . --config-settings editable_mode=compat
# Bytecode now: an editable install has none, and with
# PYTHONDONTWRITEBYTECODE=1 every call would compile the package again.
.venv/bin/python -m compileall -q ociruntime

bundles/make-rootfs.sh bundles/busybox/rootfs
