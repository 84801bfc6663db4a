package io.jblock.options;

import io.jblock.block.AioMode;
import io.jblock.block.CacheMode;
import io.jblock.block.CacheOptions;
import io.jblock.block.Choice;
import io.jblock.block.DetectZeroes;
import io.jblock.block.DiscardMode;
import io.jblock.block.NodeOptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Every documented spelling of every enum parses to the right value, and the
 * real QEMU tools take exactly the same spellings (volatile excepted: a
 * jblock extension).
 */
class ChoiceSpellingsTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void image() throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("t.img").toFile(), "rw")) {
            f.setLength(1 << 20);
        }
    }

    static Stream<Arguments> cacheSpellings() {
        return Stream.of(
                Arguments.of("writeback", CacheMode.WRITEBACK, true, false, false),
                Arguments.of("writethrough", CacheMode.WRITETHROUGH, false, false, false),
                Arguments.of("none", CacheMode.NONE, true, true, false),
                Arguments.of("off", CacheMode.NONE, true, true, false),
                Arguments.of("directsync", CacheMode.DIRECTSYNC, false, true, false),
                Arguments.of("unsafe", CacheMode.UNSAFE, true, false, true),
                Arguments.of("volatile", CacheMode.UNSAFE, true, false, true));
    }

    @ParameterizedTest(name = "cache={0}")
    @MethodSource("cacheSpellings")
    void everyCacheSpellingSetsExactlyItsThreeKnobs(String spelling, CacheMode mode, boolean writeback,
                                                     boolean direct, boolean noFlush) throws Exception {
        assertThat(Choice.parse(CacheMode.class, spelling)).contains(mode);
        assertThat(CacheModes.parse(spelling)).contains(new CacheOptions(writeback, direct, noFlush));
        DriveConfig c = DriveConfig.parseDrive("file=x.img,cache=" + spelling);
        assertThat(c.cache.writeback()).isEqualTo(writeback);
        assertThat(c.options.has("cache.direct")).isEqualTo(direct);
        assertThat(c.options.has("cache.no-flush")).isEqualTo(noFlush);
    }

    @Test
    void theTableListsEverySpellingAndNoOther() {
        assertThat(Choice.allNames(CacheMode.class))
                .containsExactly("writeback", "writethrough", "none", "off", "directsync", "unsafe", "volatile");
        assertThat(Choice.allNames(DiscardMode.class)).containsExactly("ignore", "off", "unmap", "on");
        assertThat(Choice.allNames(DetectZeroes.class)).containsExactly("off", "on", "unmap");
        assertThat(Choice.allNames(AioMode.class)).containsExactly("threads", "native", "io_uring");
        assertThat(Choice.parse(CacheMode.class, "Writeback")).isEmpty();
        assertThat(Choice.parse(CacheMode.class, " none")).isEmpty();
    }

    @Test
    void qemuTakesEveryCacheSpellingButVolatile() {
        for (String spelling : Choice.allNames(CacheMode.class)) {
            QemuTool.Result r = QemuTool.run(dir, "qemu-io", "-f", "raw", "-t", spelling, "-c", "quit", "t.img");
            if (spelling.equals(CacheModes.JBLOCK_ONLY_SPELLING)) {
                assertThat(r.exitCode()).as("qemu-io -t volatile").isNotZero();
                assertThat(CacheModes.parseQemu(spelling)).isEmpty();
            } else {
                assertThat(r.exitCode()).as("qemu-io -t %s: %s", spelling, r.output()).isZero();
                assertThat(CacheModes.parseQemu(spelling)).isEqualTo(CacheModes.parse(spelling));
            }
        }
    }

    static Stream<Arguments> discardSpellings() {
        return Stream.of(Arguments.of("ignore", DiscardMode.IGNORE), Arguments.of("off", DiscardMode.IGNORE),
                Arguments.of("unmap", DiscardMode.UNMAP), Arguments.of("on", DiscardMode.UNMAP));
    }

    @ParameterizedTest(name = "discard={0}")
    @MethodSource("discardSpellings")
    void everyDiscardSpellingParsesAndQemuTakesIt(String spelling, DiscardMode mode) throws Exception {
        assertThat(Choice.parse(DiscardMode.class, spelling)).contains(mode);
        assertThat(DriveConfig.parseDrive("file=x,discard=" + spelling).discard).isEqualTo(mode);
        assertThat(QemuTool.run(dir, "qemu-io", "-f", "raw", "-d", spelling, "-c", "quit", "t.img").exitCode())
                .isZero();
    }

    static Stream<Arguments> detectZeroesSpellings() {
        return Stream.of(Arguments.of("off", DetectZeroes.OFF), Arguments.of("on", DetectZeroes.ON),
                Arguments.of("unmap", DetectZeroes.UNMAP));
    }

    @ParameterizedTest(name = "detect-zeroes={0}")
    @MethodSource("detectZeroesSpellings")
    void everyDetectZeroesSpellingParsesAndQemuTakesIt(String spelling, DetectZeroes mode) throws Exception {
        assertThat(Choice.parse(DetectZeroes.class, spelling)).contains(mode);
        assertThat(DriveConfig.parseDrive("file=x,discard=unmap,detect-zeroes=" + spelling).detectZeroes)
                .isEqualTo(mode);
        assertThat(QemuTool.run(dir, "qemu-io", "-c",
                "open -o driver=raw,discard=unmap,detect-zeroes=" + spelling + " t.img").output()).isEmpty();
    }

    static Stream<Arguments> aioSpellings() {
        return Stream.of(Arguments.of("threads", AioMode.THREADS), Arguments.of("native", AioMode.NATIVE),
                Arguments.of("io_uring", AioMode.IO_URING));
    }

    @ParameterizedTest(name = "aio={0}")
    @MethodSource("aioSpellings")
    void everyAioSpellingParsesAndQemuTakesIt(String spelling, AioMode mode) throws Exception {
        assertThat(Choice.parse(AioMode.class, spelling)).contains(mode);
        assertThat(DriveConfig.parseDrive("file=x,aio=" + spelling).aio).isEqualTo(mode);
        NodeOptions o = NodeOptions.of("aio", spelling);
        assertThat(o.takeChoice("aio", AioMode.class)).contains(mode);
        assertThat(QemuTool.run(dir, "qemu-io", "-f", "raw", "-t", "none", "-i", spelling, "-c", "quit", "t.img")
                .exitCode()).isZero();
    }

    static Stream<Arguments> booleanSpellings() {
        return Stream.of(Arguments.of("on", true), Arguments.of("yes", true), Arguments.of("true", true),
                Arguments.of("y", true), Arguments.of("off", false), Arguments.of("no", false),
                Arguments.of("false", false), Arguments.of("n", false));
    }

    @ParameterizedTest(name = "boolean {0}")
    @MethodSource("booleanSpellings")
    void everyBooleanSpellingParsesAndQemuTakesIt(String spelling, boolean value) throws Exception {
        assertThat(NodeOptions.parseBool("k", spelling)).isEqualTo(value);
        assertThat(DriveConfig.parseDrive("file=x,snapshot=" + spelling).snapshot).isEqualTo(value);
        assertThat(DriveConfig.parseDrive("file=x,read-only=" + spelling).readOnly).isEqualTo(value);
        assertThat(QemuTool.run(dir, "qemu-io", "-c",
                "open -o driver=raw,cache.no-flush=" + spelling + " t.img").output()).isEmpty();
    }

    @Test
    void booleansAreCaseSensitiveAndTakeNoNumbers() {
        for (String bad : List.of("ON", "True", "1", "0", "", "yes ")) {
            assertThatThrownBy(() -> NodeOptions.parseBool("cache.direct", bad))
                    .hasMessage("Parameter 'cache.direct' expects 'on' or 'off'");
        }
        assertThat(NodeOptions.TRUE_SPELLINGS).hasSize(4);
        assertThat(NodeOptions.FALSE_SPELLINGS).hasSize(4);
    }
}
