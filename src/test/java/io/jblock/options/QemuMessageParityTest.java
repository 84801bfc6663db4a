package io.jblock.options;

import io.jblock.block.BlockException;
import io.jblock.block.CacheOptions;
import io.jblock.block.CacheMode;
import io.jblock.block.DiscardMode;
import io.jblock.block.Drive;
import io.jblock.block.NodeOptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.RandomAccessFile;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * For each bad option, value or pair that QEMU 7.2's tools can show, jblock
 * fails with the very text the real tool prints (the tool is run in the test).
 */
class QemuMessageParityTest {
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

    /** What jblock says opening t.img with qemu-io's defaults and {@code open -o OPTS}. */
    private static String jblockOpenO(String opts) {
        DriveConfig c = new DriveConfig();
        c.filename = image.toString();
        c.cache = CacheMode.WRITETHROUGH.options(); // qemu-io's default
        c.discard = DiscardMode.UNMAP;              // qemu-io opens with BDRV_O_UNMAP
        return failureOf(() -> {
            c.options = new NodeOptions(KeyValueParser.parse(inDir(opts), null));
            return c;
        });
    }

    /** What jblock says for {@code --image-opts OPTS}. */
    private static String jblockImageOpts(String opts) {
        return failureOf(() -> {
            DriveConfig c = new DriveConfig();
            c.options = new NodeOptions(KeyValueParser.parse(inDir(opts), null));
            return c;
        });
    }

    private static String jblockFilename(String filename) {
        return failureOf(() -> {
            DriveConfig c = new DriveConfig();
            c.filename = inDir(filename);
            return c;
        });
    }

    @FunctionalInterface
    private interface ConfigSource {
        DriveConfig get() throws BlockException;
    }

    /** The tools run in {@link #dir}; jblock runs elsewhere, so its t.img is spelled out and spelled back. */
    private static String inDir(String text) {
        return text.replace("t.img", image.toString());
    }

    private static String failureOf(ConfigSource source) {
        return failureIn(source).replace(image.toString(), "t.img");
    }

    private static String failureIn(ConfigSource source) {
        try {
            DriveConfig c = source.get();
            try (Drive d = DriveOpener.standard().open(c)) {
                throw new AssertionError("jblock opened the drive, QEMU did not: " + d.root().driverName());
            }
        } catch (BlockException e) {
            return e.getMessage();
        }
    }

    @ParameterizedTest(name = "open -o {0}")
    @ValueSource(strings = {
            "driver=raw,cache.no-flush=bogus",
            "driver=raw,cache.direct=bogus",
            "driver=raw,cache.writeback=bogus",
            "driver=raw,read-only=bogus",
            "driver=raw,auto-read-only=bogus",
            "driver=raw,force-share=bogus",
            "driver=raw,foo=1",
            "driver=foo",
            "driver=raw,file.foo=1",
            "driver=raw,file.driver=foo",
            "driver=raw,discard=bogus",
            "driver=raw,discard=ON",
            "driver=raw,detect-zeroes=bogus",
            "driver=raw,discard=off,detect-zeroes=unmap",
            "driver=raw,discard=ignore,detect-zeroes=unmap",
            "driver=raw,file.discard=ignore,file.detect-zeroes=unmap",
            "driver=raw,file.aio=native",
            "driver=raw,file.aio=bogus",
            "driver=raw,aio=native",
            "driver=raw,cache=none",
            "driver=raw,snapshot=on",
            "driver=raw,read-only=on,readonly=on",
            "driver=raw,node-name=1x",
            "driver=raw,node-name=",
            "driver=raw,node-name=a234567890123456789012345678901x",
            "driver=raw,node-name=a,file.node-name=a",
            "driver=raw,file.filename=t.img",
            "driver=raw,file=t.img",
            "driver=raw,format=raw",
            "driver=raw,offset=1.5",
            "driver=raw,size=abc",
            "driver=raw,offset=99999999999999999999",
            "driver=raw,offset=2M",
            "driver=raw,size=-99999999999999999999",
            "driver=raw,offset=-0",
            "driver=raw,offset=16E",
            "driver=raw,offset=16Ex",
            "driver=raw,size=1.5e3k",
            "driver=raw,size=1.5e400k",
            "driver=raw,offset=0x2M",
            "driver=raw,offset=\t+2M",
            "file.foo=1",
            "cache.no-flush=maybe",
    })
    void openWithOptionsFailsAsQemuIoDoes(String opts) {
        String qemu = QemuTool.errorAfter(QemuTool.run(dir, "qemu-io", "-c", "open -o " + opts + " t.img"),
                "can't open device t.img: ");
        assertThat(jblockOpenO(opts)).isEqualTo(qemu);
    }

    @ParameterizedTest(name = "--image-opts {0}")
    @ValueSource(strings = {
            "driver=raw,file.driver=file,file.filename=t.img,foo=1",
            "foo=bar",
            "filename=t.img",
            "driver=file",
            "driver=file,filename=",
            "driver=file,filename=t.img,foo=1",
            "driver=file,filename=t.img,file.filename=x",
            "driver=raw",
            "driver=raw,,x",
            "driver=raw,filename=t.img",
            "driver=raw,file=t.img",
            "driver=raw,file.filename=t.img,file=t.img",
            "driver=raw,file.filename=t.img,backing.driver=file",
            "driver=raw,file.filename=t.img,read-only=off,force-share=on",
            "driver=raw,file.filename=file:t.img",
            "driver=raw,file.driver=raw,file.file.filename=t.img,file.foo=1",
            "file.filename=t.img,file.foo=1",
            "id=ok,driver=raw,file.filename=t.img",
            "driver=raw,file.filename=t.img,cache.writeback=off",
    })
    void imageOptsFailAsQemuImgDoes(String opts) {
        String qemu = QemuTool.errorAfter(QemuTool.run(dir, "qemu-img", "info", "--image-opts", opts),
                "Could not open '" + opts + "': ");
        assertThat(jblockImageOpts(opts)).isEqualTo(qemu);
    }

    @ParameterizedTest(name = "--image-opts {0}")
    @ValueSource(strings = {"id=1x,driver=raw,file.filename=t.img", "id=,driver=raw"})
    void aBadIdFailsWhileParsingAsQemuImgDoes(String opts) {
        String qemu = QemuTool.errorAfter(QemuTool.run(dir, "qemu-img", "info", "--image-opts", opts),
                "qemu-img: ");
        assertThatThrownBy(() -> KeyValueParser.parse(opts, null)).hasMessage(qemu);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {
            "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"t.img\"},\"foo\":1}",
            "json:{\"driver\":\"raw\"",
            "json:[1]",
            "json:",
            "json:\"str\"",
            "json:1",
            "json:null",
            "json:{}",
            "json:{\"driver\":\"foo\"}",
            "json:{\"driver\":\"raw\",}",
            "json:{\"driver\" \"raw\"}",
            "json:{driver:\"raw\"}",
            "json:{\"driver\":raw}",
            "json:{\"driver\":\"raw\"}}",
            "json:{\"a\":1 \"b\":2}",
            "json:{1:2}",
            "json:{\"a\":tru}",
            "json:{\"a\":\"\\x\"}",
            "json:{\"a\":[1,}",
            "json:{\"a\":[1 2]}",
            "json:[",
            "json:{\"a\":-}",
            "json:{\"a\":01}",
            "json:{\"driver\":\"raw\",\"driver\":\"file\",\"filename\":\"t.img\"}",
            "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"t.img\"}} trailing",
            "json:{\"driver\":\"raw\",\"file\":{}}",
            "json:{\"driver\":\"raw\",\"file\":\"t.img\"}",
            "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"t.img\"},\"x\":null}",
            "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"t.img\"},\"x\":{}}",
            "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"t.img\"},\"read-only\":1}",
            "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"t.img\"},\"cache\":{\"direct\":\"x\"}}",
            "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"t.img\"},\"size\":1.5}",
            "json:{\"driver\":\"file\",\"filename\":\"t.img\",\"aio\":\"bogus\"}",
            "json:{\"driver\":\"file\",\"filename\":\"t.img\",\"aio\":\"native\"}",
            "json:{\"driver\":\"file\",\"filename\":\"t.img\",\"discard\":\"bogus\"}",
            "json:{\"driver\":\"file\",\"filename\":\"t.img\",\"detect-zeroes\":\"bogus\"}",
            "json:{\"driver\":\"file\",\"filename\":\"t.img\",\"node-name\":\"1\"}",
            "json:{'driver':'raw','file':{'driver':'file','filename':'t.img'},'bar':'x'}",
            "foo:bar",
    })
    void jsonAndProtocolFileNamesFailAsQemuImgDoes(String filename) {
        String qemu = QemuTool.errorAfter(QemuTool.run(dir, "qemu-img", "info", filename),
                "Could not open '" + filename + "': ");
        assertThat(jblockFilename(filename)).isEqualTo(qemu);
    }

    @ParameterizedTest(name = "--object {0}")
    @ValueSource(strings = {
            "a=1,a.b=2", "a.b=2,a=1", "=1", "a..b=1", "a.=1", ".a=1", "a,b", "qom-type=x,a b=1",
            "qom-type=x,a.0=1,a.x=2", "qom-type=x,a.0=1,a.2=2", "qom-type=x,a.1=1", "qom-type=x,0=1",
            "qom-type=x,a.b.c", "qom-type=x,1a=2",
    })
    void keyvalFailsAsQemuImgObjectParsingDoes(String text) {
        String qemu = QemuTool.errorAfter(QemuTool.run(dir, "qemu-img", "info", "--object", text, "t.img"),
                "qemu-img: ");
        assertThatThrownBy(() -> Keyval.parse(text, "qom-type")).hasMessage(qemu);
    }

    @org.junit.jupiter.api.Test
    void keyvalRefusesFragmentsOf128CharactersAsQemuDoes() {
        String longName = "a".repeat(128);
        for (String text : java.util.List.of("qom-type=x," + longName + "=1", "qom-type=x,b." + longName + "=1")) {
            String qemu = QemuTool.errorAfter(QemuTool.run(dir, "qemu-img", "info", "--object", text, "t.img"),
                    "qemu-img: ");
            assertThatThrownBy(() -> Keyval.parse(text, "qom-type")).hasMessage(qemu);
        }
        org.assertj.core.api.Assertions.assertThatCode(() -> Keyval.parse("a" + "b".repeat(126) + "=1", null))
                .doesNotThrowAnyException();
    }

    @ParameterizedTest(name = "qemu-io -t {0}")
    @ValueSource(strings = {"bogus", "WriteBack", "", CacheModes.JBLOCK_ONLY_SPELLING})
    void aBadCacheModeForTheToolsReadsAsQemuIoAndQemuNbdSay(String mode) {
        assertThat(CacheModes.parseQemu(mode)).isEmpty();
        assertThat(QemuTool.errorAfter(QemuTool.run(dir, "qemu-io", "-t", mode, "-c", "quit", "t.img"), "qemu-io: "))
                .isEqualTo(DriveMessages.qemuIoInvalidCache(mode));
        assertThat(QemuTool.errorAfter(QemuTool.run(dir, "qemu-nbd", "--cache=" + mode, "t.img"), "qemu-nbd: "))
                .isEqualTo(DriveMessages.qemuNbdInvalidCache(mode));
    }

    @ParameterizedTest(name = "discard {0}")
    @ValueSource(strings = {"bogus", "ON", ""})
    void aBadDiscardModeForTheToolsReadsAsQemuIoAndQemuNbdSay(String mode) {
        assertThat(io.jblock.block.Choice.parse(DiscardMode.class, mode)).isEmpty();
        assertThat(QemuTool.errorAfter(QemuTool.run(dir, "qemu-io", "-d", mode, "-c", "quit", "t.img"), "qemu-io: "))
                .isEqualTo(DriveMessages.qemuIoInvalidDiscard(mode));
        assertThat(QemuTool.errorAfter(QemuTool.run(dir, "qemu-nbd", "--discard=" + mode, "t.img"), "qemu-nbd: "))
                .isEqualTo(DriveMessages.qemuNbdInvalidDiscard(mode));
    }

    @ParameterizedTest(name = "aio {0}")
    @ValueSource(strings = {"bogus", "Threads"})
    void aBadAioModeForTheToolsReadsAsQemuIoAndQemuNbdSay(String mode) {
        assertThat(io.jblock.block.Choice.parse(io.jblock.block.AioMode.class, mode)).isEmpty();
        assertThat(QemuTool.errorAfter(QemuTool.run(dir, "qemu-io", "-i", mode, "-c", "quit", "t.img"), "qemu-io: "))
                .isEqualTo(DriveMessages.qemuIoInvalidAio(mode));
        assertThat(QemuTool.errorAfter(QemuTool.run(dir, "qemu-nbd", "--aio=" + mode, "t.img"), "qemu-nbd: "))
                .isEqualTo(DriveMessages.qemuNbdInvalidAio(mode));
    }

    @ParameterizedTest(name = "detect-zeroes {0}")
    @ValueSource(strings = {"bogus", "ON"})
    void aBadDetectZeroesModeForQemuNbdReadsAsItSays(String mode) {
        assertThat(QemuTool.errorAfter(QemuTool.run(dir, "qemu-nbd", "--detect-zeroes=" + mode, "t.img"),
                "qemu-nbd: ")).isEqualTo(DriveMessages.qemuNbdInvalidDetectZeroes(mode));
    }

    @org.junit.jupiter.api.Test
    void detectZeroesUnmapWithoutDiscardReadsAsQemuNbdSays() {
        assertThat(QemuTool.errorAfter(QemuTool.run(dir, "qemu-nbd", "--detect-zeroes=unmap", "t.img"),
                "qemu-nbd: ")).isEqualTo(DriveMessages.DETECT_ZEROES_UNMAP_NEEDS_DISCARD);
        assertThatThrownBy(() -> Drives.builder(image).format("raw")
                .detectZeroes(io.jblock.block.DetectZeroes.UNMAP).open())
                .hasMessage(DriveMessages.DETECT_ZEROES_UNMAP_NEEDS_DISCARD);
    }

    @org.junit.jupiter.api.Test
    void aioNativeWithoutDirectReadsAsQemuIoSays() {
        String qemu = QemuTool.errorAfter(QemuTool.run(dir, "qemu-io", "-i", "native", "-c", "quit", "t.img"),
                "can't open device t.img: ");
        DriveConfig c = new DriveConfig();
        c.filename = image.toString();
        c.aio = io.jblock.block.AioMode.NATIVE;
        c.cache = CacheOptions.WRITEBACK;
        assertThatThrownBy(() -> DriveOpener.standard().open(c)).hasMessage(qemu);
        assertThat(qemu).isEqualTo(DriveMessages.AIO_NATIVE_NEEDS_DIRECT);
    }
}
