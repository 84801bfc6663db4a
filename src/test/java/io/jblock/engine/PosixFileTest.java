package io.jblock.engine;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

class PosixFileTest {
    private static final int ENOENT = 2;
    private static final int EISDIR = 21;

    @TempDir
    Path dir;

    private static long allocated(Path p) throws Exception {
        try (EngineFile f = ThreadsEngine.INSTANCE.open(p, true, false)) {
            return f.allocatedSize();
        }
    }

    @Test
    void openOrCreateMakesAMissingFileEmptyAndKeepsAnExistingOnesContents() throws Exception {
        Path p = dir.resolve("new.img");
        try (PosixFile f = PosixFile.openOrCreate(p.toString())) {
            assertThat(Files.size(p)).isZero();
        }
        Files.write(p, new byte[] {1, 2, 3});
        try (PosixFile f = PosixFile.openOrCreate(p.toString())) {
            assertThat(Files.readAllBytes(p)).containsExactly(1, 2, 3);
        }
    }

    @Test
    void openOrCreateReportsTheErrnoOfWhatCannotBeAFile() {
        ErrnoException dirError = catchThrowableOfType(ErrnoException.class,
                () -> PosixFile.openOrCreate(dir.toString()));
        assertThat(dirError.errno()).isEqualTo(EISDIR);
        assertThat(dirError.reason()).isEqualTo("Is a directory");
        ErrnoException missing = catchThrowableOfType(ErrnoException.class,
                () -> PosixFile.openOrCreate(dir.resolve("no/such.img").toString()));
        assertThat(missing.errno()).isEqualTo(ENOENT);
        assertThat(missing.getMessage()).isEqualTo("open failed: No such file or directory");
    }

    @Test
    void aTrailingSlashReachesTheKernelAsGiven() throws Exception {
        Path p = dir.resolve("plain.img");
        Files.createFile(p);
        // Path.of would drop the slash and open the file; open(2) refuses a file named as a directory.
        ErrnoException e = catchThrowableOfType(ErrnoException.class, () -> PosixFile.openOrCreate(p + "/"));
        assertThat(e.reason()).isIn("Not a directory", "Is a directory");
    }

    @Test
    void truncateGrowsWithAHoleAndPreallocateReservesBlocks() throws Exception {
        Path p = dir.resolve("t.img");
        try (PosixFile f = PosixFile.openOrCreate(p.toString())) {
            f.truncate(1 << 20);
            assertThat(Files.size(p)).isEqualTo(1 << 20);
            assertThat(allocated(p)).isZero();
            f.preallocate(0, 2 << 20);
            assertThat(Files.size(p)).isEqualTo(2 << 20);
            assertThat(allocated(p)).isGreaterThanOrEqualTo(2 << 20);
            f.truncate(0);
            assertThat(Files.size(p)).isZero();
        }
    }

    @Test
    void writeZeroesWritesEveryByteInChunksIncludingAShortLastOne() throws Exception {
        Path p = dir.resolve("z.img");
        byte[] ones = new byte[10000];
        java.util.Arrays.fill(ones, (byte) 1);
        Files.write(p, ones);
        try (PosixFile f = PosixFile.openOrCreate(p.toString())) {
            f.writeZeroes(100, 9000, 4096);
            f.sync();
        }
        byte[] after = Files.readAllBytes(p);
        assertThat(after).hasSize(10000);
        for (int i = 0; i < after.length; i++) {
            assertThat(after[i]).as("byte %d", i).isEqualTo((byte) (i >= 100 && i < 9100 ? 0 : 1));
        }
    }

    @Test
    void aSharedByteLockIsSeenByOtherOpensNotByItsOwnAndEndsWithClose() throws Exception {
        Path p = dir.resolve("l.img");
        try (PosixFile third = PosixFile.openOrCreate(p.toString())) {
            PosixFile holder = PosixFile.openOrCreate(p.toString());
            PosixFile other = PosixFile.openOrCreate(p.toString());
            try {
                holder.lockSharedByte(201);
                assertThat(holder.isByteLockedByOthers(201)).isFalse();
                assertThat(other.isByteLockedByOthers(201)).isTrue();
                assertThat(other.isByteLockedByOthers(200)).isFalse();
                assertThat(other.isByteLockedByOthers(202)).isFalse();
                // Shared locks do not conflict with each other.
                other.lockSharedByte(201);
            } finally {
                holder.close();
            }
            try {
                assertThat(third.isByteLockedByOthers(201)).as("still held by the other open").isTrue();
            } finally {
                other.close();
            }
            assertThat(third.isByteLockedByOthers(201)).isFalse();
        }
    }
}
