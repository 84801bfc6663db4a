package io.jblock.cli.img;

import io.jblock.testing.Peers;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code commit} against qemu-img 7.2 on 2- and 3-deep chains made by
 * qemu-img and written by qemu-io: the same output and status; every image
 * but the committed one byte for byte the same (the base included); the
 * committed one, which QEMU empties by rebuilding it and jblock by
 * discarding, the same to the guest (data, and qemu-img map) and clean for
 * qemu-img check.
 */
class ImgCommitCompatTest {
    private Path dir;
    /**
     * Whether qemu-img map must agree too. Random chains compare the data
     * only: QEMU's commit job copies whole mirror-granularity chunks, so where
     * the base's cluster size differs from the granularity its map can
     * split differently (same bytes).
     */
    private boolean withMap = true;

    @BeforeEach
    void makeDir() throws Exception {
        dir = CompatSupport.freshDir();
    }

    @AfterEach
    void removeDir() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    private static final String CHAIN = """
            qemu-img create -q -f qcow2 base.qcow2 1M
            qemu-io -c 'write -P 1 0 256k' base.qcow2 >/dev/null
            qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2 2M
            qemu-io -c 'write -P 2 128k 128k' -c 'write -z 600k 64k' mid.qcow2 >/dev/null
            qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 2M
            qemu-io -c 'write -P 3 0 64k' -c 'write -P 4 1500k 10k' -c 'write -z 200k 4k' top.qcow2 >/dev/null
            truncate -s 1M plain.raw
            """;

    @Test
    void commitsLikeQemu() throws Exception {
        for (String a : List.of("top.qcow2", "-d top.qcow2", "-b base.qcow2 top.qcow2", "-b mid.qcow2 top.qcow2",
                "-b base.qcow2 -d top.qcow2", "mid.qcow2", "-q top.qcow2", "-r 1M -t none top.qcow2",
                "-f qcow2 -t writethrough top.qcow2")) {
            assertCommitsAsQemu(CHAIN, a);
        }
    }

    @Test
    void messages() throws Exception {
        for (String a : List.of("base.qcow2", "", "top.qcow2 x", "-b nope top.qcow2", "-b top.qcow2 top.qcow2",
                "-r x top.qcow2", "-r -1 top.qcow2", "-t bad top.qcow2", "-f raw plain.raw", "missing.qcow2")) {
            assertCommitsAsQemu(CHAIN, a);
        }
    }

    /** Seeded: random data in 2- and 3-deep chains of random sizes and cluster sizes. */
    @Test
    void randomChains() throws Exception {
        long seed = Long.getLong("jblock.seed", System.nanoTime());
        System.out.println("ImgCommitCompatTest.randomChains seed=" + seed);
        Random r = new Random(seed);
        withMap = false;
        for (int round = 0; round < 6; round++) {
            boolean deep = r.nextBoolean();
            List<String> names = deep ? List.of("a.qcow2", "b.qcow2", "c.qcow2") : List.of("a.qcow2", "c.qcow2");
            StringBuilder s = new StringBuilder();
            int[] mib = new int[names.size()];
            for (int i = 0; i < names.size(); i++) {
                mib[i] = 1 + r.nextInt(4);
                String cluster = List.of("512", "4k", "64k").get(r.nextInt(3));
                s.append("qemu-img create -q -f qcow2 -o cluster_size=").append(cluster);
                if (i > 0) {
                    s.append(" -b ").append(names.get(i - 1)).append(" -F qcow2");
                }
                s.append(' ').append(names.get(i)).append(' ').append(mib[i]).append("M\n");
                s.append("qemu-io");
                for (int w = 0; w < 5; w++) {
                    int kib = 1 + r.nextInt(200);
                    long at = r.nextInt(mib[i] * 1024 - kib + 1) * 1024L;
                    s.append(" -c 'write ").append(r.nextInt(4) == 0 ? "-z" : "-P " + (1 + r.nextInt(200)))
                            .append(' ').append(at).append(' ').append(kib).append("k'");
                }
                s.append(' ').append(names.get(i)).append(" >/dev/null\n");
            }
            String how = List.of("", "-d ", "-b a.qcow2 ").get(r.nextInt(3));
            assertCommitsAsQemu(s.toString(), how + "c.qcow2");
        }
    }

    private void assertCommitsAsQemu(String setup, String arguments) throws Exception {
        List<String> args = new ArrayList<>();
        args.add("commit");
        if (!arguments.isEmpty()) {
            args.addAll(List.of(arguments.split(" ")));
        }
        String image = args.size() > 1 ? args.getLast() : null;
        if (image != null) {
            args.set(args.size() - 1, dir.resolve(image).toString());
        }
        build(setup);
        QemuImgOracle.Run expected = QemuImgOracle.qemu(args);
        List<String> expectedView = guestView(image);
        var expectedFiles = files(image);
        CompatSupport.deleteTree(dir);
        Files.createDirectories(dir);
        build(setup);
        QemuImgOracle.Run actual = QemuImgOracle.jblock(args);
        assertThat(actual).as("jblock vs qemu-img for %s", args).isEqualTo(expected);
        var actualFiles = files(image);
        assertThat(actualFiles.keySet()).isEqualTo(expectedFiles.keySet());
        for (String name : expectedFiles.keySet()) {
            assertThat(actualFiles.get(name)).as("%s after %s", name, args).isEqualTo(expectedFiles.get(name));
        }
        assertThat(guestView(image)).as("what %s shows after %s", image, args).isEqualTo(expectedView);
        if (actual.status() == 0 && image.endsWith(".qcow2")) {
            Peers.Result check = Peers.run("qemu-img", "check", "-q", dir.resolve(image).toString());
            assertThat(check.exit()).as("qemu-img check after %s: %s", args, check.out()).isZero();
        }
        CompatSupport.deleteTree(dir);
        Files.createDirectories(dir);
    }

    /** The committed image as the guest sees it (data as raw bytes, hashed) and its qemu-img map. */
    private List<String> guestView(String image) throws Exception {
        if (image == null || !Files.exists(dir.resolve(image)) || !image.endsWith(".qcow2")) {
            return List.of();
        }
        Path raw = dir.resolve("view.raw");
        Peers.run("qemu-img", "convert", "-O", "raw", dir.resolve(image).toString(), raw.toString()).ok();
        String sum = java.util.HexFormat.of().formatHex(
                java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(raw)));
        Files.delete(raw);
        if (!withMap) {
            return List.of(sum);
        }
        String map = Peers.run("qemu-img", "map", "--output=json", dir.resolve(image).toString()).ok().out();
        // Where the clusters sit in the file is left out: jblock may place them elsewhere than QEMU.
        return List.of(sum, map.replace(dir.toAbsolutePath().toString(), "").replace(dir.toString(), "")
                .replaceAll("\"offset\": [0-9]+", "\"offset\": -"));
    }

    /** Every file but the committed image, by name: images as the guest sees them, other files as bytes. */
    private java.util.Map<String, byte[]> files(String image) throws Exception {
        java.util.Map<String, byte[]> m = new java.util.TreeMap<>();
        try (var s = Files.walk(dir)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                String name = dir.relativize(p).toString();
                if (!name.equals(image)) {
                    m.put(name, name.endsWith(".qcow2") ? String.join("\n", guestView(name))
                            .getBytes(java.nio.charset.StandardCharsets.UTF_8) : Files.readAllBytes(p));
                }
            }
        }
        return m;
    }

    private void build(String setup) throws Exception {
        Peers.require("qemu-io");
        Peers.Result r = Peers.run(60, List.of("bash", "-ec", "cd '" + dir + "'\n" + setup));
        assertThat(r.exit()).as("setup failed: %s", r.err()).isZero();
    }
}
