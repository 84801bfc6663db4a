package io.jblock.filter.logwrites;

import io.jblock.block.BlockException;
import io.jblock.block.BlockNode;
import io.jblock.block.NodeOptions;
import io.jblock.block.NodeSettings;
import io.jblock.block.WriteFlags;
import io.jblock.options.GraphOpener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class LogWritesNodeTest {
    @TempDir
    Path tmp;

    private BlockNode open(Path img, Path log, String... extra) throws BlockException {
        List<String> kv = new ArrayList<>(List.of("driver", "blklogwrites", "file.driver", "file",
                "file.filename", img.toString(), "log.driver", "file", "log.filename", log.toString()));
        kv.addAll(List.of(extra));
        return GraphOpener.standard().open(null, NodeOptions.of(kv.toArray(String[]::new)), NodeSettings.defaults());
    }

    private Path image() throws Exception {
        Path img = tmp.resolve("d.img");
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(1 << 20);
        }
        return img;
    }

    @Test
    void concurrentWritersNeverInterleaveEntriesAndReplayingAllGivesTheImage() throws Exception {
        long seed = System.nanoTime();
        Path img = image();
        Path base = Files.copy(img, tmp.resolve("base.img"));
        Path log = Files.createFile(tmp.resolve("d.log"));
        try (BlockNode n = open(img, log)) {
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < 16; t++) {
                long s = seed + t;
                long region = 64L * 1024 * t; // each writer owns 64 KiB: the file's final state is then exact
                threads.add(Thread.ofVirtual().start(() -> {
                    Random r = new Random(s);
                    try {
                        for (int i = 0; i < 40; i++) {
                            byte[] data = new byte[512 * (1 + r.nextInt(16))];
                            r.nextBytes(data);
                            long at = region + 512L * r.nextInt(128 - 16);
                            switch (r.nextInt(10)) {
                                case 0 -> n.flush();
                                case 1 -> n.discard(at, data.length);
                                case 2 -> n.writeZeroes(at, data.length, 0);
                                default -> n.write(at, ByteBuffer.wrap(data), r.nextBoolean() ? WriteFlags.FUA : 0);
                            }
                        }
                    } catch (BlockException e) {
                        throw new RuntimeException(e);
                    }
                }));
            }
            for (Thread t : threads) {
                t.join();
            }
            n.flush();
        }
        WriteLog.Contents c = WriteLog.read(log);
        assertThat(c.entries()).as("seed " + seed).hasSizeGreaterThan(16 * 30);
        LogReplay.apply(log, c, LogReplay.plan(c, c.entries().size(), null), base);
        assertThat(Files.mismatch(base, img)).as("replaying every entry gives the image, seed " + seed)
                .isEqualTo(-1);
    }

    @Test
    void sequentialRequestsReplayExactly() throws Exception {
        long seed = System.nanoTime();
        Random r = new Random(seed);
        Path img = image();
        Path base = Files.copy(img, tmp.resolve("base.img"));
        Path log = Files.createFile(tmp.resolve("d.log"));
        try (BlockNode n = open(img, log, "log-sector-size", "4096")) {
            for (int i = 0; i < 200; i++) {
                byte[] data = new byte[4096 * (1 + r.nextInt(4))];
                r.nextBytes(data);
                long at = 4096L * r.nextInt(256 - 4);
                switch (r.nextInt(8)) {
                    case 0 -> n.flush();
                    case 1 -> n.writeZeroes(at, data.length, WriteFlags.MAY_UNMAP);
                    default -> n.write(at, ByteBuffer.wrap(data), 0);
                }
            }
            n.flush();
        }
        WriteLog.Contents c = WriteLog.read(log);
        assertThat(c.sectorSize()).isEqualTo(4096);
        LogReplay.apply(log, c, LogReplay.plan(c, c.entries().size(), null), base);
        assertThat(Files.mismatch(base, img)).as("seed " + seed).isEqualTo(-1);
    }

    @Test
    void badOptionsAreRefusedWithQemusMessages() throws Exception {
        Path img = image();
        Path log = Files.createFile(tmp.resolve("d.log"));
        assertThatThrownBy(() -> open(img, log, "log-sector-size", "100")).hasMessage("Invalid log sector size 100");
        assertThatThrownBy(() -> open(img, log, "log-super-update-interval", "0"))
                .hasMessage("Invalid log superblock update interval 0");
        assertThatThrownBy(() -> open(img, log, "log-append", "on", "log-sector-size", "512"))
                .hasMessage("log-append and log-sector-size are mutually exclusive");
        assertThatThrownBy(() -> open(img, img, "log-append", "on")).hasMessage("Invalid log superblock magic");
        assertThatThrownBy(() -> GraphOpener.standard().open(null, NodeOptions.of("driver", "blklogwrites",
                "file.filename", img.toString()), NodeSettings.defaults()))
                .hasMessage("A block device must be specified for \"log\"");
    }

    @Test
    void underNoFlushNoFlushIsLoggedAndFuaIsStripped() throws Exception {
        Path img = image();
        Path log = Files.createFile(tmp.resolve("d.log"));
        try (BlockNode n = open(img, log, "cache.no-flush", "on", "log-super-update-interval", "1")) {
            n.write(0, ByteBuffer.allocate(512), WriteFlags.FUA);
            n.flush();
        }
        WriteLog.Contents c = WriteLog.read(log);
        assertThat(c.entries()).hasSize(1);
        assertThat(c.entries().get(0).isFua()).isFalse();
        assertThat(LogReplay.flushPoints(c)).isEmpty();
    }
}
