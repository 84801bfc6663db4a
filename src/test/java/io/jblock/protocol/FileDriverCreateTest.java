package io.jblock.protocol;

import io.jblock.block.BlockException;
import io.jblock.block.Errno;
import io.jblock.block.Prealloc;
import io.jblock.engine.EngineFile;
import io.jblock.engine.PosixFile;
import io.jblock.engine.ThreadsEngine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/** The file protocol's image creation (what qemu-img create does below the format); qemu-img parity is in cli/img. */
class FileDriverCreateTest {
    private static final long MIB = 1 << 20;

    @TempDir
    Path dir;

    private final FileDriver driver = new FileDriver();

    /** Creates {@code name} in the test's folder; returns its path. */
    private Path create(String name, long size, Prealloc mode) throws BlockException {
        Path p = dir.resolve(name);
        driver.create(p.toString(), size, mode);
        return p;
    }

    private static long allocated(Path p) throws Exception {
        try (EngineFile f = ThreadsEngine.INSTANCE.open(p, true, false)) {
            return f.allocatedSize();
        }
    }

    /** Where data lies, from the start: the first data offset and the hole after it. */
    private static long[] firstExtent(Path p) throws Exception {
        try (EngineFile f = ThreadsEngine.INSTANCE.open(p, true, false)) {
            long data = f.seekData(0);
            return new long[] {data, data < 0 ? -1 : f.seekHole(data)};
        }
    }

    @Test
    void theSizeIsRoundedUpToASector() throws Exception {
        Path p = create("a.img", 513, Prealloc.OFF);
        assertThat(Files.size(p)).isEqualTo(1024);
    }

    @Test
    void withoutPreallocationOnlyTheFirstBlockIsWritten() throws Exception {
        Path big = create("big.img", 8 * MIB, Prealloc.OFF);
        assertThat(Files.size(big)).isEqualTo(8 * MIB);
        assertThat(firstExtent(big)).containsExactly(0, 4096);
        Path small = create("small.img", 1000, Prealloc.OFF);
        assertThat(Files.size(small)).isEqualTo(1024);
        assertThat(Files.readAllBytes(small)).containsOnly(0);
    }

    @Test
    void fallocReservesEveryBlockYetOnlyTheFirstReadsAsData() throws Exception {
        Path p = create("f.img", 4 * MIB, Prealloc.FALLOC);
        assertThat(Files.size(p)).isEqualTo(4 * MIB);
        assertThat(allocated(p)).isGreaterThanOrEqualTo(4 * MIB);
        assertThat(firstExtent(p)).containsExactly(0, 4096);
    }

    @Test
    void fullWritesZeroesEverywhere() throws Exception {
        Path p = create("full.img", 3 * MIB + 512, Prealloc.FULL);
        assertThat(Files.size(p)).isEqualTo(3 * MIB + 512);
        assertThat(firstExtent(p)).containsExactly(0, 3 * MIB + 512);
        assertThat(Files.readAllBytes(p)).containsOnly(0);
    }

    @ParameterizedTest
    @EnumSource(value = Prealloc.class, names = {"OFF", "FALLOC", "FULL"})
    void anOldFileIsEmptiedFirst(Prealloc mode) throws Exception {
        Path p = dir.resolve("old.img");
        Files.write(p, new byte[] {7, 7, 7, 7});
        driver.create(p.toString(), 8192, mode);
        assertThat(Files.readAllBytes(p)).hasSize(8192).containsOnly(0);
    }

    @Test
    void metadataPreallocationIsRefusedAfterTheFileIsCreatedAndEmptied() throws Exception {
        Path p = dir.resolve("m.img");
        Files.write(p, new byte[] {7});
        BlockException e = catchThrowableOfType(BlockException.class,
                () -> driver.create(p.toString(), MIB, Prealloc.METADATA));
        assertThat(e).hasMessage("Unsupported preallocation mode: metadata");
        assertThat(e.errno()).isEqualTo(Errno.ENOTSUP);
        assertThat(Files.size(p)).isZero();
    }

    @Test
    void failuresSayWhatFailedInQemusWordsAndKeepTheErrno() {
        String missing = dir.resolve("no/such.img").toString();
        BlockException e = catchThrowableOfType(BlockException.class,
                () -> driver.create(missing, MIB, Prealloc.OFF));
        assertThat(e).hasMessage("Could not create '" + missing + "': No such file or directory");
        assertThat(e.errno()).isEqualTo(Errno.ENOENT);
    }

    @Test
    void aSizeTheFileSystemCannotHoldFailsWithEfbig() {
        String p = dir.resolve("huge.img").toString();
        BlockException e = catchThrowableOfType(BlockException.class,
                () -> driver.create(p, Long.MAX_VALUE - 511, Prealloc.OFF));
        assertThat(e).hasMessage("Could not resize file: File too large");
        assertThat(e.errno()).isEqualTo(Errno.EFBIG);
    }

    @Test
    void theLargestSizesWrapWhenRoundedAndAreRefused() {
        assertThat(FileCreation.roundUpToSector(-1)).isZero();
        assertThat(FileCreation.roundUpToSector(Long.MAX_VALUE)).isNegative();
        String p = dir.resolve("wrapped.img").toString();
        BlockException e = catchThrowableOfType(BlockException.class,
                () -> driver.create(p, Long.MAX_VALUE, Prealloc.OFF));
        assertThat(e).hasMessage("Could not resize file: Invalid argument");
    }

    @Test
    void anImageAnotherProcessWritesIsRefusedNotClobbered() throws Exception {
        Path p = dir.resolve("busy.img");
        Files.write(p, new byte[] {7});
        try (PosixFile user = PosixFile.openOrCreate(p.toString())) {
            user.lockSharedByte(201); // QEMU's "does not share write" byte
            BlockException e = catchThrowableOfType(BlockException.class,
                    () -> driver.create(p.toString(), MIB, Prealloc.OFF));
            assertThat(e).hasMessage("Failed to get \"write\" lock\nIs another process using the image [" + p
                    + "]?");
            assertThat(e.errno()).isEqualTo(Errno.EAGAIN);
        }
        assertThat(Files.readAllBytes(p)).containsExactly(7);
    }

    @Test
    void anImageAnotherProcessResizesIsRefusedAsAnUnsharedResize() throws Exception {
        Path p = dir.resolve("resized.img");
        try (PosixFile user = PosixFile.openOrCreate(p.toString())) {
            user.lockSharedByte(103); // QEMU's "holds resize" byte
            BlockException e = catchThrowableOfType(BlockException.class,
                    () -> driver.create(p.toString(), MIB, Prealloc.OFF));
            assertThat(e).hasMessageStartingWith("Failed to get shared \"resize\" lock\n");
        }
    }

    @Test
    void driversWithoutCreationSaySoByName() {
        BlockException e = catchThrowableOfType(BlockException.class,
                () -> new MemoryDriver().create(dir.resolve("x").toString(), MIB, Prealloc.OFF));
        assertThat(e).hasMessage("Driver 'memory' does not support image creation");
        assertThat(e.errno()).isEqualTo(Errno.ENOTSUP);
    }
}
