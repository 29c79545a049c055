#!/bin/sh
# Tier 6: the ATF/Kyua suite on a FreeBSD image under QEMU. These machines
# have no FreeBSD image, so without VM_IMAGE this fails with a clear message.
set -eu
if [ -z "${VM_IMAGE:-}" ] || [ ! -f "${VM_IMAGE}" ]; then
    echo "vm-test: no FreeBSD image: set VM_IMAGE=/path/to/FreeBSD-15.0-amd64.qcow2 (none is available on this machine)" >&2
    exit 2
fi
echo "vm-test: booting $VM_IMAGE is not implemented yet" >&2
exit 2
