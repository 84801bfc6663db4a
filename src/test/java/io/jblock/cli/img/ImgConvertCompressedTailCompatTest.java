package io.jblock.cli.img;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static io.jblock.cli.img.CompatSupport.args;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code convert -c -O qcow2} of sources whose size is not a multiple of the
 * cluster size (nor of 512 bytes), against qemu-img 7.2. The last, partial
 * cluster is compressed padded with zeroes, and the file ends on a whole
 * sector, as qemu-img's final empty compressed write leaves it. Where no
 * cluster compresses (random data) the files are byte for byte the same;
 * elsewhere jblock's deflate stream differs from zlib's (java.util.zip
 * cannot use zlib's 4 KiB window, see Qcow2Compression), so the guest data,
 * the map, the file's sector alignment and qemu-img's check are compared.
 */
class ImgConvertCompressedTailCompatTest {
    private Path dir;

    @BeforeEach
    void makeDirectory() throws Exception {
        dir = CompatSupport.freshDir();
    }

    @AfterEach
    void removeDirectory() throws Exception {
        CompatSupport.deleteTree(dir);
    }

    static Stream<Arguments> sources() {
        List<Arguments> out = new ArrayList<>();
        for (long size : new long[] {511, 513, 65536, 65537, 100000, 1048576, 3000320}) {
            for (String cluster : List.of("4096", "65536")) {
                for (boolean random : new boolean[] {true, false}) {
                    out.add(Arguments.of(size, cluster, random));
                }
            }
        }
        return out.stream();
    }

    /** Seeded: random bytes (incompressible) or words (compressible). */
    private static byte[] content(long size, boolean random) {
        long seed = size * 31 + (random ? 1 : 0);
        Random r = new Random(seed);
        byte[] b = new byte[(int) size];
        if (random) {
            r.nextBytes(b);
            return b;
        }
        String[] words = {"qcow2 ", "cluster ", "sector ", "deflate ", "zlib ", "tail ", "padding "};
        StringBuilder sb = new StringBuilder();
        while (sb.length() < size) {
            sb.append(words[r.nextInt(words.length)]);
        }
        byte[] text = sb.toString().getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(text, 0, b, 0, b.length);
        return b;
    }

    @ParameterizedTest(name = "{0} bytes, {1}-byte clusters, random {2}")
    @MethodSource("sources")
    void theTailIsCompressedAndTheFileEndsOnASector(long size, String cluster, boolean random) throws Exception {
        Path src = dir.resolve("src.raw");
        Files.write(src, content(size, random));
        Path q = dir.resolve("q.qcow2");
        Path j = dir.resolve("j.qcow2");
        List<String> a = args("convert", "-c", "-O", "qcow2", "-o", "cluster_size=" + cluster, "-f", "raw",
                src.toString());
        List<String> qa = new ArrayList<>(a);
        qa.add(q.toString());
        List<String> ja = new ArrayList<>(a);
        ja.add(j.toString());
        QemuImgOracle.Run expected = QemuImgOracle.qemu(qa);
        assertThat(expected.status()).as("%s", expected).isZero();
        assertThat(QemuImgOracle.jblock(ja)).isEqualTo(expected);

        assertThat(Files.size(j) % 512).as("jblock's file length %s", Files.size(j)).isZero();
        assertThat(QemuImgOracle.qemu(args("compare", "-f", "raw", "-F", "qcow2", src.toString(), j.toString())))
                .as("guest data").extracting(QemuImgOracle.Run::status).isEqualTo(0);
        assertThat(map(j)).as("map").isEqualTo(map(q));
        QemuImgOracle.Run qCheck = QemuImgOracle.qemu(args("check", q.toString()));
        QemuImgOracle.Run jCheck = QemuImgOracle.qemu(args("check", j.toString()));
        assertThat(jCheck.status()).isZero();
        assertThat(withoutEnd(jCheck.out())).as("check").isEqualTo(withoutEnd(qCheck.out()));
        boolean noClusterCompresses = random && size % Long.parseLong(cluster) == 0;
        if (noClusterCompresses) {
            assertThat(Files.readAllBytes(j)).as("byte for byte").isEqualTo(Files.readAllBytes(q));
        }
    }

    /** The map without host offsets (compressed clusters have none; the uncompressed ones lie alike). */
    private static String map(Path p) {
        return QemuImgOracle.qemu(args("map", "--output=json", p.toString())).out()
                .replaceAll(", \"offset\": \\d+", "");
    }

    /** Check output without the image end offset, which follows the (different) compressed sizes. */
    private static String withoutEnd(String text) {
        return text.replaceAll("Image end offset: \\d+", "Image end offset: N");
    }
}
