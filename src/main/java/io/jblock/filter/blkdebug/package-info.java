/**
 * The blkdebug filter: error injection and breakpoints by rule, QEMU's
 * syntax (a config file with [inject-error] and [set-state] sections,
 * {@code inject-error.N.*} / {@code set-state.N.*} options, the file name
 * {@code blkdebug:CONFIG:IMAGE}), with QEMU 7.2's semantics and messages.
 *
 * <h2>The door</h2>
 * {@link io.jblock.filter.blkdebug.BlkdebugDriver} ({@code driver=blkdebug})
 * and {@link io.jblock.filter.blkdebug.BlkdebugNode} (breakpoints for
 * qemu-io's break / wait_break / resume / remove_break).
 *
 * <h2>Rooms</h2>
 * <ul>
 *   <li>{@code BlkdebugRules}: reads rules from the config file and the
 *       options.</li>
 *   <li>{@code BlkdebugRule}, {@code BlkdebugIoType}: one rule, and the
 *       kinds of request an inject-error rule matches.</li>
 * </ul>
 * Events come from the nodes above through
 * {@link io.jblock.block.BlockNode#debugEvent}: raw reports read_aio and
 * write_aio, every node's flush reports flush_to_os and flush_to_disk on its
 * primary child, and qcow2 reports its metadata events on its file child.
 */
package io.jblock.filter.blkdebug;
