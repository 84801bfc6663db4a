package io.jblock.cli.img;

import io.jblock.testing.Peers;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Images of every kind the img commands meet, made by qemu-img and qemu-io
 * (the peers) in one directory, named relative to the working directory so
 * messages naming them compare byte for byte: raw (sparse, fallocated, full,
 * odd-sized), qcow2 (data, zero clusters, compressed, a three-level backing
 * chain with a longer top, extended L2 with subclusters, preallocated
 * metadata), each under a short name.
 */
final class SampleImages {
    private SampleImages() {
    }

    /** Runs qemu-img with {@code args}, failing the test unless it succeeds. */
    static void qemuImg(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Peers.require("qemu-img")));
        cmd.addAll(List.of(args));
        Peers.run(120, cmd).ok();
    }

    /** Runs qemu-io on an image of {@code format} with each of {@code commands} as a -c. */
    static void qemuIo(Path image, String format, String... commands) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Peers.require("qemu-io"), "-f", format));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(image.toString());
        Peers.run(120, cmd).ok();
    }

    /** The images, by name, made in {@code dir}; the value is the format. */
    static Map<Path, String> make(Path dir) throws Exception {
        Map<Path, String> m = new LinkedHashMap<>();
        Path empty = dir.resolve("empty.img");
        Files.createFile(empty);
        m.put(empty, "raw");
        Path odd = dir.resolve("odd.img");
        Files.write(odd, "abcde".getBytes());
        m.put(odd, "raw");
        Path sparse = dir.resolve("sparse.img");
        qemuImg("create", "-q", "-f", "raw", sparse.toString(), "10M");
        qemuIo(sparse, "raw", "write -P 1 1M 4k", "write -P 2 5M 1M", "write -P 3 9M 100", "write -z 5M 64k");
        m.put(sparse, "raw");
        Path falloc = dir.resolve("falloc.img");
        qemuImg("create", "-q", "-f", "raw", "-o", "preallocation=falloc", falloc.toString(), "4M");
        qemuIo(falloc, "raw", "write -P 1 1M 4k");
        m.put(falloc, "raw");
        Path full = dir.resolve("full.img");
        qemuImg("create", "-q", "-f", "raw", "-o", "preallocation=full", full.toString(), "1M");
        m.put(full, "raw");
        Path base = dir.resolve("base.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", base.toString(), "4M");
        qemuIo(base, "qcow2", "write -P 1 0 1M", "write -P 2 2M 64k", "write -z 3M 128k");
        m.put(base, "qcow2");
        Path mid = dir.resolve("mid.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", mid.toString(), "6M");
        qemuIo(mid, "qcow2", "write -P 3 512k 64k", "write -z 2M 64k", "write -c -P 5 4M 64k",
                "write -P 0 4608k 64k");
        m.put(mid, "qcow2");
        Path top = dir.resolve("top.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top.toString(), "8M");
        qemuIo(top, "qcow2", "write -P 7 100k 8k", "write -z -u 5M 1M", "write -P 8 7M 4k");
        m.put(top, "qcow2");
        Path compressed = dir.resolve("compressed.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", compressed.toString(), "2M");
        qemuIo(compressed, "qcow2", "write -c -P 4 0 64k", "write -c -P 0 64k 64k", "write -P 6 1M 64k");
        m.put(compressed, "qcow2");
        Path ext = dir.resolve("extl2.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=128k", ext.toString(), "4M");
        qemuIo(ext, "qcow2", "write -P 9 4k 4k", "write -P 9 132k 12k", "write -z 1M 8k");
        m.put(ext, "qcow2");
        Path prealloc = dir.resolve("prealloc.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "preallocation=metadata", prealloc.toString(), "2M");
        qemuIo(prealloc, "qcow2", "write -P 1 64k 64k");
        m.put(prealloc, "qcow2");
        Path v2 = dir.resolve("v2.qcow2");
        qemuImg("create", "-q", "-f", "qcow2", "-o", "compat=0.10,cluster_size=4k", v2.toString(), "1M");
        qemuIo(v2, "qcow2", "write -P 1 8k 12k");
        m.put(v2, "qcow2");
        for (Path p : m.keySet()) {
            assertThat(p).exists();
        }
        return m;
    }
}
