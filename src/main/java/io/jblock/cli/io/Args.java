package io.jblock.cli.io;

import io.jblock.cli.Getopt;

import java.util.List;

/**
 * Parsing a command's words as qemu-io does: getopt over the words (with
 * the command name as argv[0] in its messages), sizes through cvtnum with
 * qemu-io's messages, pattern bytes through strtol.
 */
final class Args {
    /** qemu-io's largest single request: INT_MAX rounded down to a 512-byte sector (BDRV_REQUEST_MAX_BYTES). */
    static final long MAX_REQUEST = 2147483136L;

    private final IoSession session;
    private final Getopt getopt;

    Args(IoSession session, String[] argv, String optstring) {
        this.session = session;
        this.getopt = new Getopt(argv[0], java.util.Arrays.copyOfRange(argv, 1, argv.length), optstring,
                new Getopt.LongOpt[0], session.err);
    }

    /** The next option character, '?' for a bad one, -1 when done. */
    int next() {
        return getopt.next();
    }

    String optarg() {
        return getopt.optarg();
    }

    /** The operands, once {@link #next()} returned -1. */
    List<String> operands() {
        return getopt.operands();
    }

    /** A size, or null after printing qemu-io's parsing error. */
    static Long size(IoSession s, String arg) {
        try {
            return QemuNumbers.cvtnum(arg, s::warn);
        } catch (QemuNumbers.SizeException e) {
            if (e.kind == QemuNumbers.SizeError.TOO_LARGE) {
                s.out.print("Parsing error: argument too large -- " + arg + "\n");
            } else {
                s.out.print("Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- " + arg
                        + "\n");
            }
            return null;
        }
    }

    /** A byte to fill or verify with (decimal, 0x hex or 0 octal), or -1 after printing why not. */
    static int pattern(IoSession s, String arg) {
        Long v = QemuNumbers.strtol0(arg);
        if (v == null || v < 0 || v > 255) {
            s.out.print(arg + " is not a valid pattern byte\n");
            return -1;
        }
        return v.intValue();
    }

    /** qemu-io's check on offsets and lengths of VM state and compressed I/O. */
    static boolean sectorAligned(IoSession s, long value, String what) {
        if (value % 512 != 0) {
            s.out.print(value + " is not a sector-aligned value for '" + what + "'\n");
            return false;
        }
        return true;
    }

    /**
     * The lengths of a vectored request, summed; null after printing why
     * not (a bad number, one too large, or a total too large).
     */
    static long[] vector(IoSession s, List<String> args) {
        long[] sizes = new long[args.size()];
        long count = 0;
        for (int i = 0; i < sizes.length; i++) {
            String arg = args.get(i);
            Long len = size(s, arg);
            if (len == null) {
                return null;
            }
            if (len > MAX_REQUEST) {
                s.out.print("Argument '" + arg + "' exceeds maximum size " + MAX_REQUEST + "\n");
                return null;
            }
            if (count > MAX_REQUEST - len) {
                s.out.print("The total number of bytes exceed the maximum size " + MAX_REQUEST + "\n");
                return null;
            }
            sizes[i] = len;
            count += len;
        }
        return sizes;
    }

    /** The offset and total length of a vectored request, "OFFSET LEN [LEN...]". */
    record Range(long offset, int length) {
    }

    /** Parses "OFFSET LENGTH" with LENGTH at most {@link #MAX_REQUEST} (read, discard); null after printing why not. */
    static Range offsetAndLength(IoSession s, List<String> ops) {
        Long offset = size(s, ops.get(0));
        if (offset == null) {
            return null;
        }
        Long length = size(s, ops.get(1));
        if (length == null) {
            return null;
        }
        if (length > MAX_REQUEST) {
            s.out.print("length cannot exceed " + MAX_REQUEST + ", given " + ops.get(1) + "\n");
            return null;
        }
        return new Range(offset, (int) (long) length);
    }

    /** Parses "OFFSET LEN [LEN...]" (at least two operands); null after printing why not. */
    static Range vectored(IoSession s, List<String> ops) {
        Long offset = size(s, ops.get(0));
        if (offset == null) {
            return null;
        }
        long[] sizes = vector(s, ops.subList(1, ops.size()));
        if (sizes == null) {
            return null;
        }
        return new Range(offset, (int) sum(sizes));
    }

    static long sum(long[] sizes) {
        long n = 0;
        for (long v : sizes) {
            n += v;
        }
        return n;
    }
}
