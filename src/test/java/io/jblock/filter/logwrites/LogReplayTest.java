package io.jblock.filter.logwrites;

import io.jblock.cli.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;

/** {@code jblock img replay}: listing, replay to an entry, dropping unflushed writes, and bad logs. */
class LogReplayTest {
    @TempDir
    Path tmp;

    private record Run(int status, String out, String err) {
    }

    private static Run jblock(String tool, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Main.run(tool, args, new ByteArrayInputStream(new byte[0]), new PrintStream(out, true),
                new PrintStream(err, true));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** A log of: write 1 at 0, flush, write 2 at 4k with FUA, write 3 at 8k, discard 0 4k, (close) flush. */
    private Path makeLog(Path img) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(1 << 20);
        }
        Path log = tmp.resolve("d.log");
        Files.deleteIfExists(log);
        Files.createFile(log);
        Run r = jblock("qemu-io", "-t", "writeback", "--image-opts", "-c", "write -P 1 0 4k", "-c", "flush",
                "-c", "write -f -P 2 4k 4k", "-c", "write -P 3 8k 4k", "-c", "discard 0 4k",
                "driver=blklogwrites,file.filename=" + img + ",log.filename=" + log);
        assertThat(r.status()).as(r.err()).isZero();
        return log;
    }

    @Test
    void listShowsEntriesMarksAndNumberedFlushPoints() throws Exception {
        Path log = makeLog(tmp.resolve("d.img"));
        Run r = jblock("qemu-img", "replay", "--list", log.toString());
        assertThat(r.status()).isZero();
        assertThat(r.out()).isEqualTo("Log '" + log + "': 6 entries, 2 flush points, sector size 512\n"
                + "     0  write   offset 0 length 4096\n"
                + "     1  flush   flush point 1\n"
                + "     2  write   offset 4096 length 4096 FUA\n"
                + "     3  write   offset 8192 length 4096\n"
                + "     4  discard offset 0 length 4096\n"
                + "     5  flush   flush point 2\n");
    }

    @Test
    void replayToAnEntryRebuildsTheDiskAsItWasThen() throws Exception {
        Path img = tmp.resolve("d.img");
        Path log = makeLog(img);
        Path target = tmp.resolve("t.img");
        Run r = jblock("qemu-img", "replay", "--to", "4", log.toString(), target.toString());
        assertThat(r.status()).as(r.err()).isZero();
        byte[] t = Files.readAllBytes(target);
        assertThat(t[0]).isEqualTo((byte) 1);
        assertThat(t[4096]).isEqualTo((byte) 2);
        assertThat(t[8192]).isEqualTo((byte) 3);
        Path all = tmp.resolve("all.img");
        try (RandomAccessFile f = new RandomAccessFile(all.toFile(), "rw")) {
            f.setLength(1 << 20);
        }
        assertThat(jblock("qemu-img", "replay", "--to", "6", log.toString(), all.toString()).status()).isZero();
        assertThat(Files.mismatch(all, img)).as("replaying every entry gives the image").isEqualTo(-1);
    }

    @Test
    void dropUnflushedNeverDropsFlushedOrFuaWritesAndSaysWhatItDropped() throws Exception {
        Path log = makeLog(tmp.resolve("d.img"));
        WriteLog.Contents c = WriteLog.read(log);
        boolean sawDrop = false;
        for (long seed = 0; seed < 32; seed++) {
            LogReplay.Plan p = LogReplay.plan(c, 5, seed);
            assertThat(p.lastFlush()).isEqualTo(1);
            assertThat(p.dropped()).allMatch(e -> e.index() > 1 && !e.isFua());
            assertThat(p.applied()).extracting(LogEntry::index).contains(0L, 2L);
            sawDrop |= !p.dropped().isEmpty();
            assertThat(LogReplay.plan(c, 5, seed)).as("seeded: the same plan again").isEqualTo(p);
        }
        assertThat(sawDrop).isTrue();
        Run r = jblock("qemu-img", "replay", "--to", "5", "--drop-unflushed", "3", log.toString(),
                tmp.resolve("t.img").toString());
        assertThat(r.status()).isZero();
        assertThat(r.out()).startsWith("Seed 3: dropped ").contains("changes after the last flush (entry 1)");
    }

    @Test
    void badLogsAndRangesAreClearErrors() throws Exception {
        Path log = makeLog(tmp.resolve("d.img"));
        Run r = jblock("qemu-img", "replay", "--to", "7", log.toString(), tmp.resolve("t.img").toString());
        assertThat(r.status()).isEqualTo(1);
        assertThat(r.err()).isEqualTo("qemu-img: replay: entry 7 is out of range: the log has 6 entries, so --to "
                + "takes 0 to 6\n");

        Path bad = tmp.resolve("bad.log");
        Files.write(bad, new byte[1024]);
        assertThat(jblock("qemu-img", "replay", "--list", bad.toString()).err())
                .isEqualTo("qemu-img: replay: '" + bad + "' is not a write log: bad magic 0x0 (expected "
                        + "0x6a736677736872)\n");

        byte[] whole = Files.readAllBytes(log);
        Path cut = tmp.resolve("cut.log");
        Files.write(cut, Arrays.copyOf(whole, whole.length - 600)); // into the last write's data
        Run c = jblock("qemu-img", "replay", "--list", cut.toString());
        assertThat(c.status()).isEqualTo(1);
        assertThat(c.err()).contains("'" + cut + "' is truncated");

        Path tiny = tmp.resolve("tiny.log");
        Files.write(tiny, new byte[10]);
        assertThat(jblock("qemu-img", "replay", "--list", tiny.toString()).err()).contains("is not a write log");
    }
}
