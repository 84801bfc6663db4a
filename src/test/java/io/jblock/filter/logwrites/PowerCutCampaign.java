package io.jblock.filter.logwrites;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.CacheMode;
import io.jblock.block.DiscardMode;
import io.jblock.block.Drive;
import io.jblock.block.NodeOptions;
import io.jblock.block.WriteFlags;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.options.GraphOpener;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.channels.FileChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A power-cut campaign for one cache mode: a seeded workload runs through a
 * drive whose file sits under a logwrites filter; then the disk is rebuilt
 * from the log at every flush point and at random points between them, with
 * random subsets of the unflushed writes dropped ({@link LogReplay#plan}), and
 * each rebuilt image is checked against what the cache mode promised.
 *
 * <pre>
 *   Drive (cache=MODE) ─▶ raw ─▶ blklogwrites ─file─▶ disk.img
 *                                              └log──▶ disk.log
 * </pre>
 *
 * <h2>The promise</h2>
 * A write is promised at a cut after N log entries when the write's own
 * entry is among them and it was durable by itself (FUA: explicit, or every
 * write under writethrough and directsync), or when a flush acknowledged
 * after the write had its log position at or before N. At a cut, a sector
 * must then hold the data of the last promised request touching it, or of a
 * request after that one (which may or may not have reached the disk).
 * Sectors that a discard touched at or after that request are not checked
 * (a discard leaves them unspecified).
 *
 * <p>Each write fills every 512-byte sector it covers with 64 copies of
 * {@code (requestId << 32 | sector)}, so a sector says which request wrote it,
 * and a torn or mixed sector is seen as such. Zero writes leave zeroes (id 0).
 *
 * <p>Under unsafe, flushes never reach the log (the filter has no-flush), so
 * nothing is promised: the campaign reports what a cut loses instead, as
 * "writes lost": acknowledged writes whose data is gone.
 *
 * <p>The workload is a {@link Format}: raw now; a qcow2 workload plugs in by
 * opening the drive with format=qcow2 and reading the rebuilt image through
 * jblock's qcow2 (and checking it with {@code qemu-img check}).
 */
final class PowerCutCampaign {
    static final int SECTOR = 512;

    /** How the image under test is formatted and read back. */
    interface Format {
        /** The campaign's name for the workload (also the folder and file extension). */
        String name();

        /** The driver the drive opens the image with. */
        default String driver() {
            return name();
        }

        /**
         * The request id every sector reads as before the workload: 0 for zeroes, or the id of a pattern a
         * backing file or a snapshot holds ({@link #pattern}). Sectors no request touches are checked against it.
         */
        default long initialId() {
            return 0;
        }

        /**
         * Options the drive needs besides the image's own (key, value, ...): a backing file named relatively
         * must be given explicitly, since the format's file is the logwrites filter, which has no folder.
         */
        default List<String> extraOptions(Path folder) {
            return List.of();
        }

        /** Whether the workload also makes compressed writes (whole clusters never written before). */
        default boolean compressedWrites() {
            return false;
        }

        /** The unit compressed writes are made in. */
        default int clusterSize() {
            return 4096;
        }

        /** Creates the image the workload starts from. */
        void create(Path image, long size) throws IOException;

        /** The virtual disk of a rebuilt image file (raw: the file itself); {@code scratch} is a folder to use. */
        byte[] readDisk(byte[] file, Path scratch, long size) throws IOException;

        /** A consistency check of a rebuilt image file; empty when fine, else what is wrong (qcow2: qemu-img check). */
        default String check(byte[] file, Path scratch) throws IOException {
            return "";
        }
    }

    static final Format RAW = new Format() {
        @Override
        public String name() {
            return "raw";
        }

        @Override
        public void create(Path image, long size) throws IOException {
            try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
                f.setLength(size);
            }
        }

        @Override
        public byte[] readDisk(byte[] file, Path scratch, long size) {
            return file.length >= size ? file : java.util.Arrays.copyOf(file, (int) size);
        }
    };

    /** The campaign's size. */
    record Size(long imageBytes, int requests, int randomPoints, int dropsPerPoint) {
    }

    /** The figures of one mode. */
    record Figures(CacheMode mode, int logEntries, int flushPoints, int pointsTried, int imagesChecked,
                   int promisedWrites, long promisedLost, long ackedLost, List<String> violations) {
        String line() {
            return String.format("%-12s log entries %5d  flush points %4d  crash points %5d  images checked %6d"
                            + "  writes lost, summed over images: flushed or FUA %6d, acknowledged %6d",
                    mode.name().toLowerCase(java.util.Locale.ROOT), logEntries, flushPoints, pointsTried,
                    imagesChecked, promisedLost, ackedLost);
        }
    }

    private enum Kind { WRITE, ZERO, DISCARD, FLUSH }

    /** One request of the workload, and the log's length when it was acknowledged. */
    private record Request(int id, Kind kind, long offset, int length, boolean fua, long ackedAt) {
        long firstSector() {
            return offset / SECTOR;
        }

        long endSector() {
            return (offset + length) / SECTOR;
        }
    }

    private final Format format;
    private final Size size;
    private final long seed;
    private final Path dir;

    PowerCutCampaign(Format format, Size size, long seed, Path dir) {
        this.format = format;
        this.size = size;
        this.seed = seed;
        this.dir = dir;
    }

    Figures run(CacheMode mode) throws Exception {
        Path work = Files.createDirectories(dir.resolve(format.name()).resolve(mode.name().toLowerCase(java.util.Locale.ROOT)));
        Path base = work.resolve("base." + format.name());
        Path image = work.resolve("disk." + format.name());
        Path log = work.resolve("disk.log");
        format.create(base, size.imageBytes());
        Files.copy(base, image, StandardCopyOption.REPLACE_EXISTING);
        Files.deleteIfExists(log);
        Files.createFile(log);

        List<Request> requests = runWorkload(mode, image, log);
        WriteLog.Contents contents = WriteLog.read(log);
        List<Long> flushes = LogReplay.flushPoints(contents);
        int count = contents.entries().size();

        // Cut points: just after every flush, and random points (the start and the end included).
        Random random = new Random(seed ^ mode.ordinal());
        List<Long> points = new ArrayList<>();
        for (long f : flushes) {
            points.add(f + 1);
        }
        points.add(0L);
        points.add((long) count);
        for (int i = 0; i < size.randomPoints(); i++) {
            points.add((long) random.nextInt(count + 1));
        }

        boolean fuaByMode = !mode.options().writeback();
        int promised = (int) requests.stream().filter(r -> r.kind() == Kind.WRITE).count();
        long promisedLost = 0;
        long ackedLost = 0;
        int images = 0;
        List<String> violations = new ArrayList<>();
        int[][] touches = touches(requests, size.imageBytes() / SECTOR);
        points.sort(null);
        // The disk is rebuilt in memory, incrementally: "durable" holds every entry up to the last flush of
        // the current cut (none of those may be dropped), and each cut starts from a copy of it.
        int ss = contents.sectorSize();
        long fileSize = Files.size(base);
        for (LogEntry e : contents.entries()) {
            fileSize = Math.max(fileSize, (e.sector() + e.sectors()) * ss);
        }
        byte[] durable = java.util.Arrays.copyOf(Files.readAllBytes(base), Math.toIntExact(fileSize));
        int appliedUpTo = 0;
        try (FileChannel logData = FileChannel.open(log, StandardOpenOption.READ)) {
            for (long n : points) {
                for (int d = 0; d <= size.dropsPerPoint(); d++) {
                    Long dropSeed = d == 0 ? null : random.nextLong();
                    LogReplay.Plan plan = LogReplay.plan(contents, n, dropSeed);
                    while (appliedUpTo <= plan.lastFlush()) {
                        apply(logData, contents.entries().get(appliedUpTo++), ss, durable);
                    }
                    byte[] file = durable.clone();
                    for (LogEntry e : plan.applied()) {
                        if (e.index() >= appliedUpTo) {
                            apply(logData, e, ss, file);
                        }
                    }
                    images++;
                    String where = "cut " + n + " seed " + dropSeed;
                    String problem = format.check(file, work);
                    if (!problem.isEmpty()) {
                        violations.add(where + ": " + problem);
                    }
                    byte[] disk = format.readDisk(file, work, size.imageBytes());
                    long[] lost = verify(requests, touches, n, fuaByMode, disk, violations, where);
                    if (dropSeed == null) {
                        // A prefix of the log keeps every write in order, so what no request touched is as it
                        // was (a backing file's or a snapshot's data seen through copy-on-write included).
                        // With writes dropped it need not be: QEMU's qcow2 may write an L2 entry before the
                        // copy-on-write data it points to reached the disk (no flush orders them).
                        untouched(touches, disk, format.initialId(), violations, where);
                    }
                    promisedLost += lost[0];
                    ackedLost += lost[1];
                }
            }
        }
        return new Figures(mode, count, flushes.size(), points.size(), images, promised, promisedLost, ackedLost,
                violations);
    }

    /** Applies one log entry to an in-memory copy of the file: its data, or zeroes for a discard. */
    private static void apply(FileChannel logData, LogEntry e, int ss, byte[] file) throws IOException {
        if (e.isFlush() || e.isMark()) {
            return;
        }
        int at = Math.toIntExact(e.sector() * ss);
        int len = Math.toIntExact(e.sectors() * ss);
        if (e.isDiscard()) {
            java.util.Arrays.fill(file, at, at + len, (byte) 0);
            return;
        }
        ByteBuffer b = ByteBuffer.wrap(file, at, len);
        while (b.hasRemaining()) {
            if (logData.read(b, e.dataOffset() + (b.position() - at)) < 0) {
                throw new IOException("log truncated in entry " + e.index());
            }
        }
    }

    private List<Request> runWorkload(CacheMode mode, Path image, Path log) throws Exception {
        DriveConfig c = new DriveConfig();
        List<String> kv = new ArrayList<>(List.of("driver", format.driver(), "file.driver", "blklogwrites",
                "file.file.driver", "file", "file.file.filename", image.toString(),
                "file.log.driver", "file", "file.log.filename", log.toString(),
                // The superblock counts every entry at once: under unsafe no flush ever rewrites it.
                "file.log-super-update-interval", "1",
                // The log is the campaign's instrument, not the subject: plain buffered I/O in every mode.
                "file.log.cache.direct", "off"));
        kv.addAll(format.extraOptions(image.getParent()));
        c.options = NodeOptions.of(kv.toArray(String[]::new));
        c.cache = mode.options();
        c.discard = DiscardMode.UNMAP;
        Random random = new Random(seed);
        List<Request> done = new ArrayList<>();
        int blocks = (int) (size.imageBytes() / 4096);
        int cluster = format.clusterSize();
        java.util.BitSet touchedClusters = new java.util.BitSet();
        try (Drive drive = new DriveOpener(GraphOpener.standard()).open(c)) {
            LogWritesNode logNode = logNodeOf(drive.root());
            for (int id = 1; id <= size.requests(); id++) {
                int pick = random.nextInt(100);
                int len = 4096 * (1 + random.nextInt(8));
                long offset = 4096L * random.nextInt(blocks - len / 4096 + 1);
                Kind kind;
                boolean fua = false;
                if (pick < 12) {
                    kind = Kind.FLUSH;
                    drive.flush();
                } else if (pick < 17) {
                    kind = Kind.ZERO;
                    drive.writeZeroes(offset, len, random.nextBoolean() ? WriteFlags.MAY_UNMAP : 0);
                } else if (pick < 22) {
                    kind = Kind.DISCARD;
                    drive.discard(offset, len);
                } else if (pick < 27 && format.compressedWrites()
                        && !touchedClusters.get((int) (offset / cluster))) {
                    // A compressed write fills one whole cluster that nothing wrote before (QEMU refuses to
                    // compress over an allocated cluster).
                    kind = Kind.WRITE;
                    offset = offset / cluster * cluster;
                    len = cluster;
                    drive.write(offset, pattern(id, offset, len), WriteFlags.COMPRESSED);
                } else {
                    kind = Kind.WRITE;
                    fua = pick < 35;
                    drive.write(offset, pattern(id, offset, len), fua ? WriteFlags.FUA : WriteFlags.NONE);
                }
                if (kind != Kind.FLUSH) {
                    touchedClusters.set((int) (offset / cluster), (int) ((offset + len + cluster - 1) / cluster));
                }
                done.add(new Request(id, kind, offset, len, fua, logNode.entryCount()));
            }
        }
        return done;
    }

    private static LogWritesNode logNodeOf(BlockNode node) {
        while (node != null && !(node instanceof LogWritesNode)) {
            node = node.child("file");
        }
        if (node == null) {
            throw new IllegalStateException("no logwrites node in the graph");
        }
        return (LogWritesNode) node;
    }

    static ByteBuffer pattern(int id, long offset, int len) {
        ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
        for (int s = 0; s < len / SECTOR; s++) {
            long tag = ((long) id << 32) | ((offset / SECTOR + s) & 0xffffffffL);
            for (int i = 0; i < SECTOR / 8; i++) {
                b.putLong(tag);
            }
        }
        return b.flip();
    }

    /** Sectors no request touched must read as they did before the workload. */
    private static void untouched(int[][] touches, byte[] disk, long initialId, List<String> violations,
                                  String where) {
        for (int s = 0; s < touches.length; s++) {
            if (touches[s].length == 0 && idOf(disk, s) != initialId) {
                if (violations.size() < 20) {
                    violations.add(where + ": sector " + s + ", which no request touched, reads as request "
                            + idOf(disk, s) + " instead of " + initialId);
                }
                return;
            }
        }
    }

    /** The request id a sector holds: 0 for zeroes, -1 when torn or not a sector any request wrote. */
    private static long idOf(byte[] disk, long sector) {
        ByteBuffer b = ByteBuffer.wrap(disk, (int) (sector * SECTOR), SECTOR).order(ByteOrder.LITTLE_ENDIAN);
        long first = b.getLong();
        while (b.hasRemaining()) {
            if (b.getLong() != first) {
                return -1;
            }
        }
        if (first == 0) {
            return 0;
        }
        return (first & 0xffffffffL) == (sector & 0xffffffffL) ? first >>> 32 : -1;
    }

    /**
     * For each sector, the indexes of the requests (writes, zero writes, discards) that touched it, in order:
     * what a sector may hold after a cut is read from here.
     */
    private static int[][] touches(List<Request> requests, long sectors) {
        List<List<Integer>> lists = new ArrayList<>();
        for (long s = 0; s < sectors; s++) {
            lists.add(new ArrayList<>());
        }
        for (int i = 0; i < requests.size(); i++) {
            Request r = requests.get(i);
            if (r.kind() == Kind.FLUSH) {
                continue;
            }
            for (long s = r.firstSector(); s < r.endSector(); s++) {
                lists.get((int) s).add(i);
            }
        }
        int[][] out = new int[(int) sectors][];
        for (int s = 0; s < sectors; s++) {
            out[s] = lists.get(s).stream().mapToInt(Integer::intValue).toArray();
        }
        return out;
    }

    /**
     * Checks one rebuilt disk; returns {promised writes lost, acknowledged writes lost}. A lost write is one
     * whose sectors hold neither its data nor that of a later request.
     */
    private static long[] verify(List<Request> requests, int[][] touches, long cut, boolean fuaByMode, byte[] disk,
                                 List<String> violations, String where) {
        int lastFlushIndex = -1;
        for (int i = 0; i < requests.size(); i++) {
            Request r = requests.get(i);
            if (r.kind() == Kind.FLUSH && r.ackedAt() <= cut) {
                lastFlushIndex = i;
            }
        }
        long promisedLost = 0;
        long ackedLost = 0;
        for (int i = 0; i < requests.size(); i++) {
            Request w = requests.get(i);
            if (w.kind() != Kind.WRITE || w.ackedAt() > cut) {
                continue; // not acknowledged by the cut (or no data to look for)
            }
            boolean promised = i < lastFlushIndex || w.fua() || fuaByMode;
            boolean present = true;
            for (long s = w.firstSector(); s < w.endSector() && present; s++) {
                int[] t = touches[(int) s];
                long found = idOf(disk, s);
                boolean ok = found == w.id();
                boolean unspecified = false;
                for (int k = java.util.Arrays.binarySearch(t, i) + 1; k < t.length && !ok; k++) {
                    Request later = requests.get(t[k]);
                    switch (later.kind()) {
                        case WRITE -> ok = found == later.id();
                        case ZERO -> ok = found == 0;
                        case DISCARD -> unspecified = true;
                        default -> { }
                    }
                }
                present = ok || unspecified;
            }
            if (!present) {
                ackedLost++;
                if (promised) {
                    promisedLost++;
                    if (violations.size() < 20) {
                        violations.add(where + ": write " + w.id() + " at " + w.offset() + " (" + w.length()
                                + " bytes" + (w.fua() ? ", FUA" : "") + ", acknowledged at log entry " + w.ackedAt()
                                + ") is gone");
                    }
                }
            }
        }
        return new long[] {promisedLost, ackedLost};
    }
}
