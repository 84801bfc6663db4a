package io.jblock.block;

import io.jblock.format.RawNode;
import io.jblock.protocol.MemoryNode;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The drive's and the generic node layer's rules, on nodes that record what they are asked to do. */
class DriveSemanticsTest {
    /** A medium that records writes with their flags and flushes; native FUA on demand. */
    static final class RecordingNode extends BlockNode {
        final List<String> log = new ArrayList<>();
        final boolean nativeFua;
        final MemoryNode data = MemoryNode.scratch(1 << 20);

        RecordingNode(NodeSettings s, boolean nativeFua) {
            super("recording", s);
            this.nativeFua = nativeFua;
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(nativeFua, false, true, 1, 1 << 20);
        }

        @Override
        public long length() {
            return data.length();
        }

        @Override
        protected boolean hasMedium() {
            return true;
        }

        @Override
        protected void doRead(long offset, ByteBuffer dst) throws BlockException {
            data.read(offset, dst);
        }

        @Override
        protected synchronized void doWrite(long offset, ByteBuffer src, int flags) throws BlockException {
            log.add("write " + offset + (WriteFlags.has(flags, WriteFlags.FUA) ? " fua" : ""));
            data.write(offset, src, 0);
        }

        @Override
        protected synchronized void doWriteZeroes(long offset, long length, int flags) {
            log.add("zero " + offset + "+" + length + (WriteFlags.has(flags, WriteFlags.MAY_UNMAP) ? " unmap" : ""));
        }

        @Override
        protected synchronized void doDiscard(long offset, long length) {
            log.add("discard " + offset + "+" + length);
        }

        @Override
        public synchronized void flushToOs() {
            log.add("flush-os");
        }

        @Override
        public synchronized void flushToDisk() {
            log.add("flush-disk");
        }
    }

    private static NodeSettings settings(CacheMode mode) {
        CacheOptions o = mode.options();
        return new NodeSettings(NodeSettings.autoName(), false, o.direct(), o.noFlush(), DiscardMode.UNMAP);
    }

    private static ByteBuffer buf(int n, int value) {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            b.put((byte) value);
        }
        return b.flip();
    }

    @Test
    void writeCacheOffTurnsEveryWriteIntoWriteThenFlushOnANodeWithoutNativeFua() throws Exception {
        RecordingNode n = new RecordingNode(settings(CacheMode.WRITETHROUGH), false);
        try (Drive d = new Drive("", n, false, false, DetectZeroes.OFF)) {
            d.write(0, buf(512, 1), 0);
            d.write(512, buf(512, 2), 0);
            assertThat(n.log).containsExactly("write 0", "flush-os", "flush-disk", "write 512", "flush-os",
                    "flush-disk");
        }
    }

    @Test
    void writeCacheOffPassesFuaToANodeWithNativeFua() throws Exception {
        RecordingNode n = new RecordingNode(settings(CacheMode.WRITETHROUGH), true);
        try (Drive d = new Drive("", n, false, false, DetectZeroes.OFF)) {
            d.write(0, buf(512, 1), 0);
            assertThat(n.log).containsExactly("write 0 fua");
        }
    }

    @Test
    void noFlushStripsFuaAndSkipsTheDiskButStillFlushesToTheOs() throws Exception {
        RecordingNode n = new RecordingNode(settings(CacheMode.UNSAFE), true);
        try (Drive d = new Drive("", n, true, false, DetectZeroes.OFF)) {
            d.write(0, buf(512, 1), WriteFlags.FUA);
            d.flush();
            assertThat(d.stats().flushRequests()).isEqualTo(1);
            assertThat(d.stats().diskFlushes()).isZero();
            assertThat(n.log).containsExactly("write 0", "flush-os");
        }
    }

    @Test
    void noFlushIsRespectedPerNodeSoAFormatsMetadataStillReachesItsChild() throws Exception {
        RecordingNode file = new RecordingNode(settings(CacheMode.UNSAFE), false);
        RawNode raw = new RawNode(settings(CacheMode.UNSAFE), file, 0, -1);
        try (Drive d = new Drive(raw)) {
            d.write(0, buf(4096, 7), 0);
            d.flush();
            assertThat(file.log).containsExactly("write 0", "flush-os");
        }
    }

    @Test
    void detectZeroesTurnsZeroWritesIntoZeroWritesAndUnmapAddsMayUnmap() throws Exception {
        RecordingNode n = new RecordingNode(settings(CacheMode.WRITEBACK), false);
        try (Drive d = new Drive("", n, true, false, DetectZeroes.ON)) {
            d.write(0, buf(4096, 0), 0);
            d.write(4096, buf(4096, 9), 0);
            assertThat(n.log).containsExactly("zero 0+4096", "write 4096");
        }
        RecordingNode u = new RecordingNode(settings(CacheMode.WRITEBACK), false);
        try (Drive d = new Drive("", u, true, false, DetectZeroes.UNMAP)) {
            d.write(0, buf(4096, 0), 0);
            assertThat(u.log).containsExactly("zero 0+4096 unmap");
        }
    }

    @Test
    void discardIgnoreDropsDiscardsAndMayUnmap() throws Exception {
        NodeSettings ignore = new NodeSettings(NodeSettings.autoName(), false, false, false, DiscardMode.IGNORE);
        RecordingNode n = new RecordingNode(ignore, false);
        try (Drive d = new Drive(n)) {
            d.discard(0, 4096);
            d.writeZeroes(0, 4096, WriteFlags.MAY_UNMAP);
            assertThat(d.stats().discards()).isEqualTo(1);
            assertThat(n.log).containsExactly("zero 0+4096");
        }
    }

    @Test
    void requestsPastTheEndFailWithEioAndWriteNothing() throws Exception {
        RecordingNode n = new RecordingNode(settings(CacheMode.WRITEBACK), false);
        try (Drive d = new Drive(n)) {
            long len = d.length();
            assertThatThrownBy(() -> d.write(len - 100, buf(512, 1), 0))
                    .isInstanceOfSatisfying(BlockException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EIO))
                    .hasMessageContaining("offset " + (len - 100));
            assertThatThrownBy(() -> d.read(-1, ByteBuffer.allocate(1))).isInstanceOf(BlockException.class);
            assertThatThrownBy(() -> d.writeZeroes(len, 1, 0)).isInstanceOf(BlockException.class);
            assertThatThrownBy(() -> d.discard(Long.MAX_VALUE, 10)).isInstanceOf(BlockException.class);
            assertThat(d.stats().errors()).isEqualTo(4);
            assertThat(n.log).isEmpty();
        }
    }

    @Test
    void aReadOnlyDriveRefusesWritesBeforeAnyIo() throws Exception {
        RecordingNode n = new RecordingNode(settings(CacheMode.WRITEBACK), false);
        try (Drive d = new Drive("", n, true, true, DetectZeroes.OFF)) {
            assertThatThrownBy(() -> d.write(0, buf(512, 1), 0))
                    .isInstanceOfSatisfying(BlockException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EPERM))
                    .hasMessage("Block node is read-only");
            assertThatThrownBy(() -> d.discard(0, 512)).isInstanceOf(BlockException.class);
            assertThatThrownBy(() -> d.writeZeroes(0, 512, 0)).isInstanceOf(BlockException.class);
        }
        assertThat(n.log).as("a read-only drive does not even flush at close").isEmpty();
    }

    @Test
    void closeFlushesAsQemuDoesSoCachedMetadataAlwaysReachesTheFile() throws Exception {
        RecordingNode n = new RecordingNode(settings(CacheMode.WRITEBACK), false);
        try (Drive d = new Drive(n)) {
            d.write(0, buf(512, 1), 0);
        }
        assertThat(n.log).containsExactly("write 0", "flush-os", "flush-disk");
        RecordingNode u = new RecordingNode(settings(CacheMode.UNSAFE), false);
        try (Drive d = new Drive(u)) {
            d.write(0, buf(512, 1), 0);
        }
        assertThat(u.log).as("unsafe: to the OS only").containsExactly("write 0", "flush-os");
    }

    @Test
    void aFailedWriteLeavesTheBufferPositionWhereItWas() throws Exception {
        RecordingNode n = new RecordingNode(settings(CacheMode.WRITEBACK), false);
        try (Drive d = new Drive(n)) {
            ByteBuffer b = buf(512, 3);
            assertThatThrownBy(() -> d.write(d.length(), b, 0)).isInstanceOf(BlockException.class);
            assertThat(b.position()).isZero();
            d.write(0, b, 0);
            assertThat(b.hasRemaining()).isFalse();
        }
    }
}
