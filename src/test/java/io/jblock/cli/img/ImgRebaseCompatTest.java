package io.jblock.cli.img;

import io.jblock.testing.Peers;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code rebase} against qemu-img 7.2: a chain is built by qemu-img and
 * qemu-io, rebased by qemu-img, its files recorded; built again the same
 * way, rebased by jblock; the output, status and every file in the folder
 * must be the same byte for byte (so header, extensions, L2 tables,
 * refcounts and copied data all match), and qemu-img check must find
 * jblock's image clean.
 */
class ImgRebaseCompatTest {
    private static final String BIG_NAME_500 = "b".repeat(500);
    private Path dir;

    @BeforeEach
    void makeDir() throws Exception {
        dir = CompatSupport.freshDir();
    }

    @AfterEach
    void removeDir() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    /** base (pattern 1 at 0, 2 at 512k), top over it (3 at 32k), nb with other data; 64 KiB clusters. */
    private static final String CHAIN = """
            qemu-img create -q -f qcow2 base.qcow2 1M
            qemu-io -c 'write -P 1 0 64k' -c 'write -P 2 512k 100k' base.qcow2
            qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 1M
            qemu-io -c 'write -P 3 32k 64k' top.qcow2
            qemu-img create -q -f qcow2 nb.qcow2 1M
            qemu-io -c 'write -P 1 0 4k' -c 'write -P 9 700k 4k' nb.qcow2
            """;

    /** In d/: version 2, 4 KiB clusters, a 5M top over a 3M base, a 1500k raw new base, small-cluster images. */
    private static final String MIXED = """
            mkdir d
            qemu-img create -q -f qcow2 d/base.qcow2 3M
            qemu-io -c 'write -P 1 0 1M' -c 'write -P 2 2M 1M' d/base.qcow2
            qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4k -b base.qcow2 -F qcow2 d/top.qcow2 5M
            qemu-io -c 'write -P 3 100k 8k' -c 'write -z 1M 64k' d/top.qcow2
            qemu-img create -q -f raw d/nb.raw 1500k
            qemu-io -f raw -c 'write -P 7 0 1M' d/nb.raw
            qemu-img create -q -f qcow2 -o cluster_size=512 d/small.qcow2 1M
            qemu-img create -q -f qcow2 -o cluster_size=4k d/c4k.qcow2 3M
            """;

    /** Extensions a rebase must keep: an external data file, a raw one, and one QEMU does not know. */
    private static final String EXTENSIONS = """
            qemu-img create -q -f qcow2 base.qcow2 1M
            qemu-io -c 'write -P 1 0 64k' base.qcow2
            qemu-img create -q -f qcow2 -o data_file=top.data -b base.qcow2 -F qcow2 top.qcow2 1M
            qemu-io -c 'write -P 3 32k 64k' top.qcow2
            qemu-img create -q -f qcow2 nb.qcow2 1M
            qemu-img create -q -f qcow2 -o data_file=raw.data,data_file_raw=on rawdf.qcow2 1M
            qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 unknown.qcow2 1M
            """;

    @Test
    void safeAndUnsafeRebaseOfAChain() throws Exception {
        for (String a : List.of("-u -b nb.qcow2 -F qcow2 top.qcow2", "-b nb.qcow2 -F qcow2 top.qcow2",
                "-p -b nb.qcow2 -F qcow2 top.qcow2", "-b '' top.qcow2", "-p -b '' top.qcow2", "-u top.qcow2",
                "-p -u -b nb.qcow2 -F qcow2 top.qcow2", "-q -p -b base.qcow2 -F qcow2 nb.qcow2",
                "-t writethrough -T none -U -b nb.qcow2 -F qcow2 top.qcow2", "-u -b '' -F qcow2 top.qcow2")) {
            assertRebasesAsQemu(CHAIN, a);
        }
    }

    @Test
    void sizesVersionsAndClusterSizes() throws Exception {
        for (String a : List.of("-p -b nb.raw -F raw d/top.qcow2", "-p -b '' d/top.qcow2",
                "-u -b nb.raw -F raw d/c4k.qcow2", "-p -b base.qcow2 -F qcow2 d/c4k.qcow2",
                "-p -b base.qcow2 -F qcow2 d/small.qcow2", "-b nb.raw -F raw -T none d/top.qcow2")) {
            assertRebasesAsQemu(MIXED, a);
        }
    }

    @Test
    void headerExtensionsAreKept() throws Exception {
        for (String a : List.of("-b nb.qcow2 -F qcow2 top.qcow2", "-u -b nb.qcow2 -F qcow2 top.qcow2",
                "-u -b nb.qcow2 -F qcow2 rawdf.qcow2", "-u -b '' rawdf.qcow2", "-b nb.qcow2 -F qcow2 unknown.qcow2",
                "-u -b '' unknown.qcow2")) {
            assertRebasesAsQemu(EXTENSIONS + "python3 -c \"" + UNKNOWN_EXTENSION + "\" unknown.qcow2\n", a);
        }
    }

    @Test
    void messages() throws Exception {
        for (String a : List.of("top.qcow2", "", "-b nb.qcow2 top.qcow2 x", "-b nb.qcow2 top.qcow2",
                "-u -b nb.qcow2 top.qcow2", "-b nope.qcow2 -F qcow2 top.qcow2", "-b nb.qcow2 -F foo top.qcow2",
                "-t bad -b nb.qcow2 top.qcow2", "-p -t bad -b nb.qcow2 top.qcow2", "-T bad -b nb.qcow2 top.qcow2",
                "-u -b nb.qcow2 -F qcow2 -f raw base.qcow2", "-b /tmp -F qcow2 top.qcow2",
                "-u -b " + "a".repeat(1024) + " -F qcow2 top.qcow2", "-b nb.qcow2 -F qcow2 missing.qcow2")) {
            assertRebasesAsQemu(CHAIN, a);
        }
        assertRebasesAsQemu(MIXED, "-u -b " + BIG_NAME_500 + " -F qcow2 d/small.qcow2");
        assertRebasesAsQemu(EXTENSIONS, "-b nb.qcow2 -F qcow2 rawdf.qcow2");
    }

    /** Seeded: random data in a 3-deep chain of random sizes, rebased onto the middle, the bottom, a new file or nothing. */
    @Test
    void randomChains() throws Exception {
        long seed = Long.getLong("jblock.seed", System.nanoTime());
        System.out.println("ImgRebaseCompatTest.randomChains seed=" + seed);
        Random r = new Random(seed);
        for (int round = 0; round < 6; round++) {
            String cluster = List.of("512", "4k", "64k").get(r.nextInt(3));
            List<String> names = List.of("a.qcow2", "b.qcow2", "c.qcow2", "n.raw");
            int[] mib = {1 + r.nextInt(4), 1 + r.nextInt(4), 1 + r.nextInt(4), 1 + r.nextInt(4)};
            StringBuilder s = new StringBuilder();
            s.append("qemu-img create -q -f qcow2 a.qcow2 ").append(mib[0]).append("M\n");
            s.append("qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 b.qcow2 ").append(mib[1]).append("M\n");
            s.append("qemu-img create -q -f qcow2 -o cluster_size=").append(cluster)
                    .append(" -b b.qcow2 -F qcow2 c.qcow2 ").append(mib[2]).append("M\n");
            s.append("qemu-img create -q -f raw n.raw ").append(mib[3]).append("M\n");
            for (int i = 0; i < names.size(); i++) {
                String img = names.get(i);
                s.append("qemu-io").append(img.endsWith(".raw") ? " -f raw" : "");
                for (int w = 0; w < 5; w++) {
                    int kib = 1 + r.nextInt(200);
                    long at = r.nextInt(mib[i] * 1024 - kib + 1) * 1024L;
                    s.append(" -c 'write ").append(r.nextInt(4) == 0 ? "-z" : "-P " + (1 + r.nextInt(200)))
                            .append(' ').append(at).append(' ').append(kib).append("k'");
                }
                s.append(' ').append(img).append(" >/dev/null\n");
            }
            String target = List.of("-b a.qcow2 -F qcow2", "-b n.raw -F raw", "-b ''", "-p -b b.qcow2 -F qcow2")
                    .get(r.nextInt(4));
            assertRebasesAsQemu(s.toString(), target + " c.qcow2");
        }
    }

    /** Adds an extension of type 0x12345678 ("hello") before the end marker, moving the backing name after it. */
    private static final String UNKNOWN_EXTENSION = "import struct,sys\n"
            + "f=open(sys.argv[1],'r+b'); h=bytearray(f.read(65536))\n"
            + "at=struct.unpack('>I',h[100:104])[0]\n"
            + "while struct.unpack('>I',h[at:at+4])[0]:\n"
            + "    at+=8+((struct.unpack('>I',h[at+4:at+8])[0]+7)&~7)\n"
            + "bo,bl=struct.unpack('>QI',h[8:20]); name=bytes(h[bo:bo+bl])\n"
            + "ext=struct.pack('>II',0x12345678,5)+b'hello'+bytes(3)+bytes(8)\n"
            + "h[at:at+len(ext)]=ext; nb=at+len(ext); h[nb:nb+bl]=name; h[8:16]=struct.pack('>Q',nb)\n"
            + "f.seek(0); f.write(h)";

    private void assertRebasesAsQemu(String setup, String arguments) throws Exception {
        List<String> args = new ArrayList<>();
        args.add("rebase");
        if (!arguments.isEmpty()) {
            for (String word : arguments.split(" ")) {
                args.add(word.equals("''") ? "" : word); // '' is the empty -b of a flatten
            }
        }
        args = withPathsIn(args);
        build(setup);
        QemuImgOracle.Run expected = QemuImgOracle.qemu(args);
        Map<String, byte[]> expectedFiles = files();
        CompatSupport.deleteTree(dir);
        Files.createDirectories(dir);
        build(setup);
        QemuImgOracle.Run actual = QemuImgOracle.jblock(args);
        Map<String, byte[]> actualFiles = files();
        assertThat(actual).as("jblock vs qemu-img for %s", args).isEqualTo(expected);
        assertThat(actualFiles.keySet()).isEqualTo(expectedFiles.keySet());
        for (String name : expectedFiles.keySet()) {
            assertThat(actualFiles.get(name)).as("%s after %s", name, args).isEqualTo(expectedFiles.get(name));
        }
        String image = args.getLast();
        if (actual.status() == 0 && image.endsWith(".qcow2")) {
            Peers.Result check = Peers.run("qemu-img", "check", "-q", image);
            assertThat(check.exit()).as("qemu-img check of %s after %s: %s", image, args, check.out()).isZero();
        }
        CompatSupport.deleteTree(dir);
        Files.createDirectories(dir);
    }

    /** The image operand (last) becomes a path in the test folder; -b stays as given (it is relative to the image). */
    private List<String> withPathsIn(List<String> args) {
        List<String> out = new ArrayList<>(args);
        if (out.size() > 1 && !out.getLast().isEmpty()) {
            out.set(out.size() - 1, dir.resolve(out.getLast()).toString());
        }
        return out;
    }

    private void build(String setup) throws Exception {
        Peers.require("qemu-io");
        Peers.Result r = Peers.run(60, List.of("bash", "-ec", "cd '" + dir + "'\n" + setup));
        assertThat(r.exit()).as("setup failed: %s", r.err()).isZero();
    }

    private Map<String, byte[]> files() throws Exception {
        Map<String, byte[]> m = new TreeMap<>();
        try (var s = Files.walk(dir)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                m.put(dir.relativize(p).toString(), Files.readAllBytes(p));
            }
        }
        return m;
    }
}
