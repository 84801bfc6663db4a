/**
 * The logwrites filter ({@code driver=blklogwrites}) and power-cut replay.
 *
 * <h2>The door</h2>
 * <ul>
 *   <li>{@link io.jblock.filter.logwrites.LogWritesDriver} and
 *       {@link io.jblock.filter.logwrites.LogWritesNode}: record every write,
 *       zero write, discard and flush to disk that reaches the file node, in
 *       the dm-log-writes format, byte for byte as QEMU's blklogwrites
 *       (plus the FUA flag on FUA writes).</li>
 *   <li>{@link io.jblock.filter.logwrites.WriteLog} and
 *       {@link io.jblock.filter.logwrites.LogEntry}: the format, and a
 *       reader that names what is wrong with a bad log.</li>
 *   <li>{@link io.jblock.filter.logwrites.LogReplay}: the disk at entry N,
 *       with a seeded subset of the unflushed writes dropped; used by
 *       {@code jblock img replay} and the power-cut campaign.</li>
 * </ul>
 */
package io.jblock.filter.logwrites;
