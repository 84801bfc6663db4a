package io.jblock.nbd;

import java.util.List;

/**
 * What one connection negotiated in its handshake, fixed for the
 * transmission phase.
 *
 * @param export     the export chosen by NBD_OPT_GO or NBD_OPT_EXPORT_NAME
 * @param structured structured replies were negotiated
 * @param contexts   the meta contexts selected by NBD_OPT_SET_META_CONTEXT, by id
 */
record NbdSession(NbdExport export, boolean structured, List<MetaContext> contexts) {
    /** A meta context as the client knows it: the id we gave it and its name. */
    record MetaContext(int id, String name) {
    }

    /** The transmission flags this session's export advertises, as the negotiated features allow. */
    static int transmissionFlags(NbdExport e, boolean structured) {
        int f = Nbd.FLAG_HAS_FLAGS | Nbd.FLAG_SEND_FLUSH | Nbd.FLAG_SEND_FUA | Nbd.FLAG_SEND_CACHE;
        if (e.drive().isReadOnly()) {
            f |= Nbd.FLAG_READ_ONLY;
        } else {
            f |= Nbd.FLAG_SEND_TRIM | Nbd.FLAG_SEND_WRITE_ZEROES | Nbd.FLAG_SEND_FAST_ZERO;
        }
        if (structured) {
            f |= Nbd.FLAG_SEND_DF;
        }
        if (e.multiConn()) {
            f |= Nbd.FLAG_CAN_MULTI_CONN;
        }
        return f;
    }
}
