package io.jblock.cli.io;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import io.jblock.block.WriteFlags;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/** write, writev and aio_write. */
final class WriteCommands {
    /** What qemu-io writes when no pattern is given. */
    private static final int DEFAULT_PATTERN = 0xcd;

    private WriteCommands() {
    }

    static int write(IoSession s, String[] argv) {
        IoCommand self = s.commands.get("write");
        boolean vmState = false, compressed = false, machine = false, quiet = false;
        boolean patternGiven = false, zeroes = false, fromFile = false;
        int flags = WriteFlags.NONE;
        int pattern = DEFAULT_PATTERN;
        String source = null;
        Args a = new Args(s, argv, "bcCfnpP:qs:uz");
        for (int c; (c = a.next()) != -1; ) {
            switch (c) {
                case 'b' -> vmState = true;
                case 'c' -> compressed = true;
                case 'C' -> machine = true;
                case 'f' -> flags |= WriteFlags.FUA;
                case 'n' -> flags |= WriteFlags.NO_FALLBACK;
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
                    fromFile = true;
                    source = a.optarg();
                }
                case 'u' -> flags |= WriteFlags.MAY_UNMAP;
                case 'z' -> zeroes = true;
                default -> {
                    return self.usage(s);
                }
            }
        }
        List<String> ops = a.operands();
        if (ops.size() != 2) {
            return self.usage(s);
        }
        if (vmState && zeroes) {
            s.out.print("-b and -z cannot be specified at the same time\n");
            return -1;
        }
        if (WriteFlags.has(flags, WriteFlags.FUA) && (vmState || compressed)) {
            s.out.print("-f and -b or -c cannot be specified at the same time\n");
            return -1;
        }
        if (WriteFlags.has(flags, WriteFlags.NO_FALLBACK) && !zeroes) {
            s.out.print("-n requires -z to be specified\n");
            return -1;
        }
        if (WriteFlags.has(flags, WriteFlags.MAY_UNMAP) && !zeroes) {
            s.out.print("-u requires -z to be specified\n");
            return -1;
        }
        if ((zeroes ? 1 : 0) + (patternGiven ? 1 : 0) + (fromFile ? 1 : 0) > 1) {
            s.out.print("Only one of -z, -P, and -s can be specified at the same time\n");
            return -1;
        }
        Long offset = Args.size(s, ops.get(0));
        if (offset == null) {
            return -1;
        }
        Long count = Args.size(s, ops.get(1));
        if (count == null) {
            return -1;
        }
        if (count > Args.MAX_REQUEST && !WriteFlags.has(flags, WriteFlags.NO_FALLBACK)) {
            // Only a zero-write that may not fall back to writing buffers can be larger.
            s.out.print("length cannot exceed " + Args.MAX_REQUEST + " without -n, given " + ops.get(1) + "\n");
            return -1;
        }
        if ((vmState || compressed)
                && (!Args.sectorAligned(s, offset, "offset") || !Args.sectorAligned(s, count, "count"))) {
            return -1;
        }
        byte[] buf = null;
        if (!zeroes) {
            buf = fromFile ? fromFile(s, source, count.intValue()) : filled(count.intValue(), pattern);
            if (buf == null) {
                return -1;
            }
        }
        s.drainAio();
        long t1 = System.nanoTime();
        try {
            if (vmState || compressed) {
                // jblock's formats have neither VM state nor compressed writes, as raw has neither in QEMU.
                throw new BlockException(Errno.ENOTSUP, vmState ? "VM state is not supported"
                        : "compressed writes are not supported");
            }
            if (zeroes) {
                s.drive.writeZeroes(offset, count, flags);
            } else {
                s.drive.write(offset, ByteBuffer.wrap(buf), flags);
            }
        } catch (BlockException e) {
            s.out.print("write failed: " + IoSession.strerror(e) + "\n");
            return -1;
        }
        long t = System.nanoTime() - t1;
        if (!quiet) {
            IoText.report(s.out, "wrote", t, offset, count, count, 1, machine);
        }
        return 0;
    }

    static int writev(IoSession s, String[] argv) {
        IoCommand self = s.commands.get("writev");
        boolean machine = false, quiet = false;
        int flags = WriteFlags.NONE;
        int pattern = DEFAULT_PATTERN;
        Args a = new Args(s, argv, "CfqP:");
        for (int c; (c = a.next()) != -1; ) {
            switch (c) {
                case 'C' -> machine = true;
                case 'f' -> flags |= WriteFlags.FUA;
                case 'q' -> quiet = true;
                case 'P' -> {
                    pattern = Args.pattern(s, a.optarg());
                    if (pattern < 0) {
                        return -1;
                    }
                }
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
        byte[] buf = filled(size, pattern);
        s.drainAio();
        long t1 = System.nanoTime();
        try {
            s.drive.write(offset, ByteBuffer.wrap(buf), flags);
        } catch (BlockException e) {
            s.out.print("writev failed: " + IoSession.strerror(e) + "\n");
            return -1;
        }
        long t = System.nanoTime() - t1;
        if (!quiet) {
            IoText.report(s.out, "wrote", t, offset, size, size, 1, machine);
        }
        return 0;
    }

    /**
     * Writes now and reports at the next point where qemu-io's main loop
     * runs. Counts as successful once submitted.
     *
     * <p>Deliberate difference: qemu-io 7.2 never starts the clock for
     * {@code aio_write -z}, so its time and rates are garbage there; jblock
     * reports the real time.
     */
    static int aioWrite(IoSession s, String[] argv) {
        IoCommand self = s.commands.get("aio_write");
        boolean machine = false, quiet = false, zeroes = false;
        int flags = WriteFlags.NONE;
        int pattern = DEFAULT_PATTERN;
        Args a = new Args(s, argv, "CfiqP:uz");
        for (int c; (c = a.next()) != -1; ) {
            switch (c) {
                case 'C' -> machine = true;
                case 'f' -> flags |= WriteFlags.FUA;
                case 'q' -> quiet = true;
                case 'u' -> flags |= WriteFlags.MAY_UNMAP;
                case 'P' -> {
                    // qemu-io 7.2 parses the pattern but never marks it given, so -z -P is accepted.
                    pattern = Args.pattern(s, a.optarg());
                    if (pattern < 0) {
                        return -1;
                    }
                }
                case 'i' -> {
                    s.out.print("injecting invalid write request\n");
                    return 0;
                }
                case 'z' -> zeroes = true;
                default -> {
                    return self.usage(s);
                }
            }
        }
        List<String> ops = a.operands();
        if (ops.size() < 2) {
            return self.usage(s);
        }
        if (zeroes && ops.size() != 2) {
            s.out.print("-z supports only a single length parameter\n");
            return -1;
        }
        if (WriteFlags.has(flags, WriteFlags.MAY_UNMAP) && !zeroes) {
            s.out.print("-u requires -z to be specified\n");
            return -1;
        }
        Long offset = Args.size(s, ops.get(0));
        if (offset == null) {
            return -1;
        }
        long size;
        byte[] buf = null;
        if (zeroes) {
            Long count = Args.size(s, ops.get(1));
            if (count == null) {
                return -1;
            }
            size = count;
        } else {
            long[] sizes = Args.vector(s, ops.subList(1, ops.size()));
            if (sizes == null) {
                return -1;
            }
            size = Args.sum(sizes);
            buf = filled((int) size, pattern);
        }
        boolean q = quiet, m = machine, z = zeroes;
        long n = size;
        int f = flags;
        byte[] data = buf;
        s.submitAio(() -> {
            long t1 = System.nanoTime();
            try {
                if (z) {
                    s.drive.writeZeroes(offset, n, f);
                } else {
                    s.drive.write(offset, ByteBuffer.wrap(data), f);
                }
            } catch (BlockException e) {
                s.completeLater(e instanceof BlockException.BadRequest,
                        () -> s.out.print("aio_write failed: " + IoSession.strerror(e) + "\n"));
                return;
            }
            long t = System.nanoTime() - t1;
            s.completeLater(false, () -> {
                if (!q) {
                    IoText.report(s.out, "wrote", t, offset, n, n, 1, m);
                }
            });
        });
        return 0;
    }

    static byte[] filled(int size, int pattern) {
        byte[] buf = new byte[size];
        Arrays.fill(buf, (byte) pattern);
        return buf;
    }

    /** {@code write -s FILE}: the file's first bytes, repeated to fill the length; null after printing why not. */
    private static byte[] fromFile(IoSession s, String name, int len) {
        byte[] buf = new byte[len];
        int n;
        try (InputStream in = Files.newInputStream(Path.of(name))) {
            n = in.readNBytes(buf, 0, len);
        } catch (NoSuchFileException e) {
            s.err.print(name + ": " + Errno.ENOENT.text() + "\n");
            return null;
        } catch (AccessDeniedException e) {
            s.err.print(name + ": " + Errno.EACCES.text() + "\n");
            return null;
        } catch (IOException e) {
            String why = Files.isDirectory(Path.of(name)) ? Errno.EISDIR.text() : Errno.EIO.text();
            s.err.print(name + ": " + why + "\n");
            return null;
        }
        if (n == 0) {
            s.err.print(name + ": file is empty\n");
            return null;
        }
        for (int i = n; i < len; i++) {
            buf[i] = buf[i - n];
        }
        return buf;
    }
}
