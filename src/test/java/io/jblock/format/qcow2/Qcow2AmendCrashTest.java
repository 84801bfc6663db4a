package io.jblock.format.qcow2;

import io.jblock.block.Drive;
import io.jblock.engine.EngineFile;
import io.jblock.engine.ForwardingEngineFile;
import io.jblock.engine.IoEngine;
import io.jblock.engine.ThreadsEngine;
import io.jblock.options.DriveConfig;
import io.jblock.options.DriveOpener;
import io.jblock.options.DriverRegistry;
import io.jblock.options.GraphOpener;
import io.jblock.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A power cut in the middle of a refcount width change: every write and
 * every datasync of the amend is journaled; then, for each stretch between
 * two datasyncs, the image is rebuilt as a power cut there could leave it
 * (everything up to the last datasync, plus none, all, or random subsets of
 * the writes since), and qemu-img must find each one without corruption
 * (leaked clusters are allowed: the half-built new structures are garbage
 * until the header names them), with the old or the new width, and with the
 * same data as before.
 */
class Qcow2AmendCrashTest {
    @TempDir
    Path dir;

    private record Op(long pos, byte[] data, boolean sync) {
    }

    /** The threads engine, journaling writes and datasyncs of the image file. */
    private static final class JournalingEngine implements IoEngine {
        final List<Op> ops = new ArrayList<>();

        @Override
        public String name() {
            return "threads";
        }

        @Override
        public EngineFile open(Path path, boolean readOnly, boolean direct) throws IOException {
            return new ForwardingEngineFile(ThreadsEngine.INSTANCE.open(path, readOnly, direct)) {
                @Override
                public int write(ByteBuffer src, long pos) throws IOException {
                    byte[] b = new byte[src.remaining()];
                    src.duplicate().get(b);
                    int n = super.write(src, pos);
                    synchronized (ops) {
                        ops.add(new Op(pos, java.util.Arrays.copyOf(b, n), false));
                    }
                    return n;
                }

                @Override
                public boolean zeroRange(long offset, long length, boolean keepSize) throws IOException {
                    return false; // zeroes are written as data, so the journal has them
                }

                @Override
                public boolean punchHole(long offset, long length) throws IOException {
                    return false;
                }

                @Override
                public void datasync() throws IOException {
                    super.datasync();
                    synchronized (ops) {
                        ops.add(new Op(0, null, true));
                    }
                }
            };
        }
    }

    @Test
    void aPowerCutDuringARefcountWidthChangeLeavesAConsistentImageOfEitherWidth() throws Exception {
        long seed = Long.getLong("jblock.test.seed", System.nanoTime());
        System.out.println("Qcow2AmendCrashTest seed " + seed + " (rerun with -Djblock.test.seed=" + seed + ")");
        Random r = new Random(seed);
        Path img = dir.resolve("img.qcow2");
        Path original = dir.resolve("orig.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", img.toString(), "8M");
        run("qemu-io", "-c", "write -P 1 0 1M", "-c", "write -P 2 3M 700k", "-c", "write -z 6M 64k", img.toString());
        Files.copy(img, original);
        byte[] before = Files.readAllBytes(img);

        JournalingEngine engine = new JournalingEngine();
        DriveOpener opener = new DriveOpener(new GraphOpener(DriverRegistry.standard(), mode -> engine));
        try (Drive d = opener.open(DriveConfig.parseDrive("file=" + img + ",format=qcow2"))) {
            Qcow2Node node = (Qcow2Node) d.root();
            node.amendment().changeRefcountBits(4, (done, total) -> { });
        }
        assertThat(run("qemu-img", "info", img.toString())).contains("refcount bits: 4");
        List<Op> ops = List.copyOf(engine.ops);
        assertThat(ops.stream().filter(Op::sync).count()).as("datasyncs in the change").isGreaterThanOrEqualTo(3);

        Path state = dir.resolve("state.qcow2");
        byte[] durable = before.clone();
        List<Op> pending = new ArrayList<>();
        int checked = 0;
        for (Op op : ops) {
            if (!op.sync()) {
                pending.add(op);
                continue;
            }
            for (int variant = 0; variant < 5; variant++) {
                byte[] image = durable.clone();
                for (int i = 0; i < pending.size(); i++) {
                    boolean landed = switch (variant) {
                        case 0 -> false;
                        case 1 -> true;
                        default -> r.nextBoolean();
                    };
                    if (landed) {
                        image = apply(image, pending.get(i));
                    }
                }
                Files.write(state, image);
                assertConsistent(state, original, checked);
                checked++;
            }
            for (Op p : pending) {
                durable = apply(durable, p);
            }
            pending.clear();
        }
        assertThat(checked).isPositive();
    }

    private void assertConsistent(Path state, Path original, int n) throws Exception {
        Peers.Result check = Peers.run("qemu-img", "check", state.toString());
        assertThat(check.exit()).as("state %d: qemu-img check says %s%s", n, check.out(), check.err())
                .isIn(0, 3);
        assertThat(check.out()).as("state %d", n).doesNotContain("ERROR");
        String info = run("qemu-img", "info", state.toString());
        assertThat(info).as("state %d", n).containsAnyOf("refcount bits: 16", "refcount bits: 4");
        Peers.Result same = Peers.run("qemu-img", "compare", "-q", original.toString(), state.toString());
        assertThat(same.exit()).as("state %d: data as before", n).isZero();
    }

    private static byte[] apply(byte[] image, Op op) {
        long end = op.pos() + op.data().length;
        byte[] out = end > image.length ? java.util.Arrays.copyOf(image, (int) end) : image;
        System.arraycopy(op.data(), 0, out, (int) op.pos(), op.data().length);
        return out;
    }

    private static String run(String... cmd) throws Exception {
        Peers.Result r = Peers.run(cmd);
        assertThat(r.exit()).as("%s: %s", List.of(cmd), r.err()).isZero();
        return r.out();
    }
}
