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
 *       requests depends on thread timing.</li>
 *   <li>{@code truncate} without an offset prints the usage (qemu-io
 *       crashes); {@code wait_break} fails at once (qemu-io waits forever
 *       without blkdebug); {@code abort} and fatal {@code sigraise} end the
 *       run with the status a shell would see instead of killing the JVM.</li>
 *   <li>{@code -s} keeps its throw-away layer in memory, with qcow2's
 *       64 KiB granularity for map and alloc, and survives {@code reopen};
 *       {@code info} on it does not print qcow2's format-specific block.</li>
 *   <li>Lengths are exact: QEMU rounds an image's length up to 512 bytes.</li>
 *   <li>The usage text ends with jblock's bug-report line, {@code -V} names jblock.</li>
 * </ul>
 */
package io.jblock.cli.io;
