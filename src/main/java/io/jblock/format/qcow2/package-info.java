/**
 * The qcow2 format (docs/interop/qcow2.txt; QEMU 7.2 is the oracle): reads
 * of every image QEMU writes, and writes that leave images {@code qemu-img
 * check} finds clean.
 *
 * <h2>Write side in one picture</h2>
 * <pre>
 *  guest request ──► Qcow2ClusterLocks (guest clusters of the request, held to the end)
 *       │
 *       ├─ metadata lock: L2 slot (allocate / copy the L2 table), allocate a host cluster
 *       ├─ no lock: copy-on-write read through the image, data write
 *       └─ metadata lock: L2 entry points at the data; a freed cluster's L2 entry
 *                         reaches the file before its refcount drops
 *
 *  ordering in the file: refcount block ─► L2 table / L1 entry ─► (header switch for L1 or refcount table growth)
 * </pre>
 * Caches are write-back and bounded; a flush to the OS writes them (refcount
 * blocks first) even under cache=unsafe. With lazy refcounts the image is
 * marked dirty on the first change and the refcount-first order is dropped,
 * as QEMU does. Persistent dirty bitmaps are kept as QEMU keeps them
 * ({@code Qcow2Bitmaps}): marked in use at a read-write open, every guest
 * change marks the enabled ones, stored to new clusters at close.
 *
 * <h2>The door</h2>
 * {@link io.jblock.format.qcow2.Qcow2Driver} ({@code driver=qcow2}, with a
 * {@link io.jblock.format.qcow2.Qcow2Driver.Policy} for what an image may make
 * jblock open by itself) and {@link io.jblock.format.qcow2.Qcow2Node};
 * {@link io.jblock.format.qcow2.Qcow2Check} and its result;
 * {@link io.jblock.format.qcow2.Qcow2Bitmaps} (a node's persistent bitmaps,
 * for {@code img bitmap}, {@code convert --bitmaps} and {@code info}).
 * Everything else is package-private.
 *
 * <h2>Rooms</h2>
 * <ul>
 *   <li>{@code Qcow2Header}: the fixed header, v2 and v3, feature bits.</li>
 *   <li>{@code Qcow2Extensions}: header extensions (backing format, feature
 *       names, bitmaps, external data file, encryption).</li>
 *   <li>{@code Qcow2Bitmaps}, {@code Qcow2BitmapDirectory}, {@code Qcow2DirtyBitmap}:
 *       persistent dirty bitmaps (QEMU's qcow2-bitmap.c): the directory and
 *       tables read and checked, bitmaps in memory, stored at close; the
 *       operations of {@code qemu-img bitmap}.</li>
 *   <li>{@code Qcow2Limits}: QEMU's limits on an untrusted image's tables,
 *       plus jblock's own: every table lies inside the file.</li>
 *   <li>{@code Qcow2Geometry}: cluster, subcluster and L2 sizes.</li>
 *   <li>{@code Qcow2L2Entry}: L1/L2 entry layouts and subcluster types.</li>
 *   <li>{@code Qcow2ClusterMap}: guest to host lookups through the L1 table
 *       and a bounded, write-back cache of L2 slices; L2 allocation and
 *       copy, L1 growth.</li>
 *   <li>{@code Qcow2Compression}: zlib (raw deflate) and zstd clusters.</li>
 *   <li>{@code Qcow2Refcounts}: reference counts of any width in a
 *       write-back cache of refcount blocks; the host cluster allocator,
 *       refcount block creation and refcount table growth.</li>
 *   <li>{@code Qcow2Writes}: guest writes and compressed writes, with copy-on-write.</li>
 *   <li>{@code Qcow2ZeroWrites}: zero-writes and discards.</li>
 *   <li>{@code Qcow2SnapshotRefcounts}: the refcount walk over an L1 table that
 *       internal snapshots need, with COPIED flags made exact.</li>
 *   <li>{@code Qcow2ClusterLocks}: requests on the same guest clusters one at a time.</li>
 *   <li>{@code Qcow2Resize}: grow, shrink and metadata preallocation.</li>
 *   <li>{@code Qcow2Snapshots}: the internal snapshot table, checked at open.</li>
 *   <li>{@code Qcow2Check} and its {@code Qcow2Check*} rooms, {@code Qcow2RefcountRebuild}:
 *       the consistency check and repair of {@code img check} (QEMU's qcow2 check).</li>
 *   <li>{@code Qcow2Children}: the backing file and external data file the
 *       image names, opened as "backing" and "data-file" children; loops and
 *       depth checked.</li>
 * </ul>
 *
 * <h2>Errors</h2>
 * A damaged or hostile image fails with {@link io.jblock.block.BlockException.Corrupt}
 * or {@link io.jblock.block.BlockException.Unsupported}, with QEMU's message
 * where QEMU refuses the image too, and always naming the bad value; nothing
 * an image says makes jblock allocate more than QEMU's limits allow or read
 * outside the image file.
 *
 * <h2>Creation</h2>
 * {@link io.jblock.format.qcow2.Qcow2Creator} (behind {@code Qcow2Driver.create})
 * and {@link io.jblock.format.qcow2.Qcow2Measure} are doors too.
 * {@code Qcow2CreateSpec} checks the options in QEMU's order;
 * {@code Qcow2CreateLayout} models QEMU's cluster allocator so that new
 * images (L1, refcount growth, metadata/falloc/full preallocation) are the
 * same byte for byte; {@code Qcow2CreateHeader} writes the header cluster.
 */
package io.jblock.format.qcow2;
