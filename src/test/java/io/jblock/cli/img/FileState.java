package io.jblock.cli.img;

import io.jblock.engine.EngineFile;
import io.jblock.engine.ThreadsEngine;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * What a created image file looks like on the host: whether it exists, its
 * permissions, its length, its allocated blocks, where its data lies (SEEK_DATA/SEEK_HOLE:
 * unwritten preallocated extents read as holes) and a digest of that data.
 * Two files in the same state were created the same way, as far as anyone
 * can tell.
 */
record FileState(boolean exists, String mode, long size, long allocated, List<long[]> extents, String dataDigest) {
    static FileState of(Path p) throws Exception {
        if (!Files.exists(p)) {
            return new FileState(false, "", 0, 0, List.of(), "");
        }
        if (!Files.isRegularFile(p)) {
            return new FileState(true, "", -1, 0, List.of(), "not a regular file");
        }
        long size = Files.size(p);
        Layout layout = layout(p, size);
        List<long[]> extents = layout.extents();
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "r")) {
            byte[] buf = new byte[1 << 16];
            for (long[] e : extents) {
                for (long pos = e[0]; pos < e[1]; ) {
                    int n = (int) Math.min(buf.length, e[1] - pos);
                    f.seek(pos);
                    f.readFully(buf, 0, n);
                    md.update(buf, 0, n);
                    pos += n;
                }
            }
        }
        String mode = java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
        return new FileState(true, mode, size, layout.allocated(), extents,
                HexFormat.of().formatHex(md.digest()));
    }

    /** Where data lies, by SEEK_DATA/SEEK_HOLE through the engine; also st_blocks * 512. */
    private static Layout layout(Path p, long size) throws IOException {
        List<long[]> out = new ArrayList<>();
        try (EngineFile f = ThreadsEngine.INSTANCE.open(p, true, false)) {
            long off = 0;
            while (off < size) {
                long data = f.seekData(off);
                if (data < 0) {
                    break;
                }
                long hole = f.seekHole(data);
                out.add(new long[] {data, hole});
                off = hole;
            }
            return new Layout(out, f.allocatedSize());
        }
    }

    private record Layout(List<long[]> extents, long allocated) {
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(exists ? mode + ", size " + size + ", allocated " + allocated + ", data"
                : "absent");
        for (long[] e : extents) {
            sb.append(" [").append(e[0]).append(", ").append(e[1]).append(")");
        }
        return sb.append(exists ? ", sha256 " + dataDigest : "").toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof FileState f && toString().equals(f.toString());
    }

    @Override
    public int hashCode() {
        return toString().hashCode();
    }
}
