package io.jblock.format;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.options.GraphOpener;
import io.jblock.protocol.MemoryNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The raw format node: its window, and the restriction on the first sector of a probed image. */
class RawNodeTest {
    private static final byte[] QCOW2_HEAD = {'Q', 'F', 'I', (byte) 0xfb, 0, 0, 0, 3};

    private static RawNode probedRaw(long length) throws BlockException {
        RawNode raw = RawNode.over(MemoryNode.scratch(length));
        raw.markProbed();
        return raw;
    }

    private static byte[] readHead(RawNode raw, int n) throws BlockException {
        ByteBuffer b = ByteBuffer.allocate(n);
        raw.read(0, b);
        return b.array();
    }

    @Test
    void aProbedRawNodeRefusesWritingAQcow2HeaderWithEperm() throws Exception {
        RawNode raw = probedRaw(1 << 20);
        assertThatThrownBy(() -> raw.write(0, ByteBuffer.wrap(QCOW2_HEAD), 0))
                .isInstanceOfSatisfying(BlockException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EPERM))
                .hasMessageContaining("qcow2").hasMessageContaining("offset 0");
        assertThat(readHead(raw, 8)).containsOnly(0);
    }

    @Test
    void theHeaderIsJudgedWithTheBytesAlreadyThereSoPiecewiseWritesCannotBuildIt() throws Exception {
        RawNode raw = probedRaw(4096);
        raw.write(0, ByteBuffer.wrap(new byte[] {'Q', 'F', 'I'}), 0);
        raw.write(4, ByteBuffer.wrap(new byte[] {0, 0, 0, 2}), 0);
        assertThatThrownBy(() -> raw.write(3, ByteBuffer.wrap(new byte[] {(byte) 0xfb}), 0))
                .isInstanceOfSatisfying(BlockException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EPERM));
        assertThat(readHead(raw, 8)).containsExactly('Q', 'F', 'I', 0, 0, 0, 0, 2);
    }

    @Test
    void theMagicWithVersionZeroStillProbesAsRawAndIsAllowed() throws Exception {
        RawNode raw = probedRaw(4096);
        raw.write(0, ByteBuffer.wrap(new byte[] {'Q', 'F', 'I', (byte) 0xfb, 0, 0, 0, 0}), 0);
        assertThat(readHead(raw, 4)).containsExactly('Q', 'F', 'I', 0xfb);
        // Making the version 1 would make it qcow (version 1): refused.
        assertThatThrownBy(() -> raw.write(7, ByteBuffer.wrap(new byte[] {1}), 0))
                .isInstanceOfSatisfying(BlockException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EPERM))
                .hasMessageContaining("qcow header");
    }

    @Test
    void zeroWritesAreCheckedTooAndMayAlwaysRemoveAHeader() throws Exception {
        MemoryNode file = MemoryNode.scratch(4096);
        RawNode raw = RawNode.over(file);
        raw.markProbed();
        file.write(0, ByteBuffer.wrap(QCOW2_HEAD), 0); // put there behind the node's back
        assertThatThrownBy(() -> raw.writeZeroes(100, 1, 0))
                .isInstanceOfSatisfying(BlockException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EPERM));
        raw.writeZeroes(0, 1, 0);
        assertThat(readHead(raw, 8)).containsExactly(0, 'F', 'I', 0xfb, 0, 0, 0, 3);
        raw.writeZeroes(0, 512, 0);
        assertThat(readHead(raw, 8)).containsOnly(0);
    }

    @Test
    void otherFormatsHeadersAreRefusedAsQemuRefusesThem() throws Exception {
        RawNode raw = probedRaw(4096);
        for (String head : new String[] {"conectix", "vhdxfile", "QED\0", "KDMV", "COWD", "version=1\n",
                "#comment\nversion=3\r\n", "WithoutFreeSpace\2\0\0\0", "LUKS\u00ba\u00be\0\2"}) {
            assertThatThrownBy(() -> raw.write(0, ByteBuffer.wrap(head.getBytes(StandardCharsets.ISO_8859_1)), 0))
                    .as(head).isInstanceOf(BlockException.class);
        }
        for (String head : new String[] {"version=4\n", "x\nversion=1\n", "LUKS\u00ba\u00be\0\3", "hello"}) {
            raw.write(0, ByteBuffer.wrap(head.getBytes(StandardCharsets.ISO_8859_1)), 0);
        }
    }

    @Test
    void writesBeyondTheProbedBytesAreNotChecked() throws Exception {
        RawNode raw = probedRaw(4096);
        raw.write(512, ByteBuffer.wrap(QCOW2_HEAD), 0);
        ByteBuffer b = ByteBuffer.allocate(8);
        raw.read(512, b);
        assertThat(b.array()).isEqualTo(QCOW2_HEAD);
    }

    @Test
    void aRawNodeWhoseFormatWasNamedTakesAnyHeader() throws Exception {
        RawNode raw = RawNode.over(MemoryNode.scratch(4096));
        assertThat(raw.isProbed()).isFalse();
        raw.write(0, ByteBuffer.wrap(QCOW2_HEAD), 0);
        assertThat(readHead(raw, 8)).isEqualTo(QCOW2_HEAD);
    }

    @Test
    void theProbedBytesAreThoseOfTheWindowNotOfTheFile() throws Exception {
        MemoryNode file = MemoryNode.scratch(8192);
        RawNode raw = new RawNode(NodeSettings.defaults(), file, 4096, 4096);
        raw.markProbed();
        file.write(0, ByteBuffer.wrap(QCOW2_HEAD), 0); // outside the window: not what a probe of the node sees
        raw.write(8, ByteBuffer.wrap(new byte[] {1}), 0);
        assertThatThrownBy(() -> raw.write(0, ByteBuffer.wrap(QCOW2_HEAD), 0)).isInstanceOf(BlockException.class);
    }

    @Test
    void theGraphOpenerProbesTheQcowMagicByItsVersion(@TempDir Path dir) throws Exception {
        Path img = dir.resolve("disk.img");
        byte[] head = new byte[4096];
        System.arraycopy(QCOW2_HEAD, 0, head, 0, 4);
        java.nio.file.Files.write(img, head);
        try (var raw = GraphOpener.standard().open(img.toString(), new NodeOptions(new LinkedHashMap<>()),
                NodeSettings.defaults())) {
            assertThat(raw.driverName()).isEqualTo("raw"); // version 0: QEMU guesses raw too
        }
        head[7] = 1;
        java.nio.file.Files.write(img, head);
        assertThatThrownBy(() -> GraphOpener.standard().open(img.toString(), new NodeOptions(new LinkedHashMap<>()),
                NodeSettings.defaults())).hasMessage("Image format 'qcow' is not supported yet");
    }

    @Test
    void theGraphOpenerMarksOnlyARawNodeWhoseFormatItProbed(@TempDir Path dir) throws Exception {
        Path img = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(65536);
        }
        try (var probed = GraphOpener.standard().open(img.toString(), new NodeOptions(new LinkedHashMap<>()),
                NodeSettings.defaults())) {
            assertThat(probed).isInstanceOfSatisfying(RawNode.class, r -> assertThat(r.isProbed()).isTrue());
        }
        LinkedHashMap<String, String> named = new LinkedHashMap<>();
        named.put("driver", "raw");
        try (var explicit = GraphOpener.standard().open(img.toString(), new NodeOptions(named),
                NodeSettings.defaults())) {
            assertThat(explicit).isInstanceOfSatisfying(RawNode.class, r -> assertThat(r.isProbed()).isFalse());
        }
    }
}
