package io.jblock.protocol;

import io.jblock.block.BlockNode;
import io.jblock.block.BlockStatus;
import io.jblock.block.NodeSettings;
import io.jblock.engine.IoEngine;
import io.jblock.engine.ThreadsEngine;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Opening file nodes and running the real QEMU tools, for the file protocol's tests. */
final class FileTestSupport {
    private FileTestSupport() {
    }

    static FileNode open(Path p, boolean direct) throws IOException {
        return open(ThreadsEngine.INSTANCE, p, direct);
    }

    static FileNode open(IoEngine engine, Path p, boolean direct) throws IOException {
        return new FileNode(NodeSettings.defaults().withDirect(direct), p, engine.open(p, false, direct));
    }

    /** One run of a map: where, how long, and whether it reads as zero / is stored data. */
    record Extent(long start, long length, boolean zero, boolean data) {
    }

    /** The node's block status over its whole length, adjacent runs with the same flags merged, as qemu-img map does. */
    static List<Extent> map(BlockNode node) throws IOException {
        List<Extent> out = new ArrayList<>();
        long len = node.length();
        long off = 0;
        while (off < len) {
            BlockStatus s = node.blockStatus(off, len - off);
            add(out, new Extent(off, s.length(), s.isZero(), s.isData()));
            off += s.length();
        }
        return out;
    }

    static void add(List<Extent> out, Extent e) {
        if (!out.isEmpty()) {
            Extent last = out.getLast();
            if (last.zero() == e.zero() && last.data() == e.data() && last.start() + last.length() == e.start()) {
                out.set(out.size() - 1, new Extent(last.start(), last.length() + e.length(), e.zero(), e.data()));
                return;
            }
        }
        out.add(e);
    }

    /** The result of running a tool. */
    record Run(int exit, String stdout, String stderr) {
    }

    /** Runs a command; a missing tool is an IOException, so the test fails rather than skips. */
    static Run run(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        byte[] err = p.getErrorStream().readAllBytes();
        int exit = p.waitFor();
        return new Run(exit, new String(out, StandardCharsets.UTF_8), new String(err, StandardCharsets.UTF_8));
    }
}
