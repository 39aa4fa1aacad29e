#!/bin/bash
# make-rootfs.sh DIR: build a minimal busybox root filesystem in DIR from
# Debian's busybox-static. Idempotent, offline, well under a second.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1

# Only the static build works inside an empty rootfs (no libc there); the
# "busybox" package installs a dynamic binary at the same path.
if [ "$(dpkg-query -W -f='${db:Status-Status}' busybox-static 2>/dev/null)" != installed ] \
    || [ ! -x /bin/busybox ]; then
    echo "$0: /bin/busybox from Debian's busybox-static is needed: apt-get install busybox-static" >&2
    exit 1
fi

mkdir -p "$dir"
cd "$dir"
mkdir -p bin sbin usr/bin usr/sbin proc sys dev root home/user etc var/run run tmp
chmod 1777 tmp
chmod 700 root

# Copy then rename, and only when changed: overwriting the binary in place
# fails with ETXTBSY while a container from this rootfs is running.
if ! cmp -s /bin/busybox bin/busybox; then
    cp /bin/busybox bin/.busybox.tmp
    chmod 755 bin/.busybox.tmp
    mv -f bin/.busybox.tmp bin/busybox
fi

# Relative links, so they resolve the same inside and outside the container.
# Existing links are kept: a fork per applet on every run would be slow.
cd bin
for applet in $(/bin/busybox --list); do
    # The list names busybox itself, which is the real binary.
    [ "$applet" = busybox ] || [ -L "$applet" ] || ln -sfn busybox "$applet"
done
cd ..

cat > etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
# tty (5) is the gid runc's example spec gives /dev/pts.
cat > etc/group <<'EOF'
root:x:0:
tty:x:5:
users:x:100:
user:x:1000:
nogroup:x:65534:
EOF
# The user owns their home when we can say so (only root may chown).
if [ "$(id -u)" = 0 ]; then
    chown 1000:1000 home/user
fi
