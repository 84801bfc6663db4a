package io.jblock.cli.io;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.Choice;
import io.jblock.block.NodeInfo;
import io.jblock.block.Prealloc;
import io.jblock.options.DriverRegistry;

import java.util.List;

/** Commands on the image as a whole: flush, aio_flush, truncate, length, info, discard, alloc, map. */
final class ImageCommands {
    private ImageCommands() {
    }

    static int flush(IoSession s, String[] argv) {
        s.drainAio();
        try {
            s.drive.flush();
            return 0;
        } catch (BlockException e) {
            // qemu-io 7.2 reports a failed flush only through its exit status.
            return -1;
        }
    }

    static int aioFlush(IoSession s, String[] argv) {
        s.drainAio();
        return 0;
    }

    static int truncate(IoSession s, String[] argv) {
        IoCommand self = s.commands.get("truncate");
        Prealloc prealloc = Prealloc.OFF;
        Args a = new Args(s, argv, "m:");
        for (int c; (c = a.next()) != -1; ) {
            if (c == 'm') {
                String mode = a.optarg();
                Prealloc p = Choice.parse(Prealloc.class, mode).orElse(null);
                if (p == null) {
                    s.error("Invalid preallocation mode '" + mode + "'");
                    return -1;
                }
                prealloc = p;
            } else {
                return self.usage(s);
            }
        }
        List<String> ops = a.operands();
        if (ops.isEmpty()) {
            // qemu-io 7.2 crashes here (it parses a NULL argument); jblock prints the usage instead.
            return self.usage(s);
        }
        Long length = Args.size(s, ops.get(0));
        if (length == null) {
            return -1;
        }
        s.drainAio();
        try {
            s.drive.truncate(length, false, prealloc);
            return 0;
        } catch (BlockException e) {
            s.error(e.getMessage());
            return -1;
        }
    }

    static int length(IoSession s, String[] argv) {
        try {
            s.out.print(IoText.cvtstr(s.drive.length()) + "\n");
            return 0;
        } catch (BlockException e) {
            s.out.print("getlength: " + IoSession.strerror(e) + "\n");
            return -1;
        }
    }

    static int info(IoSession s, String[] argv) {
        BlockNode root = s.drive.root();
        // QEMU prints the driver's format name, and then its protocol name if it is a protocol.
        s.out.print("format name: " + root.driverName() + "\n");
        boolean protocol = DriverRegistry.standard().find(root.driverName()).map(d -> d.isProtocol())
                .orElse(false);
        if (protocol) {
            s.out.print("format name: " + root.driverName() + "\n");
        }
        NodeInfo info;
        try {
            info = root.info();
        } catch (BlockException e) {
            return -1;
        }
        s.out.print("cluster size: " + IoText.cvtstr(info.clusterSize()) + "\n");
        s.out.print("vm state offset: " + IoText.cvtstr(info.vmStateOffset()) + "\n");
        return 0;
    }

    static int discard(IoSession s, String[] argv) {
        IoCommand self = s.commands.get("discard");
        boolean machine = false, quiet = false;
        Args a = new Args(s, argv, "Cq");
        for (int c; (c = a.next()) != -1; ) {
            switch (c) {
                case 'C' -> machine = true;
                case 'q' -> quiet = true;
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
        long bytes = range.length();
        s.drainAio();
        long t1 = System.nanoTime();
        try {
            s.drive.discard(offset, bytes);
        } catch (BlockException e) {
            s.out.print("discard failed: " + IoSession.strerror(e) + "\n");
            return -1;
        }
        long t = System.nanoTime() - t1;
        if (!quiet) {
            IoText.report(s.out, "discard", t, offset, bytes, bytes, 1, machine);
        }
        return 0;
    }

    static int alloc(IoSession s, String[] argv) {
        Long start = Args.size(s, argv[1]);
        if (start == null) {
            return -1;
        }
        long count = 512;
        if (argv.length == 3) {
            Long c = Args.size(s, argv[2]);
            if (c == null) {
                return -1;
            }
            count = c;
        }
        long offset = start;
        long remaining = count;
        long allocatedSum = 0;
        while (remaining > 0) {
            Run r;
            try {
                r = isAllocated(s, offset, remaining);
            } catch (BlockException e) {
                s.out.print("is_allocated failed: " + IoSession.strerror(e) + "\n");
                return -1;
            }
            offset += r.length;
            remaining -= r.length;
            if (r.allocated) {
                allocatedSum += r.length;
            }
            if (r.length == 0) {
                // Past the end: the count shrinks to what the image has.
                count -= remaining;
                remaining = 0;
            }
        }
        s.out.print(allocatedSum + "/" + count + " bytes allocated at offset " + IoText.cvtstr(start) + "\n");
        return 0;
    }

    static int map(IoSession s, String[] argv) {
        long bytes;
        try {
            bytes = s.drive.length();
        } catch (BlockException e) {
            s.error("Failed to query image length: " + IoSession.strerror(e));
            return -1;
        }
        long offset = 0;
        while (bytes > 0) {
            Run r;
            try {
                r = mergedRun(s, offset, bytes);
            } catch (BlockException e) {
                s.error("Failed to get allocation status: " + IoSession.strerror(e));
                return -1;
            }
            if (r.length == 0) {
                s.error("Unexpected end of image");
                return -1;
            }
            s.out.print(IoText.cvtstr(r.length) + " (0x" + Long.toHexString(r.length) + ") bytes "
                    + (r.allocated ? "    allocated" : "not allocated") + " at offset " + IoText.cvtstr(offset)
                    + " (0x" + Long.toHexString(offset) + ")\n");
            offset += r.length;
            bytes -= r.length;
        }
        return 0;
    }

    private record Run(long length, boolean allocated) {
    }

    /** The longest run of one allocation state from {@code offset}, asking at most a request's worth at a time. */
    private static Run mergedRun(IoSession s, long offset, long bytes) throws BlockException {
        Run first = isAllocated(s, offset, Math.min(bytes, Args.MAX_REQUEST));
        long total = first.length;
        long pos = offset + first.length;
        long left = bytes - first.length;
        while (left > 0) {
            Run next = isAllocated(s, pos, Math.min(left, Args.MAX_REQUEST));
            if (next.allocated != first.allocated || next.length == 0) {
                break;
            }
            total += next.length;
            pos += next.length;
            left -= next.length;
        }
        return new Run(total, first.allocated);
    }

    /**
     * QEMU's bdrv_is_allocated on the top node: bytes the node holds, reads
     * as data, or knows to be zero count as allocated; a length of 0 past the
     * end. What a backing file decides (depth 2 and more, as under {@code -s})
     * is not allocated in the top node, even though it reads as data.
     */
    private static Run isAllocated(IoSession s, long offset, long bytes) throws BlockException {
        long size = s.drive.length();
        if (offset >= size || bytes == 0) {
            return new Run(0, false);
        }
        BlockStatus st = s.drive.blockStatus(offset, Math.min(bytes, size - offset));
        return new Run(st.length(), st.isAllocated() || (st.depth() == 1 && (st.isData() || st.isZero())));
    }
}
