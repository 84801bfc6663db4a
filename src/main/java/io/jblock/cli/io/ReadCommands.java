package io.jblock.cli.io;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;

/** read, readv and aio_read. */
final class ReadCommands {
    /** qemu-io fills read buffers with this before reading, so bytes a read did not touch show. */
    private static final byte FILL = (byte) 0xab;

    private ReadCommands() {
    }

    static int read(IoSession s, String[] argv) {
        IoCommand self = s.commands.get("read");
        boolean machine = false, quiet = false, verbose = false, vmState = false;
        boolean patternGiven = false, startGiven = false, lengthGiven = false;
        int pattern = 0;
        long patternOffset = 0, patternCount = 0;
        Args a = new Args(s, argv, "bCl:pP:qs:v");
        for (int c; (c = a.next()) != -1; ) {
            switch (c) {
                case 'b' -> vmState = true;
                case 'C' -> machine = true;
                case 'l' -> {
                    lengthGiven = true;
                    Long v = Args.size(s, a.optarg());
                    if (v == null) {
                        return -1;
                    }
                    patternCount = v;
                }
                case 'p' -> { /* ignored, as in qemu-io, for old scripts */ }
                case 'P' -> {
                    patternGiven = true;
                    pattern = Args.pattern(s, a.optarg());
                    if (pattern < 0) {
                        return -1;
                    }
                }
                case 'q' -> quiet = true;
                case 's' -> {
                    startGiven = true;
                    Long v = Args.size(s, a.optarg());
                    if (v == null) {
                        return -1;
                    }
                    patternOffset = v;
                }
                case 'v' -> verbose = true;
                default -> {
                    return self.usage(s);
                }
            }
        }
        List<String> ops = a.operands();
        if (ops.size() != 2) {
            return self.usage(s);
        }
        Args.Range range = Args.offsetAndLength(s, ops);
        if (range == null) {
            return -1;
        }
        long offset = range.offset();
        long count = range.length();
        if (!patternGiven && (lengthGiven || startGiven)) {
            return self.usage(s);
        }
        if (!lengthGiven) {
            patternCount = count - patternOffset;
        }
        if (patternCount < 0 || patternCount + patternOffset > count) {
            s.out.print("pattern verification range exceeds end of read data\n");
            return -1;
        }
        if (vmState && (!Args.sectorAligned(s, offset, "offset") || !Args.sectorAligned(s, count, "count"))) {
            return -1;
        }
        byte[] buf = new byte[(int) count];
        Arrays.fill(buf, FILL);
        s.drainAio();
        long t1 = System.nanoTime();
        try {
            if (vmState) {
                // No jblock format stores VM state, as raw has none in QEMU.
                throw new BlockException(Errno.ENOTSUP, "VM state is not supported");
            }
            s.drive.read(offset, ByteBuffer.wrap(buf));
        } catch (BlockException e) {
            s.out.print("read failed: " + IoSession.strerror(e) + "\n");
            return -1;
        }
        long t = System.nanoTime() - t1;
        int ret = 0;
        if (patternGiven && !matches(buf, (int) patternOffset, (int) patternCount, pattern)) {
            s.out.print("Pattern verification failed at offset " + (offset + patternOffset) + ", " + patternCount
                    + " bytes\n");
            ret = -1;
        }
        if (quiet) {
            return ret;
        }
        if (verbose) {
            IoText.dump(s.out, buf, 0, offset, buf.length);
        }
        IoText.report(s.out, "read", t, offset, count, count, 1, machine);
        return ret;
    }

    static int readv(IoSession s, String[] argv) {
        IoCommand self = s.commands.get("readv");
        boolean machine = false, quiet = false, verbose = false, patternGiven = false;
        int pattern = 0;
        Args a = new Args(s, argv, "CP:qv");
        for (int c; (c = a.next()) != -1; ) {
            switch (c) {
                case 'C' -> machine = true;
                case 'P' -> {
                    patternGiven = true;
                    pattern = Args.pattern(s, a.optarg());
                    if (pattern < 0) {
                        return -1;
                    }
                }
                case 'q' -> quiet = true;
                case 'v' -> verbose = true;
                default -> {
                    return self.usage(s);
                }
            }
        }
        List<String> ops = a.operands();
        if (ops.size() < 2) {
            return self.usage(s);
        }
        Args.Range range = Args.vectored(s, ops);
        if (range == null) {
            return -1;
        }
        long offset = range.offset();
        int size = range.length();
        byte[] buf = new byte[size];
        Arrays.fill(buf, FILL);
        s.drainAio();
        long t1 = System.nanoTime();
        try {
            s.drive.read(offset, ByteBuffer.wrap(buf));
        } catch (BlockException e) {
            s.out.print("readv failed: " + IoSession.strerror(e) + "\n");
            return -1;
        }
        long t = System.nanoTime() - t1;
        int ret = 0;
        if (patternGiven && !matches(buf, 0, size, pattern)) {
            s.out.print("Pattern verification failed at offset " + offset + ", " + size + " bytes\n");
            ret = -1;
        }
        if (quiet) {
            return ret;
        }
        if (verbose) {
            IoText.dump(s.out, buf, 0, offset, size);
        }
        IoText.report(s.out, "read", t, offset, size, size, 1, machine);
        return ret;
    }

    /**
     * Reads now and reports at the next point where qemu-io's main loop runs.
     * Counts as successful once submitted, whatever the read then finds.
     */
    static int aioRead(IoSession s, String[] argv) {
        IoCommand self = s.commands.get("aio_read");
        boolean machine = false, quiet = false, verbose = false, patternGiven = false;
        int pattern = 0;
        Args a = new Args(s, argv, "CP:iqv");
        for (int c; (c = a.next()) != -1; ) {
            switch (c) {
                case 'C' -> machine = true;
                case 'P' -> {
                    patternGiven = true;
                    pattern = Args.pattern(s, a.optarg());
                    if (pattern < 0) {
                        return -1;
                    }
                }
                case 'i' -> {
                    // Only counted in the drive's statistics in QEMU; nothing is read.
                    s.out.print("injecting invalid read request\n");
                    return 0;
                }
                case 'q' -> quiet = true;
                case 'v' -> verbose = true;
                default -> {
                    return self.usage(s);
                }
            }
        }
        List<String> ops = a.operands();
        if (ops.size() < 2) {
            return self.usage(s);
        }
        Args.Range range = Args.vectored(s, ops);
        if (range == null) {
            return -1;
        }
        long offset = range.offset();
        int size = range.length();
        byte[] buf = new byte[size];
        Arrays.fill(buf, FILL);
        boolean check = patternGiven, q = quiet, v = verbose, m = machine;
        int p = pattern;
        s.submitAio(() -> {
            long t1 = System.nanoTime();
            try {
                s.drive.read(offset, ByteBuffer.wrap(buf));
            } catch (BlockException e) {
                s.completeLater(e instanceof BlockException.BadRequest,
                        () -> s.out.print("readv failed: " + IoSession.strerror(e) + "\n"));
                return;
            }
            long t = System.nanoTime() - t1;
            s.completeLater(false, () -> {
                if (check && !matches(buf, 0, size, p)) {
                    s.out.print("Pattern verification failed at offset " + offset + ", " + size + " bytes\n");
                }
                if (q) {
                    return;
                }
                if (v) {
                    IoText.dump(s.out, buf, 0, offset, size);
                }
                IoText.report(s.out, "read", t, offset, size, size, 1, m);
            });
        });
        return 0;
    }

    static boolean matches(byte[] buf, int from, int count, int pattern) {
        for (int i = from; i < from + count; i++) {
            if ((buf[i] & 0xff) != pattern) {
                return false;
            }
        }
        return true;
    }
}
