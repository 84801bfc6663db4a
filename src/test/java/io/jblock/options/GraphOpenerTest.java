package io.jblock.options;

import io.jblock.block.BlockChild;
import io.jblock.block.BlockNode;
import io.jblock.block.CacheMode;
import io.jblock.block.DiscardMode;
import io.jblock.block.Drive;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Graphs opened from -drive, --blockdev and json: strings, and how settings flow through them. */
class GraphOpenerTest {
    @TempDir
    static Path dir;
    static Path image;

    @BeforeAll
    static void image() throws Exception {
        image = dir.resolve("t.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(1 << 20);
        }
    }

    /** A node and everything below it, without generated names, for comparing graphs. */
    private static String describe(BlockNode n) {
        NodeSettings s = n.settings();
        StringBuilder b = new StringBuilder(n.driverName());
        b.append('{');
        if (!s.nodeName().startsWith("#block")) {
            b.append("name=").append(s.nodeName()).append(',');
        }
        b.append("ro=").append(s.readOnly()).append(",direct=").append(s.direct())
                .append(",no-flush=").append(s.noFlush()).append(",discard=").append(s.discard());
        for (BlockChild c : n.children()) {
            b.append(',').append(c.role()).append('=').append(describe(c.node()));
        }
        return b.append('}').toString();
    }

    private static Drive drive(String text) throws Exception {
        return DriveOpener.standard().open(DriveConfig.parseDrive(text));
    }

    private static Drive blockdev(String text) throws Exception {
        DriveConfig c = new DriveConfig();
        c.options = new NodeOptions(Keyval.parseBlockdev(text));
        return DriveOpener.standard().open(c);
    }

    private static Drive json(String text) throws Exception {
        DriveConfig c = new DriveConfig();
        c.filename = "json:" + text;
        return DriveOpener.standard().open(c);
    }

    @Test
    void driveBlockdevAndJsonOpenTheSameGraphWithTheSameSettings() throws Exception {
        String p = image.toString();
        List<String> graphs = new ArrayList<>();
        try (Drive d = drive("file=" + p + ",format=raw,cache=unsafe,node-name=r,read-only=on,discard=unmap,"
                + "file.node-name=f,file.cache.no-flush=off")) {
            graphs.add(describe(d.root()));
        }
        try (Drive d = blockdev("raw,node-name=r,read-only=on,cache.no-flush=on,discard=unmap,"
                + "file.driver=file,file.filename=" + p + ",file.node-name=f,file.cache.no-flush=off")) {
            graphs.add(describe(d.root()));
        }
        try (Drive d = blockdev("driver=raw,node-name=r,read-only=yes,cache.no-flush=y,discard=on,"
                + "file.driver=file,file.filename=" + p + ",file.node-name=f,file.cache.no-flush=n")) {
            graphs.add(describe(d.root()));
        }
        try (Drive d = json("{\"driver\":\"raw\",\"node-name\":\"r\",\"read-only\":true,"
                + "\"cache\":{\"no-flush\":true},\"discard\":\"unmap\",\"file\":{\"driver\":\"file\",\"filename\":\""
                + p + "\",\"node-name\":\"f\",\"cache\":{\"no-flush\":false}}}")) {
            graphs.add(describe(d.root()));
        }
        try (Drive d = json("{\"driver\":\"raw\",\"node-name\":\"r\",\"read-only\":\"on\",\"cache.no-flush\":\"on\","
                + "\"discard\":\"unmap\",\"file.driver\":\"file\",\"file.filename\":\"" + p + "\","
                + "\"file.node-name\":\"f\",\"file.cache.no-flush\":\"off\"}")) {
            graphs.add(describe(d.root()));
        }
        assertThat(graphs.getFirst()).isEqualTo("raw{name=r,ro=true,direct=false,no-flush=true,discard=UNMAP,"
                + "file=file{name=f,ro=true,direct=false,no-flush=false,discard=UNMAP}}");
        assertThat(graphs).allMatch(g -> g.equals(graphs.getFirst()));
    }

    static Stream<Arguments> cacheCombinations() {
        List<Arguments> out = new ArrayList<>();
        List<String> explicit = List.of("", "on", "off");
        for (CacheMode mode : CacheMode.values()) {
            for (String wb : explicit) {
                for (String direct : explicit) {
                    for (String noFlush : explicit) {
                        out.add(Arguments.of(mode, wb, direct, noFlush));
                    }
                }
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "cache={0} writeback={1} direct={2} no-flush={3}")
    @MethodSource("cacheCombinations")
    void explicitCacheKeysWinOverTheCacheModeAndTheChildInheritsThem(CacheMode mode, String wb, String direct,
                                                                      String noFlush) throws Exception {
        StringBuilder text = new StringBuilder("file=" + image + ",format=raw,cache=" + mode.canonicalName());
        if (!wb.isEmpty()) {
            text.append(",cache.writeback=").append(wb);
        }
        if (!direct.isEmpty()) {
            text.append(",cache.direct=").append(direct);
        }
        if (!noFlush.isEmpty()) {
            text.append(",cache.no-flush=").append(noFlush);
        }
        boolean expectWriteback = wb.isEmpty() ? mode.options().writeback() : wb.equals("on");
        boolean expectDirect = direct.isEmpty() ? mode.options().direct() : direct.equals("on");
        boolean expectNoFlush = noFlush.isEmpty() ? mode.options().noFlush() : noFlush.equals("on");
        try (Drive d = drive(text.toString())) {
            assertThat(d.writeback()).as("writeback").isEqualTo(expectWriteback);
            NodeSettings root = d.root().settings();
            NodeSettings file = d.root().child("file").settings();
            assertThat(root.direct()).as("root direct").isEqualTo(expectDirect);
            assertThat(root.noFlush()).as("root no-flush").isEqualTo(expectNoFlush);
            assertThat(file.direct()).as("file direct").isEqualTo(expectDirect);
            assertThat(file.noFlush()).as("file no-flush").isEqualTo(expectNoFlush);
            assertThat(d.cacheOptions()).isEqualTo(new io.jblock.block.CacheOptions(expectWriteback, expectDirect,
                    expectNoFlush));
        }
    }

    @Test
    void noFlushIsInheritedByTheChildUnlessSetOnIt() throws Exception {
        try (Drive d = drive("file=" + image + ",format=raw,cache.no-flush=on")) {
            assertThat(d.root().child("file").settings().noFlush()).isTrue();
        }
        try (Drive d = drive("file=" + image + ",format=raw,cache.no-flush=on,file.cache.no-flush=off")) {
            assertThat(d.root().settings().noFlush()).isTrue();
            assertThat(d.root().child("file").settings().noFlush()).isFalse();
        }
        try (Drive d = drive("file=" + image + ",format=raw,cache=unsafe,file.cache.no-flush=off")) {
            assertThat(d.root().child("file").settings().noFlush()).isFalse();
        }
        try (Drive d = drive("file=" + image + ",format=raw,file.cache.no-flush=on")) {
            assertThat(d.root().settings().noFlush()).isFalse();
            assertThat(d.root().child("file").settings().noFlush()).isTrue();
        }
    }

    @Test
    void readOnlyIsInheritedAndChildrenDefaultToDiscardUnmap() throws Exception {
        try (Drive d = drive("file=" + image + ",format=raw,read-only=on")) {
            assertThat(d.isReadOnly()).isTrue();
            assertThat(d.root().child("file").isReadOnly()).isTrue();
            assertThat(d.root().settings().discard()).isEqualTo(DiscardMode.IGNORE);
            assertThat(d.root().child("file").settings().discard()).isEqualTo(DiscardMode.UNMAP);
        }
        try (Drive d = drive("file=" + image + ",format=raw,file.discard=ignore")) {
            assertThat(d.root().child("file").settings().discard()).isEqualTo(DiscardMode.IGNORE);
        }
    }

    @Test
    void onlyTheRootIsProbedAndAFileChildIsAlwaysAProtocol() throws Exception {
        Path qcow2 = dir.resolve("magic.img");
        byte[] head = new byte[4096];
        head[0] = 'Q';
        head[1] = 'F';
        head[2] = 'I';
        head[3] = (byte) 0xfb;
        head[7] = 3; // version 3: with version 0 or 1, QEMU's qcow2 probe does not claim the file
        Files.write(qcow2, head);
        // Probed as qcow2, whose header check then refuses it (a zero cluster_bits).
        assertThatThrownBy(() -> drive("file=" + qcow2)).hasMessage("Unsupported cluster size: 2^0");
        try (Drive d = drive("format=raw,file.filename=" + qcow2)) {
            assertThat(d.root().child("file").driverName()).isEqualTo("file");
        }
        List<String> warnings = new ArrayList<>();
        DriveConfig c = new DriveConfig();
        c.options = new NodeOptions(KeyValueParser.parse("file.filename=" + image, null));
        c.warnings = warnings::add;
        try (Drive d = DriveOpener.standard().open(c)) {
            assertThat(d.root().driverName()).isEqualTo("raw");
        }
        assertThat(warnings).singleElement().asString()
                .startsWith("WARNING: Image format was not specified for '" + image + "' and probing guessed raw.");
    }

    @Test
    void theFilePrefixIsStrippedOnlyFromFileNames() throws Exception {
        try (Drive d = drive("file=file:" + image + ",format=raw")) {
            assertThat(d.length()).isEqualTo(1 << 20);
        }
        assertThatThrownBy(() -> drive("format=raw,file.filename=file:" + image))
                .hasMessage("Could not open 'file:" + image + "': No such file or directory");
    }

    @Test
    void detectZeroesOnTheRootNodeReachesTheDrive() throws Exception {
        DriveConfig c = new DriveConfig();
        c.options = new NodeOptions(Keyval.parseBlockdev("raw,discard=unmap,detect-zeroes=unmap,file.driver=file,"
                + "file.filename=" + image));
        try (Drive d = DriveOpener.standard().open(c)) {
            assertThat(d.detectZeroes()).isEqualTo(io.jblock.block.DetectZeroes.UNMAP);
        }
        try (Drive d = drive("file=" + image + ",format=raw,discard=unmap,detect-zeroes=on")) {
            assertThat(d.detectZeroes()).isEqualTo(io.jblock.block.DetectZeroes.ON);
        }
    }

    @Test
    void aMemoryDiskOpensFromAnyOfTheThreeSyntaxes() throws Exception {
        try (Drive a = drive("driver=memory,size=1M"); Drive b = blockdev("memory,size=1M");
             Drive c = json("{\"driver\":\"memory\",\"size\":1048576}")) {
            assertThat(a.length()).isEqualTo(b.length()).isEqualTo(c.length()).isEqualTo(1 << 20);
        }
    }

    @Test
    void keyvalListsAndNestingFlattenToDottedKeys() throws Exception {
        assertThat(Keyval.parseBlockdev("raw,file.driver=file,file.filename=a,,b,x.1=b,x.0=a"))
                .containsEntry("driver", "raw").containsEntry("file.filename", "a,b")
                .containsEntry("x.0", "a").containsEntry("x.1", "b");
        assertThat(Keyval.parse("a=1,a=2", null)).containsEntry("a", "2");
    }

    @Test
    void jsonValuesBecomeTheTextQemusOptionCodeSees() throws Exception {
        assertThat(JsonOptions.parse("json:{\"a\":true,\"b\":false,\"c\":1e3,\"d\":-5,\"e\":0.1,\"f\":{\"g\":'h'},"
                + "\"l\":[1,2],\"n\":null,\"o\":{}}"))
                .containsEntry("a", "on").containsEntry("b", "off").containsEntry("c", "1000")
                .containsEntry("d", "-5").containsEntry("e", "0.10000000000000001").containsEntry("f.g", "h")
                .containsEntry("l.0", "1").containsEntry("l.1", "2").containsEntry("n", null)
                .containsEntry("o", null);
    }
}
