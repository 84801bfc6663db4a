/**
 * {@code jblock io}: a drop-in replacement for qemu-io 7.2, the oracle its
 * tests run beside ({@code IoCompatTest}).
 *
 * <p>The door is {@link io.jblock.cli.io.IoTool}. Inside: the command table
 * ({@code CommandTable}, {@code IoCommand}), the commands grouped by what
 * they touch ({@code ReadCommands}, {@code WriteCommands},
 * {@code ImageCommands}, {@code SessionCommands}), qemu-io's parsers
 * ({@code QemuNumbers}, {@code QemuOptsText}, {@code Args}) and text
 * formats ({@code IoText}), and how images are opened with qemu-io's flags
 * and defaults ({@code ImageOpener}: writethrough, discard=unmap).
 *
 * <p>Where jblock deliberately differs from qemu-io 7.2:
 * <ul>
 *   <li>{@code aio_write -z} reports a real elapsed time (qemu-io never
 *       starts its clock there and prints garbage).</li>
 *   <li>aio requests run when submitted; their reports come at the next
 *       point where qemu-io's main loop would run, failures refused at
 *       submission first (newest first), then the others in submission
 *       order. qemu-io's order among several outstanding successful
 *       requests depends on thread timing. On an image with a blkdebug
 *       node each aio request runs on its own virtual thread, and the
 *       command waits until it finished or stopped at a breakpoint
 *       ({@code AioRequests}), so break / wait_break / resume work as in
 *       qemu-io.</li>
 *   <li>{@code truncate} without an offset prints the usage (qemu-io
 *       crashes); {@code wait_break} fails at once when no request can
 *       ever stop there (qemu-io waits forever: without blkdebug, or with
 *       no request on its way to the breakpoint); {@code abort} and fatal
 *       {@code sigraise} end the
 *       run with the status a shell would see instead of killing the JVM.</li>
 *   <li>{@code -s} opens the image read-only under jblock's snapshot
 *       overlay (io.jblock.filter.SnapshotOverlay, through
 *       {@code DriveConfig.snapshot}), not under a temporary qcow2: map and
 *       alloc see the same 64 KiB granularity, but {@code info} names the
 *       overlay instead of printing qcow2's, {@code truncate} fails (the
 *       overlay cannot resize yet), and the layer survives {@code reopen}
 *       (qemu-io 7.2 looks for its deleted temporary file there and fails).</li>
 *   <li>aio=native ({@code -k}, {@code -i native}) and aio=io_uring fail with
 *       the engine's "not available yet" error until jblock has those
 *       engines; they never fall back to the threads engine.</li>
 *   <li>Under O_DIRECT a write to the unaligned tail of an image grows it,
 *       in QEMU, to the next multiple of the alignment; jblock writes only
 *       up to the end. (Lengths themselves are whole sectors in both: the
 *       file node rounds them up to 512 as QEMU does.)</li>
 *   <li>Under O_DIRECT, an unaligned {@code write -z -n} (no fallback)
 *       succeeds: jblock's file node does the read-modify-write where QEMU
 *       fails with ENOTSUP.</li>
 *   <li>The usage text ends with jblock's bug-report line, {@code -V} names jblock.</li>
 * </ul>
 */
package io.jblock.cli.io;
