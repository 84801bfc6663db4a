package io.jblock.format.qcow2;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Errno;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Internal snapshots of a read-write qcow2 image, as QEMU 7.2's
 * qcow2-snapshot.c takes, applies and deletes them. Each step leaves a
 * consistent image (at worst leaked clusters) if the process dies after it:
 *
 * <ul>
 *   <li>create: copy the active L1 table to new clusters, add one reference
 *       to everything it reaches, then switch to a new snapshot table;</li>
 *   <li>apply: add one reference to everything the snapshot reaches, copy its
 *       L1 table over the active one, then drop one reference from what the
 *       old active table reached;</li>
 *   <li>delete: switch to a table without the entry, then drop one reference
 *       from everything it reached and free its L1 table.</li>
 * </ul>
 *
 * <p>A new snapshot table is always written to new clusters, its refcounts
 * and contents on disk before the header's two fields (count at 60, offset
 * at 64) switch in one write; only then is the old table freed. Unlike QEMU,
 * jblock writes the refcount blocks of the new table before the header
 * points at it, so a crash between the two never leaves a referenced
 * cluster with refcount 0.
 */
public final class Qcow2InternalSnapshots {
    /** One snapshot, as {@code qemu-img snapshot -l} and {@code info} show it. */
    public record Info(String id, String name, long vmStateSize, long dateSeconds, int dateNanos,
                       long vmClockNanos, long icount, long diskSize) {
    }

    /** QEMU's sizeof(sn->name) - 1: longer names are cut, as qemu-img's pstrcpy does. */
    static final int MAX_NAME_BYTES = 255;
    /** The extra data QEMU 7.2 writes: vm_state_size_large, disk_size, icount. */
    private static final int EXTRA = 24;
    /** Header offset of nb_snapshots (u32), followed by snapshots_offset (u64). */
    private static final int HEADER_SNAPSHOT_FIELDS = 60;

    private final Qcow2Node node;
    private final Qcow2Geometry g;
    private final BlockNode file;
    private final Qcow2ClusterMap map;
    private final Qcow2Refcounts refcounts;
    private final ReentrantLock meta;

    Qcow2InternalSnapshots(Qcow2Node node, Qcow2Geometry g, BlockNode file, Qcow2ClusterMap map,
                           Qcow2Refcounts refcounts, ReentrantLock meta) {
        this.node = node;
        this.g = g;
        this.file = file;
        this.map = map;
        this.refcounts = refcounts;
        this.meta = meta;
    }

    /** The snapshots in table order. */
    public List<Info> list() {
        List<Info> out = new ArrayList<>();
        for (Qcow2Snapshots.Snapshot s : node.snapshots()) {
            out.add(new Info(s.id(), s.name(), s.vmStateSize(), s.dateSeconds(), s.dateNanos(), s.vmClockNanos(),
                    s.icount(), s.diskSize()));
        }
        return out;
    }

    /**
     * The snapshot qemu-img's bdrv_snapshot_find picks for {@code name}: the
     * first with that name (ids are not looked at: "-d 2" finds no snapshot
     * whose id only is 2).
     */
    public java.util.Optional<Info> findByName(String name) {
        return list().stream().filter(i -> i.name().equals(name)).findFirst();
    }

    /**
     * Takes a snapshot named {@code name} (cut to 255 bytes) with the next
     * free numeric id, as qcow2_snapshot_create; returns its id.
     */
    public String create(String name, long dateSeconds, int dateNanos) throws BlockException {
        node.beforeSnapshotChange();
        meta.lock();
        try {
            List<Qcow2Snapshots.Snapshot> old = node.snapshots();
            if (old.size() >= Qcow2Limits.MAX_SNAPSHOTS) {
                throw new BlockException(Errno.EFBIG, "Too many snapshots");
            }
            if (g.externalData()) {
                throw new BlockException(Errno.ENOTSUP, "Internal snapshots are not supported with an external"
                        + " data file");
            }
            String id = nextId(old);
            name = cut(name);
            flushMetadata();
            long[] l1 = map.l1Copy();
            long l1Offset = 0;
            if (l1.length > 0) {
                int clusters = (int) ((l1.length * 8L + g.clusterSize() - 1) >>> g.clusterBits());
                l1Offset = refcounts.allocate(clusters, "snapshot L1 table");
                ByteBuffer b = ByteBuffer.allocate(l1.length * 8);
                b.asLongBuffer().put(l1);
                refcounts.flush();
                file.write(l1Offset, b, 0);
                node.fileGrewTo(l1Offset + ((long) clusters << g.clusterBits()));
            }
            addReference(new Qcow2SnapshotRefcounts(g, file, map, refcounts), map.l1Offset(), map.l1Size());
            List<Qcow2Snapshots.Snapshot> table = new ArrayList<>(old);
            table.add(new Qcow2Snapshots.Snapshot(id, name, l1Offset, l1.length, dateSeconds, dateNanos, 0, 0,
                    node.length(), 0));
            writeTable(table);
            file.flush();
            return id;
        } finally {
            meta.unlock();
        }
    }

    /**
     * Reverts the active layer to the snapshot whose id, else name, is
     * {@code key} (qcow2_snapshot_goto); the virtual size becomes the
     * snapshot's.
     */
    public void apply(String key) throws BlockException {
        node.beforeSnapshotChange();
        Qcow2Snapshots.Snapshot sn = byIdOrName(key);
        if (sn == null) {
            throw new BlockException(Errno.ENOENT, "Can't find the snapshot");
        }
        if (sn.diskSize() >= 0 && sn.diskSize() != node.length()) {
            node.truncate(sn.diskSize(), false, io.jblock.block.Prealloc.OFF);
        }
        meta.lock();
        try {
            validateL1(sn);
            flushMetadata();
            map.growL1(sn.l1Size(), true);
            Qcow2SnapshotRefcounts walker = new Qcow2SnapshotRefcounts(g, file, map, refcounts);
            addReference(walker, sn.l1TableOffset(), sn.l1Size());
            long[] snL1 = readL1(sn);
            long[] old = map.l1Copy();
            long[] fresh = new long[old.length];
            System.arraycopy(snL1, 0, fresh, 0, snL1.length);
            map.replaceL1(fresh);
            walker.release(old);
            walker.update(map.l1Offset(), map.l1Size(), 0);
            flushMetadata();
            file.flush();
        } finally {
            meta.unlock();
        }
    }

    /** Deletes the snapshot with this id and name (qcow2_snapshot_delete); either may be null. */
    public void delete(String id, String name) throws BlockException {
        node.beforeSnapshotChange();
        meta.lock();
        try {
            List<Qcow2Snapshots.Snapshot> old = node.snapshots();
            Qcow2Snapshots.Snapshot sn = null;
            for (Qcow2Snapshots.Snapshot s : old) {
                if ((id == null || s.id().equals(id)) && (name == null || s.name().equals(name))) {
                    sn = s;
                    break;
                }
            }
            if (sn == null) {
                throw new BlockException(Errno.ENOENT, "Can't find the snapshot");
            }
            validateL1(sn);
            long[] l1 = readL1(sn);
            List<Qcow2Snapshots.Snapshot> table = new ArrayList<>(old);
            table.remove(sn);
            flushMetadata();
            writeTable(table);
            Qcow2SnapshotRefcounts walker = new Qcow2SnapshotRefcounts(g, file, map, refcounts);
            walker.release(l1);
            if (sn.l1Size() > 0) {
                refcounts.free(sn.l1TableOffset(), sn.l1Size() * 8L, Qcow2Refcounts.FreeReason.SNAPSHOT);
            }
            walker.update(map.l1Offset(), map.l1Size(), 0);
            flushMetadata();
            file.flush();
        } finally {
            meta.unlock();
        }
    }

    /** One more reference to what an L1 table reaches; a count at its maximum fails as in QEMU, with EINVAL. */
    private static void addReference(Qcow2SnapshotRefcounts walker, long l1Offset, int l1Size)
            throws BlockException {
        try {
            walker.update(l1Offset, l1Size, 1);
        } catch (BlockException e) {
            throw e.errno() == Errno.ERANGE ? new BlockException(Errno.EINVAL, e.getMessage(), e) : e;
        }
    }

    /** QEMU's qcow2_snapshot_load_tmp, for a read-only image: see {@link Qcow2Node#loadSnapshotTemporarily}. */
    void loadTemporarily(String id, String name) throws BlockException {
        Qcow2Snapshots.Snapshot sn = null;
        if (id != null || name != null) {
            for (Qcow2Snapshots.Snapshot s : node.snapshots()) {
                if ((id == null || s.id().equals(id)) && (name == null || s.name().equals(name))) {
                    sn = s;
                    break;
                }
            }
        }
        if (sn == null) {
            throw new BlockException(Errno.ENOENT, "Can't find snapshot");
        }
        validateL1(sn);
        node.snapshotLoaded(readL1(sn), sn.diskSize() >= 0 ? sn.diskSize() : node.length());
    }

    private Qcow2Snapshots.Snapshot byIdOrName(String key) {
        for (Qcow2Snapshots.Snapshot s : node.snapshots()) {
            if (s.id().equals(key)) {
                return s;
            }
        }
        for (Qcow2Snapshots.Snapshot s : node.snapshots()) {
            if (s.name().equals(key)) {
                return s;
            }
        }
        return null;
    }

    /** QEMU's find_new_snapshot_id: one more than the largest numeric id. */
    private static String nextId(List<Qcow2Snapshots.Snapshot> list) {
        long max = 0;
        for (Qcow2Snapshots.Snapshot s : list) {
            long v = leadingNumber(s.id());
            max = Math.max(max, v);
        }
        return Long.toString(max + 1);
    }

    /** strtoul's reading of an id: leading decimal digits, 0 if none. */
    private static long leadingNumber(String id) {
        long v = 0;
        for (int i = 0; i < id.length() && Character.isDigit(id.charAt(i)) && i < 18; i++) {
            v = v * 10 + (id.charAt(i) - '0');
        }
        return v;
    }

    private static String cut(String name) {
        byte[] b = name.getBytes(StandardCharsets.UTF_8);
        if (b.length <= MAX_NAME_BYTES) {
            return name;
        }
        return new String(b, 0, MAX_NAME_BYTES, StandardCharsets.UTF_8);
    }

    private void flushMetadata() throws BlockException {
        refcounts.flush();
        map.writeDirty();
    }

    private void validateL1(Qcow2Snapshots.Snapshot sn) throws BlockException {
        if (sn.l1Size() < 0 || sn.l1Size() > Qcow2Limits.MAX_L1_BYTES / 8) {
            throw new BlockException.Corrupt("Snapshot L1 table too large");
        }
        if ((sn.l1TableOffset() & (g.clusterSize() - 1)) != 0
                || sn.l1TableOffset() + sn.l1Size() * 8L > node.fileLength()) {
            throw new BlockException.Corrupt("Snapshot L1 table offset invalid");
        }
    }

    private long[] readL1(Qcow2Snapshots.Snapshot sn) throws BlockException {
        long[] l1 = new long[sn.l1Size()];
        if (l1.length > 0) {
            ByteBuffer b = ByteBuffer.allocate(l1.length * 8);
            file.read(sn.l1TableOffset(), b);
            b.flip();
            b.asLongBuffer().get(l1);
        }
        return l1;
    }

    /**
     * Writes the table anew as it is held (qcow2_write_snapshots), for a
     * check that repaired entries read from a damaged table.
     */
    void rewriteTable() throws BlockException {
        meta.lock();
        try {
            writeTable(node.snapshots());
        } finally {
            meta.unlock();
        }
    }

    /** How many bytes the table on disk takes (its entries' extra data may be of any size QEMU accepts). */
    private long tableBytes(long offset, int count) throws BlockException {
        long at = offset;
        for (int i = 0; i < count; i++) {
            at = (at + 7) & ~7L;
            ByteBuffer fixed = ByteBuffer.allocate(40);
            file.read(at, fixed);
            int idSize = Short.toUnsignedInt(fixed.getShort(12));
            int nameSize = Short.toUnsignedInt(fixed.getShort(14));
            long extra = Integer.toUnsignedLong(fixed.getInt(36));
            at += 40 + extra + idSize + nameSize;
        }
        return at - offset;
    }

    /** The table written again as QEMU 7.2 writes it (every entry with its extra data), for amend's upgrade. */
    void rewriteTableForUpgrade() throws BlockException {
        node.beforeSnapshotChange();
        rewriteTable();
        file.flush();
    }

    /** Writes {@code table} to new clusters, switches the header to it, frees the old table. */
    private void writeTable(List<Qcow2Snapshots.Snapshot> table) throws BlockException {
        List<Qcow2Snapshots.Snapshot> complete = new ArrayList<>();
        for (Qcow2Snapshots.Snapshot s : table) {
            // An entry without disk_size (old v2 images) gets the current size, as QEMU gives it at open.
            complete.add(s.diskSize() >= 0 ? s : s.withDiskSize(node.length()));
        }
        table = complete;
        ByteBuffer bytes = encode(table);
        long offset = 0;
        int clusters = (int) ((bytes.capacity() + g.clusterSize() - 1) >>> g.clusterBits());
        if (clusters > 0) {
            offset = refcounts.allocate(clusters, "snapshot table");
        }
        flushMetadata();
        if (clusters > 0) {
            file.write(offset, bytes, 0);
            node.fileGrewTo(offset + ((long) clusters << g.clusterBits()));
        }
        file.flush();
        file.write(HEADER_SNAPSHOT_FIELDS, ByteBuffer.allocate(12).putInt(0, table.size()).putLong(4, offset), 0);
        file.flush();
        long oldOffset = node.snapshotsOffset();
        long oldBytes = tableBytes(oldOffset, node.snapshots().size());
        node.snapshotsChanged(List.copyOf(table), offset);
        if (oldBytes > 0) {
            refcounts.free(oldOffset, oldBytes, Qcow2Refcounts.FreeReason.SNAPSHOT);
        }
    }

    /**
     * The table as QEMU writes it (layout in {@link Qcow2Snapshots}), entries
     * padded to 8 bytes: the 24 bytes of extra data QEMU 7.2 knows, then any
     * it does not know, carried over from the entry as read.
     */
    static ByteBuffer encode(List<Qcow2Snapshots.Snapshot> table) throws BlockException {
        long size = 0;
        List<byte[][]> texts = new ArrayList<>();
        for (Qcow2Snapshots.Snapshot s : table) {
            byte[] id = s.id().getBytes(StandardCharsets.UTF_8);
            byte[] name = s.name().getBytes(StandardCharsets.UTF_8);
            texts.add(new byte[][] {id, name});
            size = (size + 7) & ~7L;
            size += 40 + EXTRA + s.unknownExtra().length + id.length + name.length;
        }
        if (size > Qcow2Snapshots.MAX_TABLE_BYTES) {
            throw new BlockException(Errno.EFBIG, "Snapshot table too large");
        }
        ByteBuffer b = ByteBuffer.allocate((int) size);
        int at = 0;
        for (int i = 0; i < table.size(); i++) {
            Qcow2Snapshots.Snapshot s = table.get(i);
            byte[] id = texts.get(i)[0];
            byte[] name = texts.get(i)[1];
            at = (at + 7) & ~7;
            b.putLong(at, s.l1TableOffset());
            b.putInt(at + 8, s.l1Size());
            b.putShort(at + 12, (short) id.length);
            b.putShort(at + 14, (short) name.length);
            b.putInt(at + 16, (int) s.dateSeconds());
            b.putInt(at + 20, s.dateNanos());
            b.putLong(at + 24, s.vmClockNanos());
            // A state over 4 GiB reads as none to an older reader, rather than as a cut size (as QEMU writes it).
            b.putInt(at + 32, s.vmStateSize() <= 0xffffffffL ? (int) s.vmStateSize() : 0);
            byte[] unknown = s.unknownExtra();
            b.putInt(at + 36, EXTRA + unknown.length);
            b.putLong(at + 40, s.vmStateSize());
            b.putLong(at + 48, s.diskSize());
            b.putLong(at + 56, s.icount());
            b.put(at + 64, unknown);
            int idAt = at + 64 + unknown.length;
            b.put(idAt, id);
            b.put(idAt + id.length, name);
            at = idAt + id.length + name.length;
        }
        return b.clear();
    }
}
