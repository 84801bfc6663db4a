package io.jblock.cli.img;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
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
    private static final int SEEK_DATA = 3;
    private static final int SEEK_HOLE = 4;
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle OPEN = LINKER.downcallHandle(LINKER.defaultLookup().find("open").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle LSEEK = LINKER.downcallHandle(LINKER.defaultLookup().find("lseek").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_INT));
    private static final MethodHandle CLOSE = LINKER.downcallHandle(LINKER.defaultLookup().find("close").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

    static FileState of(Path p) throws Exception {
        if (!Files.exists(p)) {
            return new FileState(false, "", 0, 0, List.of(), "");
        }
        if (!Files.isRegularFile(p)) {
            return new FileState(true, "", -1, 0, List.of(), "not a regular file");
        }
        long size = Files.size(p);
        List<long[]> extents = dataExtents(p, size);
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
        return new FileState(true, mode, size, HostFile.allocatedSize(p.toString()), extents,
                HexFormat.of().formatHex(md.digest()));
    }

    private static List<long[]> dataExtents(Path p, long size) throws IOException {
        try {
            return seekExtents(p, size);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(t);
        }
    }

    private static List<long[]> seekExtents(Path p, long size) throws Throwable {
        List<long[]> out = new ArrayList<>();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment name = a.allocateFrom(p.toString());
            int fd = (int) OPEN.invokeExact(name, 0);
            if (fd < 0) {
                throw new IOException("cannot open " + p);
            }
            try {
                long off = 0;
                while (off < size) {
                    long data = (long) LSEEK.invokeExact(fd, off, SEEK_DATA);
                    if (data < 0) {
                        break;
                    }
                    long hole = (long) LSEEK.invokeExact(fd, data, SEEK_HOLE);
                    out.add(new long[] {data, hole});
                    off = hole;
                }
            } finally {
                int ignored = (int) CLOSE.invokeExact(fd);
            }
        }
        return out;
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
