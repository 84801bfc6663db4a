package io.jblock.format.qcow2;

import io.jblock.block.BlockDriver;
import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;
import io.jblock.block.ImageCreation;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.OpenContext;

import java.nio.ByteBuffer;
import java.util.List;

/**
 * {@code driver=qcow2} over a file child: opens an image, checking
 * its header the way QEMU 7.2's qcow2_do_open does, in its order:
 * the fixed header ({@link Qcow2Header}), the extensions and unknown
 * incompatible features, refcount width, compression type, encryption,
 * the table limits ({@link Qcow2Limits}), then the children it names.
 */
public final class Qcow2Driver implements BlockDriver {
    /** The largest version 3 header QEMU 7.2 knows (up to the compression type and its padding). */
    private static final int KNOWN_HEADER_BYTES = 112;

    /**
     * What an image may make jblock open on its own: {@code json:} backing
     * names, and backing files whose format the image does not record (which
     * QEMU probes). Both are off by default.
     */
    public record Policy(boolean allowJsonBacking, boolean probeBackingFormat) {
        public static final Policy STRICT = new Policy(false, false);
    }

    private final Policy policy;

    public Qcow2Driver() {
        this(Policy.STRICT);
    }

    public Qcow2Driver(Policy policy) {
        this.policy = policy;
    }

    @Override
    public String name() {
        return "qcow2";
    }

    @Override
    public boolean isProtocol() {
        return false;
    }

    /** Creates an image as QEMU's qcow2 driver does ({@link Qcow2Creator}). */
    @Override
    public void create(String filename, ImageCreation request) throws BlockException {
        Qcow2Creator.create(filename, request);
    }

    /** Autoclear features jblock keeps when it writes an image; any other is cleared, as the spec asks of a writer. */
    private static final long AUTOCLEAR_KEPT = Qcow2Header.AUTOCLEAR_DATA_FILE_RAW | Qcow2Header.AUTOCLEAR_BITMAPS;
    /** Header offset of the version 3 autoclear features. */
    private static final int HEADER_AUTOCLEAR = 88;

    @Override
    public BlockNode open(NodeSettings settings, NodeOptions options, OpenContext context) throws BlockException {
        BlockNode file = context.openChild("file", options, settings);
        if (file == null) {
            throw new BlockException(Errno.EINVAL, "A block device must be specified for \"file\"");
        }
        java.util.Set<Qcow2Refcounts.FreeReason> discards = discardPassthrough(options);
        BlockNode dataFile = null;
        BlockNode backing = null;
        try (AutoCloseable ignored = Qcow2Children.enter(file)) {
            long fileLength = file.length();
            Qcow2Header h = Qcow2Header.decode(readZeroPadded(file, fileLength, 0, KNOWN_HEADER_BYTES));
            ByteBuffer first = readZeroPadded(file, fileLength, 0, (int) h.clusterSize());
            Qcow2Extensions ext = Qcow2Extensions.decode(h, first);
            checkFeatures(h, ext);
            // qemu-img check opens with BDRV_O_CHECK: the snapshot table is then the check's to read (and
            // repair), a corrupt image may be opened read-write to be repaired, and a dirty one is not
            // repaired at open (the check does it).
            boolean checkMode = context.checkMode();
            Qcow2Limits.check(h, fileLength, checkMode);
            if (!settings.readOnly()) {
                checkWritable(h, ext, file, checkMode);
            }
            String backingName = Qcow2Children.backingName(h, first);
            long[] l1 = readL1(file, h);
            List<Qcow2Snapshots.Snapshot> snapshots = checkMode ? List.of() : Qcow2Snapshots.read(file, fileLength, h);
            if (!settings.readOnly() && h.isDirty() && !checkMode) {
                // QEMU's qcow2_do_open: a dirty image (lazy refcounts, not closed cleanly) opened for
                // writing is checked and repaired first; the check's lines go to stderr as QEMU's do.
                // A read-only open reads it as it is. The repair may move the refcount table and
                // clears the dirty bit, so everything read from the header is read again.
                Qcow2Check.repairDirty(file, h, ext, l1,
                        line -> System.err.println(line.replace(Qcow2Check.ERROR_REPORT, "")));
                fileLength = file.length();
                h = Qcow2Header.decode(readZeroPadded(file, fileLength, 0, KNOWN_HEADER_BYTES));
                first = readZeroPadded(file, fileLength, 0, (int) h.clusterSize());
                ext = Qcow2Extensions.decode(h, first);
                l1 = readL1(file, h);
                snapshots = Qcow2Snapshots.read(file, fileLength, h);
            }
            dataFile = Qcow2Children.openDataFile(h, ext, file, options, settings, context);
            backing = Qcow2Children.openBacking(backingName, ext.backingFormat(), file, options, settings,
                    context, policy);
            Qcow2Node node = new Qcow2Node(settings, h, ext, file, fileLength, l1, snapshots, dataFile, backing);
            node.setDiscardPassthrough(discards);
            return node;
        } catch (Exception e) {
            closeQuietly(backing);
            closeQuietly(dataFile);
            closeQuietly(file);
            if (e instanceof BlockException b) {
                throw b;
            }
            if (e instanceof RuntimeException re) {
                throw re;
            }
            throw new IllegalStateException("closing the chain guard cannot fail", e);
        }
    }

    /**
     * QEMU's pass-discard-request, pass-discard-snapshot and pass-discard-other:
     * whether clusters freed by a guest's discard, by snapshot changes, or
     * otherwise, are discarded in the file. Defaults as QEMU 7.2: snapshot on,
     * other off; jblock's guest discards follow discard= unless
     * pass-discard-request says otherwise.
     */
    private static java.util.Set<Qcow2Refcounts.FreeReason> discardPassthrough(NodeOptions options)
            throws BlockException {
        java.util.Set<Qcow2Refcounts.FreeReason> s = java.util.EnumSet.of(Qcow2Refcounts.FreeReason.ALWAYS);
        if (options.takeBool("pass-discard-request").orElse(true)) {
            s.add(Qcow2Refcounts.FreeReason.REQUEST);
        }
        if (options.takeBool("pass-discard-snapshot").orElse(true)) {
            s.add(Qcow2Refcounts.FreeReason.SNAPSHOT);
        }
        if (options.takeBool("pass-discard-other").orElse(false)) {
            s.add(Qcow2Refcounts.FreeReason.OTHER);
        }
        return s;
    }

    /**
     * What a read-write open refuses (QEMU's messages where QEMU refuses too),
     * and the header change it makes: autoclear bits jblock does not maintain
     * are cleared, as docs/interop/qcow2.txt asks of a writer that does not
     * know them.
     */
    private static void checkWritable(Qcow2Header h, Qcow2Extensions ext, BlockNode file, boolean checkMode)
            throws BlockException {
        if (h.isCorrupt() && !checkMode) {
            throw new BlockException(Errno.EACCES, "qcow2: Image is corrupt; cannot be opened read/write");
        }
        long unknownAutoclear = h.autoclearFeatures() & ~AUTOCLEAR_KEPT;
        if (h.version() >= 3 && unknownAutoclear != 0) {
            file.write(HEADER_AUTOCLEAR, ByteBuffer.allocate(8).putLong(0, h.autoclearFeatures() & AUTOCLEAR_KEPT), 0);
        }
    }

    /** QEMU's order after the fixed header: features, refcount width, compression, encryption. */
    private static void checkFeatures(Qcow2Header h, Qcow2Extensions ext) throws BlockException {
        long unknown = h.incompatibleFeatures() & ~Qcow2Header.INCOMPAT_KNOWN;
        if (unknown != 0) {
            throw new BlockException.Unsupported("Unsupported qcow2 feature(s): " + ext.describeIncompatible(unknown));
        }
        if (h.refcountOrder() > 6) {
            throw new BlockException.Corrupt("Reference count entry width too large; may not exceed 64 bits");
        }
        boolean compressionBit = (h.incompatibleFeatures() & Qcow2Header.INCOMPAT_COMPRESSION) != 0;
        switch (h.compressionType()) {
            case Qcow2Header.COMPRESSION_ZLIB -> {
                if (compressionBit) {
                    throw new BlockException.Corrupt(
                            "qcow2: Compression type incompatible feature bit must not be set");
                }
            }
            case Qcow2Header.COMPRESSION_ZSTD -> {
                if (!compressionBit) {
                    throw new BlockException.Corrupt("qcow2: Compression type incompatible feature bit must be set");
                }
            }
            default -> throw new BlockException.Unsupported("qcow2: unknown compression type: " + h.compressionType());
        }
        switch (h.cryptMethod()) {
            case Qcow2Header.CRYPT_NONE -> {
            }
            case Qcow2Header.CRYPT_AES, Qcow2Header.CRYPT_LUKS -> throw new BlockException.Unsupported(
                    "Encrypted qcow2 images (encryption method " + (h.cryptMethod() == 1 ? "aes" : "luks")
                            + ") are unsupported in jblock");
            default -> throw new BlockException.Unsupported("Unsupported encryption method " + h.cryptMethod());
        }
    }

    private static long[] readL1(BlockNode file, Qcow2Header h) throws BlockException {
        int n = h.l1Size();
        ByteBuffer b = ByteBuffer.allocate(n * 8);
        if (n > 0) {
            file.read(h.l1TableOffset(), b);
        }
        long[] l1 = new long[n];
        b.flip();
        b.asLongBuffer().get(l1);
        return l1;
    }

    /** {@code n} bytes at {@code offset}, zeroes past the end of the file (as QEMU's reads of a short header). */
    private static ByteBuffer readZeroPadded(BlockNode file, long fileLength, long offset, int n)
            throws BlockException {
        ByteBuffer b = ByteBuffer.allocate(n);
        long have = Math.max(0, Math.min(n, fileLength - offset));
        if (have > 0) {
            file.read(offset, b.limit((int) have));
        }
        return b.clear();
    }

    private static void closeQuietly(BlockNode n) {
        if (n != null) {
            try {
                n.close();
            } catch (BlockException ignored) {
                // The open already failed; its error is the one to report.
            }
        }
    }
}
