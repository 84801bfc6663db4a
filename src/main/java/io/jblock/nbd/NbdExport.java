package io.jblock.nbd;

import io.jblock.block.Drive;

/**
 * One export of a server: a name, a description, and the drive every
 * connection to it shares (so a FLUSH on any connection covers the writes
 * answered on all of them, which is what makes CAN_MULTI_CONN honest).
 *
 * @param name            the export name clients ask for ("" by default)
 * @param description     shown by NBD_INFO_DESCRIPTION, or null
 * @param drive           the shared drive
 * @param multiConn       advertise CAN_MULTI_CONN
 * @param allocationDepth offer the qemu:allocation-depth meta context
 */
public record NbdExport(String name, String description, Drive drive, boolean multiConn, boolean allocationDepth) {
}
