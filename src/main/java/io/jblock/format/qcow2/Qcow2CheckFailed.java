package io.jblock.format.qcow2;

import io.jblock.block.Errno;

/** The check cannot go on: QEMU's negative return from its check, with the errno qemu-img prints. */
final class Qcow2CheckFailed extends Exception {
    final Errno errno;

    Qcow2CheckFailed(Errno errno) {
        super(errno.text(), null, false, false);
        this.errno = errno;
    }
}
