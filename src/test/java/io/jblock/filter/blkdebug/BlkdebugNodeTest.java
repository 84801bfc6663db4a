package io.jblock.filter.blkdebug;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.Drive;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.WriteFlags;
import io.jblock.options.GraphOpener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class BlkdebugNodeTest {
    @TempDir
    Path tmp;

    /** raw over blkdebug over a 1 MiB memory disk, with the given extra blkdebug options. */
    private static BlockNode open(String... blkdebugOptions) throws BlockException {
        List<String> kv = new ArrayList<>(List.of("driver", "raw", "file.driver", "blkdebug",
                "file.image.driver", "memory", "file.image.size", "1M"));
        for (int i = 0; i < blkdebugOptions.length; i += 2) {
            kv.add("file." + blkdebugOptions[i]);
            kv.add(blkdebugOptions[i + 1]);
        }
        return GraphOpener.standard().open(null, NodeOptions.of(kv.toArray(String[]::new)), NodeSettings.defaults());
    }

    private static void write(BlockNode n, long offset, int len) throws BlockException {
        n.write(offset, ByteBuffer.allocate(len), WriteFlags.NONE);
    }

    @Test
    void anErrorOnWriteAioFailsTheWriteWithItsErrnoAndStaysActiveForLaterRequests() throws Exception {
        try (BlockNode n = open("inject-error.0.event", "write_aio", "inject-error.0.errno", "28")) {
            assertThatThrownBy(() -> write(n, 0, 512)).isInstanceOf(BlockException.class)
                    .satisfies(e -> assertThat(((BlockException) e).errno()).isEqualTo(Errno.ENOSPC));
            // As in QEMU: the rule stays active until another event brings rules, so a read fails too.
            assertThatThrownBy(() -> n.read(0, ByteBuffer.allocate(512)))
                    .satisfies(e -> assertThat(((BlockException) e).errno()).isEqualTo(Errno.ENOSPC));
        }
    }

    @Test
    void onceFailsOneRequestAndSectorLimitsWhichOnes() throws Exception {
        try (BlockNode n = open("inject-error.0.event", "write_aio", "inject-error.0.sector", "8",
                "inject-error.0.once", "on")) {
            write(n, 0, 4096); // sectors 0..7: not the one
            assertThatThrownBy(() -> write(n, 4096, 512)).isInstanceOf(BlockException.class);
            write(n, 4096, 512); // once: gone
        }
    }

    @Test
    void iotypeChoosesTheKindOfRequest() throws Exception {
        try (BlockNode n = open("inject-error.0.event", "read_aio", "inject-error.0.iotype", "write")) {
            n.read(0, ByteBuffer.allocate(512)); // the event made the rule active, but it is for writes
            write(n, 0, 512); // write_aio has no rule: the active list is unchanged, so it fails
        } catch (BlockException e) {
            assertThat(e.errno()).isEqualTo(Errno.EIO);
            return;
        }
        throw new AssertionError("the write after read_aio should have failed");
    }

    @Test
    void setStateRulesGateInjectErrorRulesByState() throws Exception {
        try (BlockNode n = open(
                "set-state.0.event", "read_aio", "set-state.0.new_state", "2",
                "inject-error.0.event", "write_aio", "inject-error.0.state", "2",
                "inject-error.0.iotype", "write")) {
            write(n, 0, 512); // state 1: no error
            n.read(0, ByteBuffer.allocate(512)); // now state 2
            BlkdebugNode debug = BlkdebugNode.below(n);
            assertThat(debug.state()).isEqualTo(2);
            assertThatThrownBy(() -> write(n, 0, 512)).isInstanceOf(BlockException.class);
        }
    }

    @Test
    void flushErrorsComeFromTheFlushToDiskEventOfTheNodeAbove() throws Exception {
        try (BlockNode n = open("inject-error.0.event", "flush_to_disk", "inject-error.0.iotype", "flush")) {
            write(n, 0, 512);
            assertThatThrownBy(n::flush).satisfies(e -> assertThat(((BlockException) e).errno()).isEqualTo(Errno.EIO));
            write(n, 0, 512); // flush-only rule: writes pass
        }
    }

    @Test
    void configFileRulesAreReadInQemuFormat() throws Exception {
        Path conf = tmp.resolve("blkdebug.conf");
        Files.writeString(conf, "# fail the first flush\n\n[inject-error]\nevent = \"flush_to_os\"\n"
                + "iotype = \"flush\"\nerrno = \"5\"\nonce = \"on\"\n");
        try (BlockNode n = open("config", conf.toString())) {
            write(n, 0, 512);
            assertThatThrownBy(n::flush).isInstanceOf(BlockException.class);
            write(n, 0, 512);
            n.flush();
        }
    }

    @Test
    void badRulesAreRefusedWithQemusMessages() {
        assertThatThrownBy(() -> open("inject-error.0.errno", "5")).hasMessage("Missing event name for rule");
        assertThatThrownBy(() -> open("inject-error.0.event", "nope")).hasMessage("invalid parameter value: nope");
        assertThatThrownBy(() -> open("inject-error.0.event", "read_aio", "inject-error.0.iotype", "x"))
                .hasMessage("invalid parameter value: x");
        assertThatThrownBy(() -> open("inject-error.0.event", "read_aio", "inject-error.0.bogus", "1"))
                .hasMessage("[inject-error] section doesn't support the option 'bogus'");
        assertThatThrownBy(() -> open("inject-error.0.event", "read_aio", "inject-error.0.sector", "x"))
                .hasMessage("Parameter 'sector' expects a number");
        assertThatThrownBy(() -> open("align", "3")).hasMessage("Cannot meet constraints with align 3");
        assertThatThrownBy(() -> open("align", "4096", "max-transfer", "512"))
                .hasMessage("Cannot meet constraints with max-transfer 512");
        assertThatThrownBy(() -> open("config", tmp.resolve("none").toString()))
                .hasMessage("Could not read blkdebug config file: No such file or directory");
    }

    @Test
    void alignIsTheRequestAlignmentTheLayersAboveSee() throws Exception {
        try (BlockNode n = open("align", "4096", "max-transfer", "65536")) {
            assertThat(n.capabilities().requestAlignment()).isEqualTo(4096);
            assertThat(n.capabilities().maxTransfer()).isEqualTo(65536);
        }
    }

    @Test
    void withAlignThePartialBlocksArePaddedAndTheBytesAroundKept() throws Exception {
        try (BlockNode n = open("align", "4096")) {
            byte[] ones = new byte[8192];
            java.util.Arrays.fill(ones, (byte) 1);
            n.write(0, ByteBuffer.wrap(ones), WriteFlags.NONE);
            n.write(100, ByteBuffer.wrap(new byte[] {9, 9}), WriteFlags.NONE);
            n.writeZeroes(5000, 10, 0);
            ByteBuffer b = ByteBuffer.allocate(3);
            n.read(99, b);
            assertThat(b.array()).containsExactly(1, 9, 9);
            ByteBuffer z = ByteBuffer.allocate(12);
            n.read(4999, z);
            assertThat(z.get(0)).isEqualTo((byte) 1);
            assertThat(z.get(1)).isZero();
            assertThat(z.get(10)).isZero();
            assertThat(z.get(11)).isEqualTo((byte) 1);
        }
    }

    @Test
    void aBreakpointStopsTheRequestUntilResumed() throws Exception {
        try (BlockNode n = open()) {
            BlkdebugNode debug = BlkdebugNode.below(n);
            List<String> messages = new java.util.concurrent.CopyOnWriteArrayList<>();
            debug.messages(messages::add);
            debug.breakpoint("write_aio", "A");
            Thread t = Thread.ofVirtual().start(() -> {
                try {
                    n.write(0, ByteBuffer.wrap(new byte[] {7}), WriteFlags.NONE);
                } catch (BlockException e) {
                    throw new RuntimeException(e);
                }
            });
            while (!debug.isSuspended("A")) {
                Thread.onSpinWait();
            }
            assertThat(debug.isSuspended(t)).isTrue();
            ByteBuffer b = ByteBuffer.allocate(1);
            n.read(0, b);
            assertThat(b.get(0)).as("the stopped write has not reached the image").isZero();
            assertThatThrownBy(() -> debug.resume("B")).isInstanceOf(BlockException.class);
            debug.resume("A");
            t.join();
            b.clear();
            n.read(0, b);
            assertThat(b.get(0)).isEqualTo((byte) 7);
            assertThat(messages).containsExactly("blkdebug: Suspended request 'A'\n", "blkdebug: Resuming request 'A'\n");
            assertThatThrownBy(() -> debug.breakpoint("nope", "X")).hasMessage("No such file or directory");
            assertThatThrownBy(() -> debug.removeBreakpoint("A")).hasMessage("No such file or directory");
        }
    }

    @Test
    void aDriveOverBlkdebugReportsTheInjectedErrno() throws Exception {
        BlockNode n = open("inject-error.0.event", "write_aio", "inject-error.0.errno", "28",
                "inject-error.0.iotype", "write");
        try (Drive d = new Drive(n)) {
            assertThatThrownBy(() -> d.write(0, ByteBuffer.allocate(512), WriteFlags.NONE))
                    .satisfies(e -> assertThat(((BlockException) e).errno()).isEqualTo(Errno.ENOSPC));
        }
    }
}
