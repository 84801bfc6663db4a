import io.jblock.block.BlockStatus;
import io.jblock.block.CacheMode;
import io.jblock.block.Drive;
import io.jblock.block.WriteFlags;
import io.jblock.options.Drives;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Embedding jblock: create a sparse raw image, write, flush, read back and
 * ask for block status. Run with:
 *   java -cp target/jblock.jar --enable-native-access=ALL-UNNAMED examples/DriveExample.java /tmp/example.img
 */
public class DriveExample {
    public static void main(String[] args) throws Exception {
        Path image = Path.of(args.length > 0 ? args[0] : "example.img");
        Files.deleteIfExists(image);
        try (var f = new java.io.RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(64L << 20); // a sparse 64 MiB raw image
        }

        // A -drive string, exactly as QEMU takes it...
        try (Drive d = Drives.open("file=" + image + ",format=raw,cache=unsafe")) {
            ByteBuffer hello = ByteBuffer.wrap("hello, jblock".getBytes(StandardCharsets.UTF_8));
            d.write(1 << 20, hello, WriteFlags.NONE);
            d.flush(); // acknowledged; under cache=unsafe it stops at the OS (no fdatasync)
            System.out.println("disk flushes under unsafe: " + d.stats().diskFlushes());
        }
        // ...or the builder.
        try (Drive d = Drives.builder(image).format("raw").cache(CacheMode.WRITEBACK).readOnly(true).open()) {
            ByteBuffer back = ByteBuffer.allocate(13);
            d.read(1 << 20, back);
            System.out.println("read back: " + new String(back.array(), StandardCharsets.UTF_8));
            BlockStatus s = d.blockStatus(0, d.length());
            System.out.println("first run: " + s.length() + " bytes, " + (s.isData() ? "data" : "hole"));
        }
    }
}
