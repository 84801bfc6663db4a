package io.jblock.nbd;

/**
 * Constants of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md), all
 * big-endian on the wire.
 *
 * <pre>
 * Handshake (fixed newstyle):
 *   S: 64 "NBDMAGIC"   64 "IHAVEOPT"   16 handshake flags (FIXED_NEWSTYLE | NO_ZEROES)
 *   C: 32 client flags
 *   C: 64 IHAVEOPT  32 option  32 length  [length bytes]          (repeated)
 *   S: 64 REPLY_MAGIC  32 option  32 reply type  32 length  [data]
 *
 * Request (28 bytes + payload for WRITE):
 *   +0  32 REQUEST_MAGIC 0x25609513
 *   +4  16 command flags
 *   +6  16 type
 *   +8  64 cookie (handle)
 *   +16 64 offset
 *   +24 32 length
 *
 * Simple reply (16 bytes + data for a successful READ):
 *   +0  32 SIMPLE_REPLY_MAGIC 0x67446698   +4 32 error   +8 64 cookie
 *
 * Structured reply chunk (20 bytes + payload):
 *   +0  32 STRUCTURED_REPLY_MAGIC 0x668e33ef
 *   +4  16 flags (DONE)   +6 16 chunk type   +8 64 cookie   +16 32 payload length
 * </pre>
 */
public final class Nbd {
    private Nbd() {
    }

    public static final long NBDMAGIC = 0x4e42444d41474943L;
    public static final long IHAVEOPT = 0x49484156454F5054L;
    public static final long OPTION_REPLY_MAGIC = 0x3e889045565a9L;
    public static final int REQUEST_MAGIC = 0x25609513;
    public static final int SIMPLE_REPLY_MAGIC = 0x67446698;
    public static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;

    // Handshake flags (server) and client flags.
    public static final int FLAG_FIXED_NEWSTYLE = 1;
    public static final int FLAG_NO_ZEROES = 1 << 1;
    public static final int FLAG_C_FIXED_NEWSTYLE = 1;
    public static final int FLAG_C_NO_ZEROES = 1 << 1;

    // Options.
    public static final int OPT_EXPORT_NAME = 1;
    public static final int OPT_ABORT = 2;
    public static final int OPT_LIST = 3;
    public static final int OPT_STARTTLS = 5;
    public static final int OPT_INFO = 6;
    public static final int OPT_GO = 7;
    public static final int OPT_STRUCTURED_REPLY = 8;
    public static final int OPT_LIST_META_CONTEXT = 9;
    public static final int OPT_SET_META_CONTEXT = 10;

    // Option reply types.
    public static final int REP_ACK = 1;
    public static final int REP_SERVER = 2;
    public static final int REP_INFO = 3;
    public static final int REP_META_CONTEXT = 4;
    public static final int REP_ERR_UNSUP = 0x80000001;
    public static final int REP_ERR_POLICY = 0x80000002;
    public static final int REP_ERR_INVALID = 0x80000003;
    public static final int REP_ERR_PLATFORM = 0x80000004;
    public static final int REP_ERR_TLS_REQD = 0x80000005;
    public static final int REP_ERR_UNKNOWN = 0x80000006;
    public static final int REP_ERR_SHUTDOWN = 0x80000007;
    public static final int REP_ERR_BLOCK_SIZE_REQD = 0x80000008;
    public static final int REP_ERR_TOO_BIG = 0x80000009;

    // NBD_OPT_INFO / GO information types.
    public static final int INFO_EXPORT = 0;
    public static final int INFO_NAME = 1;
    public static final int INFO_DESCRIPTION = 2;
    public static final int INFO_BLOCK_SIZE = 3;

    // Transmission flags.
    public static final int FLAG_HAS_FLAGS = 1;
    public static final int FLAG_READ_ONLY = 1 << 1;
    public static final int FLAG_SEND_FLUSH = 1 << 2;
    public static final int FLAG_SEND_FUA = 1 << 3;
    public static final int FLAG_ROTATIONAL = 1 << 4;
    public static final int FLAG_SEND_TRIM = 1 << 5;
    public static final int FLAG_SEND_WRITE_ZEROES = 1 << 6;
    public static final int FLAG_SEND_DF = 1 << 7;
    public static final int FLAG_CAN_MULTI_CONN = 1 << 8;
    public static final int FLAG_SEND_RESIZE = 1 << 9;
    public static final int FLAG_SEND_CACHE = 1 << 10;
    public static final int FLAG_SEND_FAST_ZERO = 1 << 11;

    // Commands.
    public static final int CMD_READ = 0;
    public static final int CMD_WRITE = 1;
    public static final int CMD_DISC = 2;
    public static final int CMD_FLUSH = 3;
    public static final int CMD_TRIM = 4;
    public static final int CMD_CACHE = 5;
    public static final int CMD_WRITE_ZEROES = 6;
    public static final int CMD_BLOCK_STATUS = 7;

    // Command flags.
    public static final int CMD_FLAG_FUA = 1;
    public static final int CMD_FLAG_NO_HOLE = 1 << 1;
    public static final int CMD_FLAG_DF = 1 << 2;
    public static final int CMD_FLAG_REQ_ONE = 1 << 3;
    public static final int CMD_FLAG_FAST_ZERO = 1 << 4;

    // Structured reply.
    public static final int REPLY_FLAG_DONE = 1;
    public static final int REPLY_TYPE_NONE = 0;
    public static final int REPLY_TYPE_OFFSET_DATA = 1;
    public static final int REPLY_TYPE_OFFSET_HOLE = 2;
    public static final int REPLY_TYPE_BLOCK_STATUS = 5;
    public static final int REPLY_TYPE_ERROR = (1 << 15) + 1;
    public static final int REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2;

    // Error values (errno numbers, as the spec fixes them).
    public static final int EPERM = 1;
    public static final int EIO = 5;
    public static final int ENOMEM = 12;
    public static final int EINVAL = 22;
    public static final int ENOSPC = 28;
    public static final int EOVERFLOW = 75;
    public static final int ENOTSUP = 95;
    public static final int ESHUTDOWN = 108;

    // base:allocation status flags.
    public static final int STATE_HOLE = 1;
    public static final int STATE_ZERO = 1 << 1;

    /** The largest READ or WRITE payload accepted, as qemu-nbd's NBD_MAX_BUFFER_SIZE. */
    public static final int MAX_PAYLOAD = 32 << 20;
    /** The largest option payload accepted during the handshake; longer ones are drained and refused. */
    public static final int MAX_OPTION_LENGTH = 64 << 10;
    /** The longest export name or meta context query, per the spec's string limit. */
    public static final int MAX_STRING = 4096;
    /** Requests in flight per connection before the reader waits (bounds memory: this many payloads). */
    public static final int MAX_IN_FLIGHT = 16;

    public static final String CONTEXT_BASE_ALLOCATION = "base:allocation";
    public static final String CONTEXT_ALLOCATION_DEPTH = "qemu:allocation-depth";

    /** The NBD error value for a block-layer errno; anything the spec lacks becomes EIO, as it requires. */
    public static int errorFor(io.jblock.block.Errno e) {
        return switch (e) {
            case EPERM, EROFS -> EPERM;
            case ENOMEM -> ENOMEM;
            case EINVAL -> EINVAL;
            case ENOSPC, EFBIG -> ENOSPC;
            case EOVERFLOW -> EOVERFLOW;
            case ENOTSUP -> ENOTSUP;
            case ESHUTDOWN -> ESHUTDOWN;
            default -> EIO;
        };
    }
}
